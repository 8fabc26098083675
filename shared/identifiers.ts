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
 * Finds every 12-digit run in a text that is a valid My Number. Used by log redaction and by
 * the leak scans: a valid check digit is what separates a My Number from other 12-digit values.
 */
export function findMyNumbers(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?<!\d)\d{12}(?!\d)/g)) {
    if (isValidMyNumber(match[0])) found.push(match[0]);
  }
  return found;
}
