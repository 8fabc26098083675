/**
 * Rules a vaccination record must satisfy, as pure functions (no database, no clock unless
 * passed in) so that each rule is unit-tested on its own. Each returns the violations it found,
 * naming the field and the rule in words a clerk can act on.
 */
import { calendarDateRule } from '../../../shared/platform/dates.ts';
import { findProduct, type Product } from './catalogue.ts';

export interface Violation {
  field: string;
  rule: string;
}

/** Influenza season a seasonal dose belongs to: September to August, named by its first year. */
export function seasonOf(date: string): number {
  const year = Number(date.slice(0, 4));
  return Number(date.slice(5, 7)) >= 9 ? year : year - 1;
}

export interface RecordFields {
  vaccineCode: string;
  lotNumber: string;
  doseNumber: number;
  occurrenceDate: string;
}

/** Checks a record's fields against the catalogue and the calendar (independent of the resident). */
export function checkRecordFields(input: RecordFields, today: string): Violation[] {
  const out: Violation[] = [];
  const dateRule = calendarDateRule(input.occurrenceDate);
  if (dateRule) out.push({ field: 'occurrenceDate', rule: dateRule });
  else if (input.occurrenceDate > today) out.push({ field: 'occurrenceDate', rule: 'must not be in the future' });
  const product = findProduct(input.vaccineCode);
  if (!product) {
    out.push({ field: 'vaccineCode', rule: 'must be a vaccine code from the catalogue (GET /vaccines)' });
    return out;
  }
  if (!product.lot.test(input.lotNumber)) {
    out.push({ field: 'lotNumber', rule: `must match the lot format of ${product.code} (e.g. ${product.lotExample})` });
  }
  if (!Number.isInteger(input.doseNumber) || input.doseNumber < 1 || input.doseNumber > product.maxDoses) {
    out.push({ field: 'doseNumber', rule: `must be between 1 and ${product.maxDoses} for ${product.code}` });
  }
  return out;
}

/** A vaccination cannot precede the person it was given to. */
export function checkAgainstBirth(occurrenceDate: string, birthDate: string): Violation[] {
  return occurrenceDate < birthDate ? [{ field: 'occurrenceDate', rule: 'must not be before the birth date' }] : [];
}

/** An active dose already on the resident's record (current version, status completed). */
export interface ExistingDose {
  recordId: string;
  vaccineCode: string;
  doseNumber: number;
  occurrenceDate: string;
}

const seriesOf = (code: string): Product | undefined => findProduct(code);

/** The existing doses of the candidate's series, minus the record being corrected. */
function sameSeries(candidate: RecordFields & { recordId?: string }, existing: ExistingDose[], product: Product): ExistingDose[] {
  return existing.filter((d) => d.recordId !== candidate.recordId && seriesOf(d.vaccineCode)?.series === product.series);
}

/**
 * Dose numbers must be consistent within a series: no two active doses share a number, and
 * dose n falls strictly after every lower dose and strictly before every higher one. A seasonal
 * series (influenza for the elderly) restarts each season, so it allows one dose per season.
 * Missing lower doses are allowed: they may have been given elsewhere and not yet imported.
 */
export function checkDoseSequence(candidate: RecordFields & { recordId?: string }, existing: ExistingDose[]): Violation[] {
  const product = findProduct(candidate.vaccineCode);
  if (!product) return [];
  const others = sameSeries(candidate, existing, product);
  const out: Violation[] = [];
  if (product.seasonal) {
    const season = seasonOf(candidate.occurrenceDate);
    if (others.some((d) => seasonOf(d.occurrenceDate) === season)) {
      out.push({ field: 'occurrenceDate', rule: `a dose of ${product.series} is already recorded for the ${season}/${season + 1} season` });
    }
    return out;
  }
  if (others.some((d) => d.doseNumber === candidate.doseNumber)) {
    out.push({ field: 'doseNumber', rule: `dose ${candidate.doseNumber} of ${product.series} is already recorded` });
  }
  const earlier = others.filter((d) => d.doseNumber < candidate.doseNumber && d.occurrenceDate >= candidate.occurrenceDate);
  if (earlier.length) {
    const d = earlier.sort((a, b) => b.doseNumber - a.doseNumber)[0]!;
    out.push({ field: 'occurrenceDate', rule: `must be after dose ${d.doseNumber} of ${product.series} (${d.occurrenceDate})` });
  }
  const later = others.filter((d) => d.doseNumber > candidate.doseNumber && d.occurrenceDate <= candidate.occurrenceDate);
  if (later.length) {
    const d = later.sort((a, b) => a.doseNumber - b.doseNumber)[0]!;
    out.push({ field: 'occurrenceDate', rule: `must be before dose ${d.doseNumber} of ${product.series} (${d.occurrenceDate})` });
  }
  return out;
}

/** The dose a resident is due next in the series of `vaccineCode` (1 + highest active dose). */
export function nextDoseNumber(vaccineCode: string, existing: ExistingDose[]): number {
  const product = findProduct(vaccineCode);
  if (!product) return 1;
  if (product.seasonal) return 1;
  const numbers = sameSeries({ vaccineCode, lotNumber: '', doseNumber: 0, occurrenceDate: '' }, existing, product).map((d) => d.doseNumber);
  return numbers.length ? Math.max(...numbers) + 1 : 1;
}
