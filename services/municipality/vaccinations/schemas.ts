import { z } from 'zod';
import { freeText, withoutMyNumber } from '../../../shared/platform/validation.ts';
import { addresseeNumberSchema, birthDateSchema, reasonSchema } from '../residents/schemas.ts';
import { calendarDate, todayInJapan } from '../../../shared/platform/dates.ts';
import { findProduct } from './catalogue.ts';
import { REVIEW_STATUSES } from './model.ts';
import { checkRecordFields, type Violation } from './rules.ts';

/** Lot numbers as printed: NFKC folds full-width letters, and labels are upper case. */
// The My Number check comes first so that it is named even when the value is also too long.
const lotNumber = z.string({ error: 'is required' }).superRefine(withoutMyNumber).max(20, 'must be at most 20 characters')
  .transform((s) => s.normalize('NFKC').trim().toUpperCase())
  .refine((s) => s.length > 0, 'is required');
const vaccineCode = z.string({ error: 'is required' }).max(40, 'must be at most 40 characters')
  .refine((c) => findProduct(c) !== undefined, 'must be a vaccine code from the catalogue (GET /vaccines)');
const place = freeText({ max: 200 });
const doseNumber = z.number({ error: 'must be a whole number' }).int('must be a whole number').min(1, 'must be at least 1').max(20, 'must be at most 20');
export const ticketNumberSchema = z.string().regex(/^\d{10}$/, 'must be 10 digits');

/** Reports catalogue and calendar violations as zod issues, so one 400 names every field at fault. */
function catalogueRules(fields: Violation['field'][]) {
  return (value: { vaccineCode?: string; lotNumber?: string; doseNumber?: number; occurrenceDate?: string }, ctx: z.RefinementCtx) => {
    if (value.vaccineCode === undefined || !findProduct(value.vaccineCode)) return;
    const violations = checkRecordFields({
      vaccineCode: value.vaccineCode, lotNumber: value.lotNumber ?? '', doseNumber: value.doseNumber ?? 1, occurrenceDate: value.occurrenceDate ?? '',
    }, todayInJapan());
    for (const v of violations) if (fields.includes(v.field)) ctx.addIssue({ code: 'custom', path: [v.field], message: v.rule });
  };
}

export const recordInputSchema = z.object({
  occurrenceDate: calendarDate({ max: 'today' }),
  vaccineCode,
  lotNumber,
  doseNumber,
  ticketNumber: ticketNumberSchema.nullable().optional(),
  place,
}).strict().superRefine(catalogueRules(['occurrenceDate', 'lotNumber', 'doseNumber']));
export type RecordInput = z.infer<typeof recordInputSchema>;

/** A correction names the fields it changes and why; the rest is carried over from the current version. */
export const correctionSchema = z.object({
  occurrenceDate: calendarDate({ max: 'today' }).optional(),
  vaccineCode: vaccineCode.optional(),
  lotNumber: lotNumber.optional(),
  doseNumber: doseNumber.optional(),
  place: place.optional(),
  reason: reasonSchema,
}).strict().refine((c) => ['occurrenceDate', 'vaccineCode', 'lotNumber', 'doseNumber', 'place'].some((k) => c[k as keyof typeof c] !== undefined), {
  message: 'at least one of occurrenceDate, vaccineCode, lotNumber, doseNumber, place must be given', path: ['reason'],
});
export type CorrectionInput = z.infer<typeof correctionSchema>;

export const voidSchema = z.object({ reason: reasonSchema }).strict();

export const recordIdSchema = z.uuid({ error: 'must be a record id (UUID)' });

export const issueTicketSchema = z.object({
  type: z.literal([1, 2], { error: 'must be 1 (COVID-19) or 2 (routine)' }),
  doseNumber: z.number({ error: 'must be a whole number' }).int('must be a whole number').min(1, 'must be at least 1').max(9, 'must be at most 9'),
}).strict();
export type IssueTicketInput = z.infer<typeof issueTicketSchema>;

/** Registration from a ticket: the dose comes from the ticket, the birth date is the second factor. */
export const fromTicketSchema = z.object({
  ocrLine: z.string({ error: 'is required' }).max(64, 'must be at most 64 characters'),
  birthDate: birthDateSchema,
  occurrenceDate: calendarDate({ max: 'today' }),
  vaccineCode,
  lotNumber,
  place,
}).strict().superRefine(catalogueRules(['occurrenceDate', 'lotNumber']));
export type FromTicketInput = z.infer<typeof fromTicketSchema>;

export const approveReviewSchema = z.object({
  addresseeNumber: addresseeNumberSchema,
  reason: reasonSchema,
  /** The dose the clerk established, when the ticket's own dose was the problem. */
  doseNumber: doseNumber.optional(),
}).strict();
export type ApproveReviewInput = z.infer<typeof approveReviewSchema>;

export const rejectReviewSchema = z.object({ reason: reasonSchema }).strict();

export const listReviewsSchema = z.object({
  status: z.enum(REVIEW_STATUSES, { error: `must be one of ${REVIEW_STATUSES.join(', ')}` }).optional(),
  page: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100_000, 'must be at most 100000').default(1),
  pageSize: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100, 'must be at most 100').default(20),
}).strict();
export type ListReviewsInput = z.infer<typeof listReviewsSchema>;

export const reviewIdSchema = z.uuid({ error: 'must be a review id (UUID)' });
