import { z } from 'zod';
import { municipalityCodeSchema, purposeSchema, SUBJECT_STATUSES } from '../../../shared/federation/protocol.ts';
import { addresseeDigitsSchema } from '../residents/schemas.ts';

export const querySchema = z.object({
  purpose: purposeSchema,
  subjects: z.array(z.object({
    addresseeNumber: addresseeDigitsSchema,
    source: municipalityCodeSchema,
    /** Only for the exception path: an approved life-protection request. */
    exceptionId: z.string().uuid('must be an exception request id').optional(),
  }).strict()).min(1, 'must name at least one subject').max(1000, 'must name at most 1000 subjects'),
}).strict();
export type QueryInput = z.infer<typeof querySchema>;

/**
 * What B accepts from the gateway for a query (`QueryResponse` in shared/federation/protocol.ts),
 * checked before any of it is stored: a status outside the list or an oversized reason is refused whole.
 */
export const gatewayResponseSchema = z.object({
  requestId: z.string().min(1).max(128),
  results: z.array(z.object({
    ref: z.string().min(1).max(64),
    source: z.string().max(32).optional(),
    status: z.enum(SUBJECT_STATUSES),
    reason: z.string().max(100).regex(/^[\x20-\x7e]*$/).optional(),
    retryAfter: z.number().int().min(0).max(86_400).optional(),
  })).max(5000),
  /** Each source's signed answer and, beside it, the records envelope it names by digest (docs/PROTOCOL.md §3.7). */
  answers: z.array(z.object({ answer: z.string().max(16_000_000), records: z.string().max(60_000_000).optional() })).max(100),
});
export type GatewayResponse = z.infer<typeof gatewayResponseSchema>;
