import { z } from 'zod';
import { isValidMyNumber } from '../../shared/identifiers.ts';

/**
 * POST /codes. The rule never quotes the value, and unknown keys are dropped rather than named:
 * an error must not carry a My Number back to the caller or into a log.
 */
export const issueCodeSchema = z.object({
  myNumber: z.string({ error: 'must be a string of 12 digits' })
    .refine(isValidMyNumber, { message: 'must be 12 digits with a valid check digit', abort: true }),
});
