import { z } from 'zod';
import { freeText } from '../../../shared/platform/validation.ts';
import { isValidMunicipalityCode, isValidMyNumber } from '../../../shared/identifiers.ts';
import { PURPOSES, SUBJECT_STATUSES } from '../../../shared/federation/protocol.ts';
import { consentInputSchema } from '../consents/schemas.ts';
import { calendarDate } from '../../../shared/dates.ts';

const municipality = z.string().refine(isValidMunicipalityCode, 'must be a municipality code with a valid check digit');
const addressee = z.string().regex(/^\d{1,20}$/, 'must be an addressee number (digits)');

export const moveOutSchema = z.object({
  moveOutDate: calendarDate(),
  destination: municipality,
  destinationAddress: freeText({ max: 300 }),
}).strict();
export type MoveOutInput = z.infer<typeof moveOutSchema>;

export const moveInSchema = z.object({
  /** The move-out certificate (compact JWS) the resident brought from the previous municipality. */
  certificate: z.string().min(1, 'is required').max(20_000, 'must be at most 20000 characters'),
  /** Read from the resident's My Number card at the counter. */
  myNumber: z.string().refine(isValidMyNumber, 'must be 12 digits with a valid check digit'),
  address: freeText({ max: 300 }),
  /** The resident's consent to fetch their vaccination history, when given at the counter. */
  consent: consentInputSchema.omit({ sources: true }).optional(),
}).strict();
export type MoveInInput = z.infer<typeof moveInSchema>;

export const querySchema = z.object({
  purpose: z.enum(PURPOSES, { error: `must be one of ${PURPOSES.join(', ')}` }),
  subjects: z.array(z.object({
    addresseeNumber: addressee,
    source: municipality,
    /** Only for the exception path: an approved life-protection request. */
    exceptionId: z.string().uuid('must be an exception request id').optional(),
  }).strict()).min(1, 'must name at least one subject').max(1000, 'must name at most 1000 subjects'),
}).strict();
export type QueryInput = z.infer<typeof querySchema>;

export const exceptionRequestSchema = z.object({
  addresseeNumber: addressee,
  source: municipality,
  purpose: z.enum(PURPOSES, { error: `must be one of ${PURPOSES.join(', ')}` }),
  justification: freeText({ min: 20, minRule: 'must explain in at least 20 characters why life or body is at stake and consent impossible', max: 2000, multiline: true }),
}).strict();
export type ExceptionRequestInput = z.infer<typeof exceptionRequestSchema>;

/**
 * What B accepts from the gateway for a query (`QueryResponse` in shared/protocol.ts), checked
 * before any of it is stored: a status outside the list or an oversized reason is refused whole.
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
  answers: z.array(z.string().max(16_000_000)).max(100),
});
export type GatewayResponse = z.infer<typeof gatewayResponseSchema>;
