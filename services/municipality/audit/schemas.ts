import { z } from 'zod';

export { accessFilterSchema, type AccessFilter } from '../../../shared/audit-query.ts';

export const seqParamSchema = z.object({
  seq: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1'),
});

export const requestIdParamSchema = z.object({
  requestId: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be a request id (letters, digits, . _ : -)'),
});

const time = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time, e.g. 2025-04-01T00:00:00Z' })
  .transform((text) => new Date(text).toISOString());

/** Time range of a reconciliation; both ends optional (the whole log). */
export const reconcileSchema = z.object({ from: time.optional(), to: time.optional() }).strict()
  .refine((r) => !r.from || !r.to || r.from <= r.to, { message: 'must not be before from', path: ['to'] });
