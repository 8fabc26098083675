import { z } from 'zod';

/** POST /federation/record-requests: the gateway's forward, a compact JWS (docs/PROTOCOL.md §3.4). */
export const recordRequestSchema = z.object({ forward: z.string().min(1, 'is required').max(5_000_000, 'is too large') }).strict();
