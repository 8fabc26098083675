import { z } from 'zod';
import { MAX_PAGE } from '../../../shared/access-log/query.ts';

/** GET /retention/removals: newest first, keyset paging on the log's seq like GET /audit/entries. */
export const listRemovalsSchema = z.object({
  limit: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(MAX_PAGE, `must be at most ${MAX_PAGE}`).default(50),
  cursor: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').optional(),
}).strict();
export type ListRemovalsInput = z.infer<typeof listRemovalsSchema>;

/** A rule as the tombstone and the API state it: which records, which setting, how many years, when the period ended. */
export const appliedRuleView = z.object({
  kind: z.enum(['local', 'imported']).describe('local: records made here; imported: copies from another municipality'),
  setting: z.string(),
  yearsAfterDeath: z.number().int(),
  periodEndedOn: z.string().describe('The last day of the period (Japan\'s calendar); removal comes after it'),
});

/** One removal, read back from its tombstone in the access log (no personal data). */
export const removalView = z.object({
  seq: z.number().int(),
  at: z.string(),
  requestId: z.string(),
  addresseeNumber: z.string(),
  /** `removed`: every period passed and the resident's personal data went too; `kept`: only some kinds of record went. */
  resident: z.enum(['removed', 'kept']),
  rules: z.array(appliedRuleView),
  tables: z.record(z.string(), z.number().int()),
});
export type RemovalView = z.infer<typeof removalView>;

/** What one run did. */
export const runReportView = z.object({
  today: z.string(),
  checked: z.number().int(),
  removals: z.array(removalView),
  failed: z.array(z.object({ addresseeNumber: z.string(), code: z.string() })),
});
export type RunReport = z.infer<typeof runReportView>;
