import { z } from 'zod';
import { freeText } from '../../../shared/platform/validation.ts';
import { isValidMunicipalityCode, isValidMyNumber } from '../../../shared/identifiers.ts';
import { calendarDate, dateTime, EARLIEST_DATE } from '../../../shared/platform/dates.ts';

export const SEXES = ['male', 'female', 'other', 'unknown'] as const;
export const RESIDENT_STATUSES = ['resident', 'moved-out', 'deceased'] as const;
export type Sex = (typeof SEXES)[number];
export type ResidentStatus = (typeof RESIDENT_STATUSES)[number];

/**
 * Addressee numbers (宛名番号) are 9 digits plus a Luhn check digit: local to this municipality,
 * but typed by clerks, so a slip of one digit is refused instead of opening someone else's file.
 */
export function addresseeCheckDigit(first9: string): number {
  let sum = 0;
  for (let i = 0; i < first9.length; i++) {
    let d = Number(first9[first9.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

export const isValidAddresseeNumber = (value: unknown): value is string =>
  typeof value === 'string' && /^\d{10}$/.test(value) && addresseeCheckDigit(value.slice(0, 9)) === Number(value[9]);

export const completeAddresseeNumber = (first9: string): string => first9 + String(addresseeCheckDigit(first9));

/** Digits only: the lookup that follows finds the resident or answers 404. */
export const addresseeDigitsSchema = z.string().regex(/^\d{1,20}$/, 'must be an addressee number (digits)');

export const addresseeNumberSchema = z.string({ error: 'is required' })
  .refine(isValidAddresseeNumber, 'must be a 10-digit addressee number with a valid check digit');

/**
 * Katakana in the form we store: NFKC (half-width → full-width katakana), family and given names
 * separated by one full-width space. Hiragana or kanji are refused rather than converted: the
 * kana is what the identity check compares, so it must be what the resident wrote.
 */
export function canonicalKana(kana: string): string {
  return kana.normalize('NFKC').trim().split(/\s+/u).join('\u3000');
}

const KANA = /^[\u30A1-\u30FA\u30FC\u30FB]+(\u3000[\u30A1-\u30FA\u30FC\u30FB]+)*$/u;

export const kanaSchema = z.string({ error: 'is required' })
  .max(100, 'must be at most 100 characters')
  .transform(canonicalKana)
  .refine((k) => k.length > 0, 'is required')
  .refine((k) => KANA.test(k), 'must be full-width katakana, family and given names separated by a space');

export const nameSchema = freeText({ max: 100 });
export const addressSchema = freeText({ max: 300 });
export const reasonSchema = freeText({ max: 500, multiline: true });

export const birthDateSchema = calendarDate({ min: EARLIEST_DATE, max: 'today' });

export const sexSchema = z.enum(SEXES, { error: `must be one of ${SEXES.join(', ')}` });

const dateOrTime = z.union([calendarDate({ max: 'today' }), dateTime({ max: 'today' })], { error: 'must be a date YYYY-MM-DD or an ISO date-time, not in the future' });

export const createResidentSchema = z.object({
  name: nameSchema,
  kana: kanaSchema,
  birthDate: birthDateSchema,
  sex: sexSchema,
  address: addressSchema,
  myNumber: z.string({ error: 'is required' }).refine(isValidMyNumber, 'must be 12 digits with a valid check digit'),
  previousMunicipality: z.string().refine(isValidMunicipalityCode, 'must be a 6-digit municipality code with a valid check digit').optional(),
  movedInAt: dateOrTime.optional(),
}).strict();
export type CreateResidentInput = z.input<typeof createResidentSchema>;
export type CreateResidentData = z.infer<typeof createResidentSchema>;

/** Attribute changes a clerk may make; each is kept in the resident's history with its reason. */
export const updateResidentSchema = z.object({
  name: nameSchema.optional(),
  kana: kanaSchema.optional(),
  address: addressSchema.optional(),
  reason: reasonSchema,
}).strict().refine((u) => u.name !== undefined || u.kana !== undefined || u.address !== undefined, {
  message: 'at least one of name, kana, address must be given', path: ['name'],
});
export type UpdateResidentInput = z.infer<typeof updateResidentSchema>;

export const searchResidentsSchema = z.object({
  name: freeText({ max: 100, minRule: 'must not be empty' }).optional(),
  kana: z.string().max(100, 'must be at most 100 characters').transform(canonicalKana)
    .refine((k) => k.length > 0 && KANA.test(k), 'must be full-width katakana').optional(),
  birthDate: calendarDate().optional(),
  status: z.enum(RESIDENT_STATUSES, { error: `must be one of ${RESIDENT_STATUSES.join(', ')}` }).optional(),
  page: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100_000, 'must be at most 100000').default(1),
  pageSize: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100, 'must be at most 100').default(20),
}).strict();
export type SearchResidentsInput = z.infer<typeof searchResidentsSchema>;
