import { z } from 'zod';

/** A requester's signed consent revocation, as it hands it to the gateway (docs/PROTOCOL.md §3.9). */
export const consentRevocationRequestSchema = z.object({
  revocation: z.string({ error: 'is required' }).min(1, 'is required').max(20_000, 'must be at most 20000 characters'),
}).strict();
