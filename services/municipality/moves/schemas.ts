import { z } from 'zod';
import { isValidMyNumber } from '../../../shared/identifiers.ts';
import { municipalityCodeSchema } from '../../../shared/federation/protocol.ts';
import { consentInputSchema } from '../consents/schemas.ts';

export const moveOutSchema = z.object({
  moveOutDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD'),
  destination: municipalityCodeSchema,
  destinationAddress: z.string().min(1, 'is required').max(300, 'must be at most 300 characters'),
}).strict();
export type MoveOutInput = z.infer<typeof moveOutSchema>;

export const moveInSchema = z.object({
  /** The move-out certificate (compact JWS) the resident brought from the previous municipality. */
  certificate: z.string().min(1, 'is required').max(20_000, 'must be at most 20000 characters'),
  /** Read from the resident's My Number card at the counter. */
  myNumber: z.string().refine(isValidMyNumber, 'must be 12 digits with a valid check digit'),
  address: z.string().min(1, 'is required').max(300, 'must be at most 300 characters'),
  /** The resident's consent to fetch their vaccination history, when given at the counter. */
  consent: consentInputSchema.omit({ sources: true }).optional(),
}).strict();
export type MoveInInput = z.infer<typeof moveInSchema>;
