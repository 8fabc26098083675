import type { SealedIdentity } from '../../../shared/federation/protocol.ts';

/**
 * Katakana in one canonical form: NFKC (half-width → full-width), hiragana → katakana, no spaces
 * or middle dots. Registers differ in spacing and width, never in the sounds themselves.
 */
export function normalizeKana(kana: string): string {
  return kana
    .normalize('NFKC')
    .replace(/[\u3041-\u3096]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) + 0x60))
    .replace(/[\s\u3000・･]/g, '');
}

export type IdentityField = 'birthDate' | 'sex' | 'kana';

/**
 * The identity cross-check before any record leaves: birth date, sex and kana must all agree.
 * Returns the fields that differ (for the log; never the values themselves).
 */
export function identityMismatches(claimed: Pick<SealedIdentity, 'birthDate' | 'sex' | 'kana'>, resident: { birthDate: string; sex: string; kana: string }): IdentityField[] {
  const differs: IdentityField[] = [];
  if (claimed.birthDate !== resident.birthDate) differs.push('birthDate');
  if (claimed.sex !== resident.sex) differs.push('sex');
  if (normalizeKana(claimed.kana) !== normalizeKana(resident.kana)) differs.push('kana');
  return differs;
}
