import type { z } from 'zod';
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
