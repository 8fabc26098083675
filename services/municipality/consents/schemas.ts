import { z } from 'zod';
import { freeText } from '../../../shared/platform/validation.ts';
import { municipalityCodeSchema, purposeSchema } from '../../../shared/federation/protocol.ts';
import { dateTime } from '../../../shared/platform/dates.ts';
import { REVOCATION_OUTBOX_STATUSES } from './model.ts';

export { MAX_CONSENT_DAYS } from '../../../shared/consent-policy.ts';

export const consentInputSchema = z.object({
  purpose: purposeSchema,
  sources: z.array(municipalityCodeSchema)
    .min(1, 'must name at least one municipality').max(50, 'must name at most 50 municipalities'),
  expiresAt: dateTime(),
  method: z.enum(['written', 'electronic', 'oral-recorded'], { error: 'must be written, electronic or oral-recorded' }),
}).strict();
export type ConsentInput = z.infer<typeof consentInputSchema>;

/** What the gateway relays to a source: the requester's signed revocation, unchanged (docs/PROTOCOL.md §3.9). */
export const relayedRevocationSchema = z.object({
  revocation: z.string({ error: 'is required' }).min(1, 'is required').max(20_000, 'must be at most 20000 characters'),
}).strict();

/** Filter of the revocation outbox view (operators watch delivery). */
export const revocationOutboxQuerySchema = z.object({
  status: z.enum(REVOCATION_OUTBOX_STATUSES, { error: `must be one of ${REVOCATION_OUTBOX_STATUSES.join(', ')}` }).optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(500, 'must be at most 500').default(100),
}).strict();

export const revokeSchema = z.object({
  reason: freeText({ max: 500, multiline: true }),
}).strict();

/** A consent the resident signed with their personal key, as presented at the counter or portal (docs/DESIGN.md §4.4). */
export const residentSignedConsentSchema = z.object({
  /** Compact JWS, typ hikitsugi-resident-consent+jwt, signed with the key of `certificate`. */
  signature: z.string().min(1, 'is required').max(20_000, 'must be at most 20000 characters')
    .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'must be a compact JWS'),
  /** The resident's personal certificate (PEM) from the federation CA. */
  certificate: z.string().min(1, 'is required').max(10_000, 'must be at most 10000 characters')
    .includes('BEGIN CERTIFICATE', { message: 'must be a PEM certificate' }),
}).strict();
export type ResidentSignedConsentInput = z.infer<typeof residentSignedConsentSchema>;
