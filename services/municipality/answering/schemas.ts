import { z } from 'zod';

/**
 * POST /federation/record-requests: the gateway's forward, a compact JWS (docs/PROTOCOL.md §3.4), and
 * beside it B's sealed identity checks, which B's query inside names by digest.
 */
export const recordRequestSchema = z.object({
  forward: z.string().min(1, 'is required').max(5_000_000, 'is too large'),
  sealed: z.string().min(1, 'must not be empty').max(5_000_000, 'is too large').optional(),
}).strict();
