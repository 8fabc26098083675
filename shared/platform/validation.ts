import { z } from 'zod';
import { containsMyNumber } from '../identifiers.ts';
import { AppError } from './errors.ts';

/**
 * Parses input with a zod schema; a failure becomes one 400 problem naming every field at fault
 * and the rule it broke (the first is also `field`/`rule` at top level, for simple clients).
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, where = 'body'): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({
    field: issue.path.length ? issue.path.join('.') : where,
    rule: issue.message,
  }));
  const first = errors[0] ?? { field: where, rule: 'invalid' };
  throw new AppError(400, 'validation', `Invalid ${first.field}: ${first.rule}`, { field: first.field, rule: first.rule, errors });
}

/** The rule every free-text field states when it meets a My Number (SECURITY.md, threat model §2). */
export const NO_MY_NUMBER_RULE = 'must not contain a My Number';
// C0 and C1 controls: a NUL ends a C string in a driver, a line break forges a log or CSV line.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const LINE_BREAK = /[\n\r\t]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Refinement for any string a person types: no valid My Number in any notation, in any field. */
export const withoutMyNumber = (value: string, ctx: z.RefinementCtx): void => {
  if (containsMyNumber(value)) ctx.addIssue({ code: 'custom', message: NO_MY_NUMBER_RULE });
};

export interface FreeTextOptions {
  /** Most characters after trimming. */
  max: number;
  /** Fewest characters after trimming (1: required). */
  min?: number;
  /** The rule stated when shorter than `min`. */
  minRule?: string;
  /** Whether line breaks and tabs are allowed (notes, justifications). */
  multiline?: boolean;
}

/**
 * The one schema of free text a clerk types — names, addresses, places, reasons, notes,
 * justifications: NFC, trimmed, within length, valid Unicode, no control characters, and never
 * a My Number in any notation (it would sit in plain text outside the encrypted column).
 */
export function freeText({ max, min = 1, minRule, multiline = false }: FreeTextOptions) {
  return z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be text') })
    .transform((s) => s.normalize('NFC').trim())
    .superRefine((s, ctx) => {
      const rule = s.length < min ? (minRule ?? (min === 1 ? 'is required' : `must be at least ${min} characters`))
        : s.length > max ? `must be at most ${max} characters`
          : LONE_SURROGATE.test(s) ? 'must be valid Unicode text'
            : CONTROL.test(s) || (!multiline && LINE_BREAK.test(s)) ? 'must not contain control characters'
              : containsMyNumber(s) ? NO_MY_NUMBER_RULE
                : undefined;
      if (rule) ctx.addIssue({ code: 'custom', message: rule });
    });
}

/** A request id as members and clients write it: letters, digits and . _ : -, never a My Number. */
export const requestIdSchema = z.string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be a request id (letters, digits, . _ : -)')
  .superRefine(withoutMyNumber);
