import { z } from 'zod';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import { PURPOSES } from '../../../shared/protocol.ts';

/** The longest consent we record: the vaccination-history question matters around a move, not forever. */
export const MAX_CONSENT_DAYS = 366;

export const consentInputSchema = z.object({
  purpose: z.enum(PURPOSES, { error: `must be one of ${PURPOSES.join(', ')}` }),
  sources: z.array(z.string().refine(isValidMunicipalityCode, 'must be a municipality code with a valid check digit'))
    .min(1, 'must name at least one municipality').max(50, 'must name at most 50 municipalities'),
  expiresAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' }),
  method: z.enum(['written', 'electronic', 'oral-recorded'], { error: 'must be written, electronic or oral-recorded' }),
}).strict();
export type ConsentInput = z.infer<typeof consentInputSchema>;

export const revokeSchema = z.object({
  reason: z.string().min(1, 'is required').max(500, 'must be at most 500 characters'),
}).strict();
