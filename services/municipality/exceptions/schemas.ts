import { z } from 'zod';
import { municipalityCodeSchema, purposeSchema } from '../../../shared/federation/protocol.ts';
import { addresseeDigitsSchema } from '../residents/schemas.ts';
import { EXCEPTION_STATUSES } from './model.ts';

export const exceptionRequestSchema = z.object({
  addresseeNumber: addresseeDigitsSchema,
  source: municipalityCodeSchema,
  purpose: purposeSchema,
  justification: z.string().min(20, 'must explain in at least 20 characters why life or body is at stake and consent impossible').max(2000, 'must be at most 2000 characters'),
}).strict();
export type ExceptionRequestInput = z.infer<typeof exceptionRequestSchema>;

export const exceptionStatusSchema = z.enum(EXCEPTION_STATUSES).optional();
