import { z } from 'zod';
import { TRAIL_STATUSES } from '../../shared/federation/protocol.ts';

const compact = z.string().max(200_000).regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){2,4}$/, 'must be a compact JOSE serialization');

/** POST /trail-requests: B's signed request (docs/PROTOCOL.md §3.10). */
export const trailRequestBodySchema = z.object({ request: compact }).strict();

/** The source's reply to the forward: its signed answer. */
export const trailSourceReplySchema = z.object({ answer: compact }).strict();

/** What B gets back: the source's signed answer unchanged, or the gateway's own status when nobody answered. */
export const trailResponseSchema = z.object({
  requestId: z.string(),
  status: z.enum(TRAIL_STATUSES),
  reason: z.string().optional(),
  answer: compact.optional(),
}).strict();
export type TrailResponse = z.infer<typeof trailResponseSchema>;

/** POST /gateway-trail-requests: B's signed request for the gateway's own entries about a resident (docs/PROTOCOL.md §3.10). */
export const gatewayTrailRequestBodySchema = z.object({ request: compact }).strict();

/** The gateway's signed answer, its entries sealed for B. */
export const gatewayTrailResponseSchema = z.object({ answer: compact }).strict();
