import { z } from 'zod';
import { municipalityCodeSchema, purposeSchema } from '../../../../shared/federation/protocol.ts';
import { addresseeNumberSchema } from '../../residents/schemas.ts';
import { calendarDate } from '../../../../shared/platform/dates.ts';

/** Most subjects named in one request body (a `movedInSince` selection has no such limit). */
export const MAX_JOB_SUBJECTS = 5000;

const municipality = municipalityCodeSchema;
const purpose = purposeSchema;

/**
 * A bulk move-in query (転入者一斉照会): either the subjects by name, or "every resident moved in
 * since a date, with a consent for this purpose" (optionally from one source only).
 */
export const bulkQuerySchema = z.object({
  purpose,
  subjects: z.array(z.object({ addresseeNumber: addresseeNumberSchema, source: municipality }).strict())
    .min(1, 'must name at least one subject').max(MAX_JOB_SUBJECTS, `must name at most ${MAX_JOB_SUBJECTS} subjects`).optional(),
  movedInSince: calendarDate().optional(),
  source: municipality.optional(),
}).strict().superRefine((input, ctx) => {
  if (input.subjects && input.movedInSince) {
    ctx.addIssue({ code: 'custom', path: ['movedInSince'], message: 'must not be given together with subjects' });
  } else if (!input.subjects && !input.movedInSince) {
    ctx.addIssue({ code: 'custom', path: ['subjects'], message: 'is required unless movedInSince selects the subjects' });
  }
  if (input.subjects && input.source) ctx.addIssue({ code: 'custom', path: ['source'], message: 'only narrows a movedInSince selection' });
  const seen = new Map<string, number>();
  for (const [i, s] of (input.subjects ?? []).entries()) {
    const key = `${s.addresseeNumber}|${s.source}`;
    if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['subjects', i, 'addresseeNumber'], message: `must be unique per source in one job (repeats subjects.${seen.get(key)})` });
    else seen.set(key, i);
  }
});
export type BulkQueryInput = z.infer<typeof bulkQuerySchema>;

export const jobIdSchema = z.uuid('must be a bulk query id');

export const SUBJECT_STATES = ['pending', 'retrying', 'done'] as const;
export type SubjectState = (typeof SUBJECT_STATES)[number];

export const listSubjectsSchema = z.object({
  state: z.enum(SUBJECT_STATES, { error: `must be one of ${SUBJECT_STATES.join(', ')}` }).optional(),
  page: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100_000, 'must be at most 100000').default(1),
  pageSize: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(500, 'must be at most 500').default(100),
}).strict();
export type ListSubjectsInput = z.infer<typeof listSubjectsSchema>;
