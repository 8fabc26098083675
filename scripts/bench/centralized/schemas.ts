import { z } from 'zod';
import { isValidMunicipalityCode, isValidMyNumber } from '../../../shared/identifiers.ts';

/** The baseline's one question, as VRS asks it: these My Numbers, for this municipality. */
export const centralQuerySchema = z.object({
  municipality: z.string().refine(isValidMunicipalityCode, 'must be a municipality code with a valid check digit'),
  myNumbers: z.array(z.string().refine(isValidMyNumber, 'must be 12 digits with a valid check digit'))
    .min(1, 'must name at least one subject').max(1000, 'must name at most 1000 subjects'),
}).strict();
export type CentralQuery = z.infer<typeof centralQuerySchema>;
