import { z } from 'zod';

/** Gateway settings of the correction relay (spread into the gateway's config schema). */
export const correctionRelayConfigShape = {
  /** Longest wait between delivery attempts to a recipient that is down (backoff 2, 4, 8 … seconds up to this). */
  CORRECTION_RETRY_MAX_SECONDS: z.coerce.number().int().min(1).max(86_400).default(600),
  /** Seconds between rounds of the delivery worker (a notice just accepted is tried at once as well). */
  CORRECTION_DELIVERY_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),
};

/** A source's correction notice, as it asks the gateway to relay it. */
export const relayRequestSchema = z.object({
  notice: z.string({ error: 'is required' }).min(1, 'is required').max(400_000, 'must be at most 400000 characters'),
}).strict();
