import { z } from 'zod';
import { isValidMyNumber } from '../../shared/identifiers.ts';
import { codeSchema, logHeadSchema } from '../../shared/federation/protocol.ts';

const myNumber = z.string({ error: 'must be a string of 12 digits' })
  .refine(isValidMyNumber, { message: 'must be 12 digits with a valid check digit', abort: true });

/**
 * POST /codes. The rule never quotes the value, and unknown keys are dropped rather than named:
 * an error must not carry a My Number back to the caller or into a log.
 */
export const issueCodeSchema = z.object({ myNumber, head: logHeadSchema.optional() });

/** My Numbers per POST /codes/batch (the body limit is sized for it). */
export const MAX_CODES_PER_BATCH = 500;

/**
 * POST /codes/batch: a field at fault is named by its index (`myNumbers.3`), never by its value;
 * one bad My Number refuses the batch, and nothing is issued.
 */
export const issueCodesSchema = z.object({
  myNumbers: z.array(myNumber, { error: 'must be a list of My Numbers' })
    .min(1, 'must hold at least one My Number')
    .max(MAX_CODES_PER_BATCH, `must hold at most ${MAX_CODES_PER_BATCH} My Numbers`),
  /** The sender's log head (docs/PROTOCOL.md §3.0), kept by the issuer. */
  head: logHeadSchema.optional(),
});

/** The gateway's answer to POST /correspondence/batch, checked before any code is handed out. */
export const correspondenceBatchAnswerSchema = z.object({
  results: z.array(z.discriminatedUnion('status', [
    z.object({ municipality: z.string(), code: codeSchema, status: z.enum(['created', 'unchanged']) }),
    z.object({ municipality: z.string(), code: codeSchema, status: z.literal('refused'), reason: z.enum(['code_taken', 'link_has_other_code']) }),
  ])),
  head: logHeadSchema.optional(),
});
