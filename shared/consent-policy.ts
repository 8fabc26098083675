import { randomUUID, type KeyObject } from 'node:crypto';
import { CLOCK_SKEW_SECONDS, jose, peekJwt } from './crypto.ts';
import { AppError } from './platform/errors.ts';
import { signMessage, verifyMessage } from './federation/messages.ts';
import { verifyResidentCertificate, type VerifiedResidentCertificate } from './federation/pki.ts';
import {
  CONSENT_SCOPE, RESIDENT_ISSUER, Typ, residentConsentClaimsSchema,
  type ConsentTerms, type Purpose, type QuerySubject, type ResidentConsentClaims, type SubjectStatus,
} from './federation/protocol.ts';

/** The longest consent a municipality records: the vaccination-history question matters around a move, not forever. */
export const MAX_CONSENT_DAYS = 366;
const DAY_MS = 24 * 3600 * 1000;
const SKEW_MS = CLOCK_SKEW_SECONDS * 1000;

export interface PolicyVerdict {
  status: Extract<SubjectStatus, 'ok' | 'no_consent' | 'consent_expired' | 'denied'>;
  reason?: string;
  flags: string[];
}

/**
 * Whether consent terms cover asking `source` for `purpose`: null when they do, else the first
 * term that does not. The one rule for both B's stored consents and the terms every hop checks.
 */
export function consentMismatch(
  terms: { scope: string; purpose: string; sources: readonly string[] }, source: string, purpose: string,
): 'consent_scope' | 'consent_purpose' | 'consent_source' | null {
  if (terms.scope !== CONSENT_SCOPE) return 'consent_scope';
  if (terms.purpose !== purpose) return 'consent_purpose';
  if (!terms.sources.includes(source)) return 'consent_source';
  return null;
}

/** Whether a consent is in force at `now` (its start allowed the clock skew between members): null when it is. */
export function consentNotInForce(terms: { givenAt: string; expiresAt: string }, now = new Date()): 'consent_not_yet_given' | 'consent_expired' | null {
  if (!(Date.parse(terms.givenAt) <= now.getTime() + SKEW_MS)) return 'consent_not_yet_given';
  if (!(Date.parse(terms.expiresAt) > now.getTime())) return 'consent_expired';
  return null;
}

/** No consent revoked (B decides on its own consents, which carry their revocation). */
export const NO_REVOKED_CONSENTS: ReadonlySet<string> = new Set();

/**
 * Checks one subject of a signed query against its legal basis: the consent terms B signed in,
 * or the exception approval. Run on its own at every hop (B before signing, the gateway, A), so
 * that no single member's mistake or malice releases records. `revokedConsentIds` are the
 * requester's consent ids this hop holds a signed revocation of, from its own table
 * (docs/DESIGN.md §4.4): terms carrying one are refused, whatever else they say.
 */
export function checkLegalBasis(
  subject: QuerySubject, query: { purpose: string; actor?: string }, now = new Date(), revokedConsentIds: ReadonlySet<string> = NO_REVOKED_CONSENTS,
): PolicyVerdict {
  if (subject.legalBasis === 'life-protection') {
    const e = subject.exception;
    if (!e) return { status: 'denied', reason: 'exception_missing', flags: ['life-protection'] };
    if (e.approvedBy === e.requestedBy) return { status: 'denied', reason: 'exception_self_approved', flags: ['life-protection'] };
    if (e.justification.trim().length < 20) return { status: 'denied', reason: 'exception_unjustified', flags: ['life-protection'] };
    if (!(Date.parse(e.approvedAt) <= now.getTime() + SKEW_MS)) return { status: 'denied', reason: 'exception_not_yet_approved', flags: ['life-protection'] };
    return { status: 'ok', flags: ['life-protection'] };
  }
  const c = subject.consent;
  if (!c) return { status: 'no_consent', reason: 'no_consent_terms', flags: [] };
  if (revokedConsentIds.has(c.id)) return { status: 'no_consent', reason: 'consent_revoked', flags: [] };
  const mismatch = consentMismatch(c, subject.source, query.purpose);
  if (mismatch) return { status: 'no_consent', reason: mismatch, flags: [] };
  const notInForce = consentNotInForce(c, now);
  if (notInForce === 'consent_not_yet_given') return { status: 'no_consent', reason: notInForce, flags: [] };
  if (notInForce === 'consent_expired') return { status: 'consent_expired', reason: notInForce, flags: [] };
  // A resident-signed consent travels with the resident's signature; the signature alone is not a method.
  if ((c.method === 'resident-signed') !== (c.residentSignature !== undefined)) return { status: 'no_consent', reason: 'resident_signature_missing', flags: [] };
  // Terms no municipality would have recorded (B's own rule) are refused at every hop, not trusted.
  if (Date.parse(c.expiresAt) - Date.parse(c.givenAt) > MAX_CONSENT_DAYS * DAY_MS) return { status: 'no_consent', reason: 'consent_term_too_long', flags: [] };
  return { status: 'ok', flags: [] };
}

/* ---------- resident-signed consent (docs/DESIGN.md §4.4, docs/PROTOCOL.md §8.3) ---------- */

/** The resident's side: what they sign with the key of their personal certificate. */
export interface ResidentConsentRequest {
  requester: string;
  source: string;
  purpose: Purpose;
  /** Seconds the consent stays valid from now (at most MAX_CONSENT_DAYS). */
  validSeconds: number;
}

/**
 * Signs a consent as the resident (their device or card does this; scripts and tests use it): a
 * JWT with iss `resident`, aud = the source, the requester, purpose and validity, and the kid of
 * the resident's certificate in the header.
 */
export async function signResidentConsent(request: ResidentConsentRequest, resident: { key: KeyObject; kid: string }): Promise<string> {
  return signMessage({ aud: request.source, jti: randomUUID(), scope: CONSENT_SCOPE, requester: request.requester, purpose: request.purpose },
    { id: RESIDENT_ISSUER, key: resident.key, kid: resident.kid }, Typ.RESIDENT_CONSENT, request.validSeconds);
}

export interface VerifiedResidentConsent {
  claims: ResidentConsentClaims;
  certificate: VerifiedResidentCertificate;
}

/** Why a resident-signed consent was refused: a stable reason word and the field at fault. */
export class ResidentConsentRefused extends AppError {
  constructor(readonly reason: string, field: string, rule: string) {
    super(422, 'resident-consent-refused', 'Resident-signed consent refused', { field, rule, reason });
  }
}

/**
 * Verifies a resident-signed consent on its own, with the federation CA as the only trust anchor:
 * the certificate chains to the CA, is valid now and not revoked, and names a resident; the JWT is
 * signed by that certificate's key (kid = the certificate's), typed, addressed to `source` (when
 * given), from `requester` (when given), and not expired. Whoever releases or records on its
 * strength calls this itself. Throws `ResidentConsentRefused`.
 */
export async function verifyResidentConsent(
  signature: string, certificatePem: string,
  expected: { ca: string; isRevoked?: (serial: string) => boolean; source?: string; requester?: string; now?: Date },
): Promise<VerifiedResidentConsent> {
  const now = expected.now ?? new Date();
  let certificate: VerifiedResidentCertificate;
  try {
    certificate = verifyResidentCertificate(certificatePem, expected.ca, { at: now, isRevoked: expected.isRevoked, field: 'certificate' });
  } catch (err) {
    throw new ResidentConsentRefused('resident_certificate_invalid', 'certificate', err instanceof AppError ? String(err.extra.rule) : 'must be a personal certificate of the federation CA');
  }
  let peeked;
  try {
    peeked = peekJwt(signature);
  } catch {
    throw new ResidentConsentRefused('resident_signature_invalid', 'signature', 'must be a compact JWS');
  }
  if (peeked.header.kid !== certificate.kid) throw new ResidentConsentRefused('resident_signature_invalid', 'signature', 'kid must name the presented certificate');
  const audience = expected.source ?? peeked.claims.aud;
  let claims: ResidentConsentClaims;
  try {
    claims = await verifyMessage(signature, residentConsentClaimsSchema, {
      key: certificate.publicKey, issuer: RESIDENT_ISSUER, audience: typeof audience === 'string' ? audience : '',
      typ: Typ.RESIDENT_CONSENT, maxAgeSeconds: MAX_CONSENT_DAYS * 24 * 3600, currentDate: now,
    });
  } catch (err) {
    const rule = err instanceof AppError ? String(err.extra.rule) : 'must verify with the certificate\'s key';
    const reason = /expired/.test(rule) ? 'resident_consent_expired' : 'resident_signature_invalid';
    throw new ResidentConsentRefused(reason, 'signature', rule);
  }
  if (expected.requester !== undefined && claims.requester !== expected.requester) {
    throw new ResidentConsentRefused('resident_consent_terms', 'signature', `requester must be ${expected.requester}`);
  }
  return { claims, certificate };
}

/**
 * The terms B signed into a query must be exactly what the resident signed: a requester that
 * widened the purpose, the sources or the validity is caught here. Returns the first differing
 * term, or null.
 */
export function residentTermsDiffer(terms: ConsentTerms, claims: ResidentConsentClaims): string | null {
  if (terms.method !== 'resident-signed') return 'method';
  if (terms.purpose !== claims.purpose) return 'purpose';
  if (terms.sources.length !== 1 || terms.sources[0] !== claims.aud) return 'sources';
  if (Date.parse(terms.givenAt) !== claims.iat * 1000) return 'givenAt';
  if (Date.parse(terms.expiresAt) !== claims.exp * 1000) return 'expiresAt';
  return null;
}

/* ---------- the resident's own sign-in (docs/DESIGN.md §4.14) ---------- */

/**
 * The signature a resident's key makes at sign-in: ES256, what WebCrypto's ECDSA P-256 / SHA-256
 * produces (the raw r‖s JOSE wants, RFC 7518 §3.4) with the P-256 key of the personal certificate.
 */
export const SIGN_IN_ALGS = ['ES256'];

export class ResidentSignInRefused extends Error {
  constructor(readonly reason: 'certificate_invalid' | 'signature_invalid' | 'audience_mismatch' | 'sign_in_too_old', readonly field: string, readonly rule: string) {
    super(`resident sign-in refused: ${reason}`);
  }
}

/**
 * Verifies a resident's signature over a sign-in challenge: the certificate chains to the CA, is
 * valid and not revoked; the compact JWS (ES256, typ resident-sign-in+jwt) verifies with its
 * key and names `audience`. With `maxAgeSeconds`, it must also be that recent (a municipality the
 * resident lived in checks it when B forwards it, docs/PROTOCOL.md §3.10). The caller checks the
 * nonce (only the municipality that issued it can). Throws `ResidentSignInRefused`.
 */
export async function verifyResidentSignIn(
  signature: string, certificatePem: string,
  expected: { ca: string; isRevoked?: (serial: string) => boolean; audience: string; maxAgeSeconds?: number; now?: Date },
): Promise<{ certificate: VerifiedResidentCertificate; nonce: string; iat: number }> {
  const now = expected.now ?? new Date();
  let certificate: VerifiedResidentCertificate;
  try {
    certificate = verifyResidentCertificate(certificatePem, expected.ca, { at: now, isRevoked: expected.isRevoked, field: 'certificate' });
  } catch (err) {
    throw new ResidentSignInRefused('certificate_invalid', 'certificate', err instanceof AppError ? String(err.extra.rule ?? err.message) : 'must be a personal certificate of the federation CA');
  }
  let claims: Record<string, unknown>;
  try {
    const { payload, protectedHeader } = await jose.compactVerify(signature, certificate.publicKey, { algorithms: SIGN_IN_ALGS });
    if (protectedHeader.typ !== Typ.RESIDENT_SIGN_IN) throw new Error('typ');
    claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
  } catch {
    throw new ResidentSignInRefused('signature_invalid', 'signature', `must be a compact JWS (${SIGN_IN_ALGS.join(' or ')}, typ ${Typ.RESIDENT_SIGN_IN}) by the certificate's key`);
  }
  if (claims.aud !== expected.audience) throw new ResidentSignInRefused('audience_mismatch', 'signature.aud', `must be ${expected.audience}`);
  const iat = typeof claims.iat === 'number' ? claims.iat : NaN;
  if (expected.maxAgeSeconds !== undefined) {
    const age = now.getTime() / 1000 - iat;
    if (!(age <= expected.maxAgeSeconds && age >= -CLOCK_SKEW_SECONDS)) {
      throw new ResidentSignInRefused('sign_in_too_old', 'signature.iat', `must be within ${expected.maxAgeSeconds} seconds`);
    }
  }
  return { certificate, nonce: typeof claims.nonce === 'string' ? claims.nonce : '', iat };
}
