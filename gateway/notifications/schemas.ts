import { z } from 'zod';

/** A source's correction notice, as it asks the gateway to relay it. */
export const relayRequestSchema = z.object({
  notice: z.string({ error: 'is required' }).min(1, 'is required').max(400_000, 'must be at most 400000 characters'),
}).strict();
