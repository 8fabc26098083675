/**
 * Identifiers with check digits. Every entry point validates them, because a misread digit
 * (VRS's OCR problem) must be refused, never silently matched to someone else.
 */

const MY_NUMBER = /^\d{12}$/;
const MUNICIPALITY_CODE = /^\d{6}$/;

/** Check digit of the first 11 digits of a My Number (weights 2–7, 2–6 from the right, mod 11). */
export function myNumberCheckDigit(first11: string): number {
  let sum = 0;
  for (let n = 1; n <= 11; n++) {
    const digit = Number(first11[11 - n]);
    const weight = n <= 6 ? n + 1 : n - 5;
    sum += digit * weight;
  }
  const remainder = sum % 11;
  return remainder <= 1 ? 0 : 11 - remainder;
}

export function isValidMyNumber(value: unknown): value is string {
  return typeof value === 'string' && MY_NUMBER.test(value)
    && myNumberCheckDigit(value.slice(0, 11)) === Number(value[11]);
}

/** Only the last four digits are ever shown to staff. */
export function maskMyNumber(myNumber: string): string {
  return '********' + myNumber.slice(-4);
}

/** Check digit of a 5-digit local government code (weights 6,5,4,3,2; (11 - sum % 11) % 10). */
export function municipalityCheckDigit(first5: string): number {
  let sum = 0;
  for (let i = 0; i < 5; i++) sum += Number(first5[i]) * (6 - i);
  return (11 - (sum % 11)) % 10;
}

export function isValidMunicipalityCode(value: unknown): value is string {
  return typeof value === 'string' && MUNICIPALITY_CODE.test(value)
    && municipalityCheckDigit(value.slice(0, 5)) === Number(value[5]);
}

/** Builds a valid My Number from any 11-digit prefix (synthetic data only). */
export function completeMyNumber(first11: string): string {
  return first11 + String(myNumberCheckDigit(first11));
}

/** Builds a valid municipality code from a 5-digit prefix (simulation only). */
export function completeMunicipalityCode(first5: string): string {
  return first5 + String(municipalityCheckDigit(first5));
}

/**
 * Separators a person may type or paste between the digits of a number: spaces (ASCII, no-break,
 * 全角 U+3000, tabs, line breaks), zero-width characters (U+200B–U+200D, U+2060, U+FEFF: invisible,
 * and left behind by copying from web pages), hyphens and dashes of every width (including ー, which
 * Japanese input often gives for a hyphen), dots (. ． ・ ･), underscores, slashes (/ ／), commas
 * (, ，) and parentheses (( ) （ ）, as in 1234(5678)9018).
 */
const SEPARATOR = String.raw`[\s\u200B-\u200D\u2060\uFEFF\-\u2010-\u2015\u2212\u30FC\uFF0D\uFF70._\uFF0E\u30FB\uFF65\uFF3F/\uFF0F,\uFF0C()\uFF08\uFF09]`;
/** At most this many separator characters between two digits still join them into one number. */
const MAX_SEPARATOR_RUN = 3;
/** A run of spaces alone may be longer (a number padded in a form, or aligned in pasted columns). */
const MAX_SPACE_RUN = 12;
const SPACE = String.raw`[\s\u200B-\u200D\u2060\uFEFF]`;
const DIGIT = String.raw`\p{Nd}`;
/** Runs of digits joined by short separator runs (or longer runs of spaces): candidates for a written-out number. */
const DIGIT_GROUP = new RegExp(`${DIGIT}(?:(?:${SEPARATOR}{0,${MAX_SEPARATOR_RUN}}|${SPACE}{${MAX_SEPARATOR_RUN + 1},${MAX_SPACE_RUN}})${DIGIT})*`, 'gu');
const ANY_DIGIT = /\p{Nd}/u;
/** A canonical UUID (RFC 9562 text form), not part of a longer run of hex digits. */
const UUID = /(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])/gi;

/** The value 0–9 of a decimal digit in any script (ASCII, 全角 ０-９, Arabic-Indic, mathematical …). */
function digitValue(ch: string): number {
  const code = ch.codePointAt(0)!;
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0xff10 && code <= 0xff19) return code - 0xff10;
  const folded = ch.normalize('NFKC');
  if (/^[0-9]$/.test(folded)) return folded.charCodeAt(0) - 0x30;
  // Unicode lays out each decimal digit set as ten consecutive code points from zero, sets side by side.
  let zero = code;
  while (zero > code - 60 && ANY_DIGIT.test(String.fromCodePoint(zero - 1))) zero -= 1;
  return (code - zero) % 10;
}

/** Where a written-out My Number sits in a text, and its 12 ASCII digits. */
export interface MyNumberSpan {
  start: number;
  end: number;
  myNumber: string;
}

/**
 * Finds every valid My Number written in a text, in any notation a person could type or paste:
 * 12 digits (ASCII, 全角 or any other script) with or without separators between them —
 * 1234-5678-9018, １２３４　５６７８　９０１８, 1234.5678.9018, 1234/5678/9018, 1234,5678,9018,
 * (1234)5678-9018, 1234<U+200B>5678<U+200B>9018, 1234      5678 9018, mixed. A candidate starts and ends
 * where its digit group does or at a separator, never inside a longer run of digits (a 13-digit
 * value holds no My Number); the check digit tells a My Number from other 12-digit values.
 * Used by log redaction, by the free-text check of every input (shared/platform/validation.ts)
 * and by the leak scans (SECURITY.md, threat model §2).
 */
export function findMyNumberSpans(text: string): MyNumberSpan[] {
  if (!ANY_DIGIT.test(text)) return [];
  // A UUID (request ids, Idempotency-Keys, resource ids) is taken whole: its middle groups are
  // 4-4-4 hex digits, all decimal in about one UUID in 700, and then look like a typed My Number.
  const uuids = [...text.matchAll(UUID)].map((m) => ({ start: m.index!, end: m.index! + m[0].length }));
  const inUuid = (start: number, end: number) => uuids.some((u) => start >= u.start && end <= u.end);
  const found: MyNumberSpan[] = [];
  for (const group of text.matchAll(DIGIT_GROUP)) {
    const digits: { value: number; start: number; end: number; afterSeparator: boolean }[] = [];
    let afterSeparator = true;
    let offset = group.index!;
    for (const ch of group[0]) {
      if (/\p{Nd}/u.test(ch)) {
        digits.push({ value: digitValue(ch), start: offset, end: offset + ch.length, afterSeparator });
        afterSeparator = false;
      } else {
        afterSeparator = true;
      }
      offset += ch.length;
    }
    if (digits.length < 12) continue;
    // A number may begin at the group's start or after a separator, and must end before one or at the group's end.
    for (let i = 0; i + 12 <= digits.length; i++) {
      if (!digits[i]!.afterSeparator) continue;
      const last = i + 11;
      if (last + 1 < digits.length && !digits[last + 1]!.afterSeparator) continue;
      const candidate = digits.slice(i, last + 1).map((d) => String(d.value)).join('');
      if (isValidMyNumber(candidate) && !inUuid(digits[i]!.start, digits[last]!.end)) found.push({ start: digits[i]!.start, end: digits[last]!.end, myNumber: candidate });
    }
  }
  return found;
}

/** Every valid My Number in a text, in any notation, as 12 ASCII digits. */
export function findMyNumbers(text: string): string[] {
  return findMyNumberSpans(text).map((s) => s.myNumber);
}

/** True when a text holds a valid My Number in any notation: free text must never carry one. */
export const containsMyNumber = (text: string): boolean => findMyNumberSpans(text).length > 0;
