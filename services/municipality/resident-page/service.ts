/**
 * The resident's own page (docs/DESIGN.md §4.14). A clerk enrols the resident's personal
 * certificate at the counter (issued by the federation CA, standing in for the My Number card's
 * user certificate); the resident signs in by signing a one-time challenge with its key — no
 * password, no My Number typed — and gets a short session of their own kind, which no staff route
 * accepts. Signed in, they read their records, their consents, the trail of every access to their
 * data and the notices sent to them, and may revoke a consent or take their certificate. Every
 * sign-in (refused ones too) and every reading is an entry of the access log naming the resident
 * by credential and addressee number.
 */
import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { ResidentSignInRefused, verifyResidentSignIn } from '../../../shared/consent-policy.ts';
import { CLOCK_SKEW_SECONDS, hmacSha256, signSession, verifySession, type VerifiedSession } from '../../../shared/crypto.ts';
import { verifyResidentCertificate } from '../../../shared/federation/pki.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { AppError, conflict, notFound, unauthorized } from '../../../shared/platform/errors.ts';
import { Actions } from '../access-log/actions.ts';
import { logAccessBy, logStaffAccess, type ResidentActor } from '../access-log/service.ts';
import type { MunicipalityContext } from '../context.ts';
import type { FederationLink } from '../federation/link.ts';
import { identityMismatches } from '../residents/identity.ts';
import { findResidentById, requireResident } from '../residents/service.ts';
import type { Actor } from '../staff/roles.ts';
import { listConsentsOf } from '../consents/model.ts';
import { findProduct } from '../vaccinations/catalogue.ts';
import { currentVersionsOf } from '../vaccinations/model.ts';
import { chainIssuers } from '../moves/capability.ts';
import { moveLinksOf } from '../moves/model.ts';
import {
  activeCredentialsWithSerial, credentialsOf, endSession, findCredential, findSession, insertChallenge, insertCredential, insertSession, markCredentialRevoked,
  spendChallenge, type ResidentCredential,
} from './model.ts';

/** A challenge is good for this long: enough to pick the key file (or touch the card), not to be kept. */
export const CHALLENGE_TTL_SECONDS = 300;
/** The resident's session token type: staff routes verify `session+jwt` only, with another key. */
export const RESIDENT_SESSION_TYP = 'resident-session+jwt';
export const RESIDENT_SESSION_COOKIE = 'hikitsugi_resident';

/** Resident sessions are signed with a key of their own, derived from the member's session secret. */
const residentSessionKey = (ctx: MunicipalityContext): Buffer => hmacSha256(ctx.config.SESSION_SECRET, 'hikitsugi resident session');

/* ---------- enrolment at the counter ---------- */

/** What staff and the resident see of a credential: never the certificate's key, no internal ids. */
export interface CredentialView {
  id: string;
  kind: string;
  certificateSerial: string;
  notAfter: string;
  enrolledAt: string;
  revokedAt: string | null;
}

const toView = (c: ResidentCredential): CredentialView => ({
  id: c.id, kind: c.kind, certificateSerial: c.certificateSerial, notAfter: new Date(new X509Certificate(c.certificate).validTo).toISOString(),
  enrolledAt: c.enrolledAt, revokedAt: c.revokedAt,
});

/**
 * Enrols a resident's personal certificate (a clerk, the resident present): it must chain to the
 * federation CA, be valid and not revoked, name this resident (kana, birth date, sex) and not be
 * enrolled already.
 */
export async function enrolCertificate(
  ctx: MunicipalityContext, trust: FederationLink['trust'], addresseeNumber: string, certificatePem: string, actor: Actor, now = new Date(),
): Promise<CredentialView> {
  const certificate = verifyResidentCertificate(certificatePem, trust.ca, { at: now, isRevoked: trust.isRevoked, field: 'certificate' });
  return inTransaction(ctx.sequelize, async (t) => {
    const resident = await requireResident(ctx, addresseeNumber, t);
    if (resident.status !== 'resident') {
      throw new AppError(409, 'resident-not-active', 'A credential can be enrolled only for a current resident', { field: 'addresseeNumber', rule: 'resident must have status resident' });
    }
    if (identityMismatches(certificate, resident).length > 0) {
      throw new AppError(422, 'certificate-names-another-person', 'The certificate does not name this resident', {
        field: 'certificate', rule: 'must name this resident (kana, birth date, sex)',
      });
    }
    if ((await activeCredentialsWithSerial(ctx.models.ResidentCredential, certificate.serial, t)).length > 0) {
      throw conflict('credential-already-enrolled', 'This certificate is already enrolled', { field: 'certificate', rule: 'must not be enrolled already' });
    }
    const credential: ResidentCredential = {
      id: randomUUID(), residentId: resident.id, kind: 'certificate', certificateSerial: certificate.serial, certificate: certificatePem.trim(),
      enrolledAt: now.toISOString(), enrolledBy: actor.staffId, revokedAt: null, revokedBy: null,
    };
    await insertCredential(ctx.models.ResidentCredential, credential, t);
    await logStaffAccess(ctx, t, actor, {
      action: Actions.CREDENTIAL_ENROLL, subject: resident.addresseeNumber, outcome: 'allowed',
      details: { credentialId: credential.id, kind: credential.kind, certificateSerial: credential.certificateSerial },
    });
    return toView(credential);
  });
}

export async function listCredentials(ctx: MunicipalityContext, addresseeNumber: string, actor: Actor): Promise<CredentialView[]> {
  return inTransaction(ctx.sequelize, async (t) => {
    const resident = await requireResident(ctx, addresseeNumber, t);
    await logStaffAccess(ctx, t, actor, { action: Actions.CREDENTIAL_READ, subject: resident.addresseeNumber, outcome: 'allowed' });
    return (await credentialsOf(ctx.models.ResidentCredential, resident.id, t)).map(toView);
  });
}

/** Withdraws a credential (lost card, the resident's wish): its sessions end at their next request. */
export async function withdrawCredential(ctx: MunicipalityContext, addresseeNumber: string, credentialId: string, actor: Actor, now = new Date()): Promise<CredentialView> {
  return inTransaction(ctx.sequelize, async (t) => {
    const resident = await requireResident(ctx, addresseeNumber, t);
    const credential = await findCredential(ctx.models.ResidentCredential, credentialId, t);
    if (!credential || credential.residentId !== resident.id) throw notFound('Credential');
    if (credential.revokedAt) throw conflict('credential-already-withdrawn', 'This credential was already withdrawn', { field: 'credentialId', rule: 'must be in force' });
    await markCredentialRevoked(ctx.models.ResidentCredential, credential.id, actor.staffId, now.toISOString(), t);
    await logStaffAccess(ctx, t, actor, {
      action: Actions.CREDENTIAL_WITHDRAW, subject: resident.addresseeNumber, outcome: 'allowed', details: { credentialId: credential.id },
    });
    return toView((await findCredential(ctx.models.ResidentCredential, credential.id, t))!);
  });
}

/* ---------- signing in ---------- */

export async function newChallenge(ctx: MunicipalityContext, now = new Date()): Promise<{ challenge: string; audience: string; expiresAt: string }> {
  const challenge = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + CHALLENGE_TTL_SECONDS * 1000).toISOString();
  await inTransaction(ctx.sequelize, (t) => insertChallenge(ctx.models.SignInChallenge, challenge, expiresAt, now.toISOString(), t));
  return { challenge, audience: ctx.config.MUNICIPALITY_CODE, expiresAt };
}

class SignInRefused extends AppError {
  constructor(
    readonly reason: string, code: string, message: string, field: string, rule: string,
    readonly known: ResidentActor | null = null,
  ) {
    super(401, code, message, { field, rule });
  }
}

/**
 * Checks a signed challenge and opens a session. The certificate must verify against the federation
 * CA (valid, not revoked), be enrolled here, and its key must have signed (ES256, typ
 * `resident-sign-in+jwt`) this municipality as `aud` and a challenge issued here, unexpired and
 * unused (shared/consent-policy.ts#verifyResidentSignIn). The signed challenge is kept with the
 * session: it is the resident's proof when B gathers their trail (docs/PROTOCOL.md §3.10). Each
 * refusal is a 401 naming its rule and a denied `resident.sign_in` entry.
 */
export async function signInResident(
  ctx: MunicipalityContext, trust: FederationLink['trust'], input: { certificate: string; signature: string }, now = new Date(),
): Promise<{ token: string; expiresIn: number }> {
  const self = ctx.config.MUNICIPALITY_CODE;
  let serial: string | null = null;
  try {
    let verified: Awaited<ReturnType<typeof verifyResidentSignIn>>;
    try {
      verified = await verifyResidentSignIn(input.signature, input.certificate, { ca: trust.ca, isRevoked: trust.isRevoked, audience: self, now });
    } catch (err) {
      if (!(err instanceof ResidentSignInRefused)) throw err;
      throw new SignInRefused(err.reason, `sign-in-${SIGN_IN_CODES[err.reason]}`, SIGN_IN_TITLES[err.reason], err.field, err.rule);
    }
    serial = verified.certificate.serial;
    return await inTransaction(ctx.sequelize, async (t) => {
      const [credential] = await activeCredentialsWithSerial(ctx.models.ResidentCredential, verified.certificate.serial, t);
      const resident = credential ? await findResidentById(ctx, credential.residentId, t) : null;
      if (!credential || !resident) throw new SignInRefused('credential_unknown', 'sign-in-credential-unknown', 'This certificate is not enrolled here', 'certificate', 'must be enrolled at this municipality\'s counter');
      const who: ResidentActor = { kind: 'resident', credentialId: credential.id, residentId: resident.id, addresseeNumber: resident.addresseeNumber };
      if (!(await spendChallenge(ctx.models.SignInChallenge, verified.nonce, now.toISOString(), t))) {
        throw new SignInRefused('challenge_invalid', 'sign-in-challenge-invalid', 'The challenge is unknown, expired or used', 'signature.nonce',
          'must be a challenge from POST /resident/sign-in/challenge, unexpired and unused', who);
      }
      await logAccessBy(ctx, t, who, { action: Actions.RESIDENT_SIGN_IN, subject: resident.addresseeNumber, outcome: 'allowed', details: { certificateSerial: serial } });
      const ttl = ctx.config.SESSION_TTL_SECONDS;
      const jti = randomUUID();
      const token = await signSession(residentSessionKey(ctx), { sub: credential.id, role: 'resident', municipality: self, ver: 0 }, ttl, RESIDENT_SESSION_TYP, jti);
      await insertSession(ctx.models.ResidentSession, {
        jti, credentialId: credential.id, signIn: input.signature, expiresAt: new Date(now.getTime() + (ttl + CLOCK_SKEW_SECONDS) * 1000).toISOString(),
      }, now.toISOString(), t);
      return { token, expiresIn: ttl };
    });
  } catch (err) {
    // Logged after the refused transaction rolled back.
    if (err instanceof SignInRefused) await inTransaction(ctx.sequelize, (t) => logRefusedSignIn(ctx, t, err, serial));
    throw err;
  }
}

const SIGN_IN_CODES: Record<ResidentSignInRefused['reason'], string> = {
  certificate_invalid: 'certificate-invalid', signature_invalid: 'signature-invalid', audience_mismatch: 'audience-mismatch', sign_in_too_old: 'signature-invalid',
};
const SIGN_IN_TITLES: Record<ResidentSignInRefused['reason'], string> = {
  certificate_invalid: 'The certificate is not a valid personal certificate of the federation',
  signature_invalid: 'The signature does not verify with the certificate\'s key',
  audience_mismatch: 'The signature was made for another municipality',
  sign_in_too_old: 'The signature is too old',
};

/** A refused sign-in names the credential and resident when the certificate was enrolled, else nobody: the serial is in the details. */
function logRefusedSignIn(ctx: MunicipalityContext, t: Transaction, err: SignInRefused, serial: string | null) {
  const who: ResidentActor = err.known ?? { kind: 'resident', credentialId: 'unknown', residentId: '', addresseeNumber: '' };
  return logAccessBy(ctx, t, who, {
    action: Actions.RESIDENT_SIGN_IN, subject: err.known?.addresseeNumber ?? null, outcome: 'denied', reason: err.reason, details: { certificateSerial: serial },
  });
}

export interface ResidentSessionContext {
  who: ResidentActor;
  session: VerifiedSession;
  /** The resident's signed challenge that opened this session. */
  signIn: string;
  certificate: string;
}

/**
 * A resident's session checked end to end: the token (own key and type, this municipality, expiry),
 * its row here (not ended at sign-out), its credential still in force and its resident still here.
 */
export async function checkResidentSession(ctx: MunicipalityContext, token: string): Promise<ResidentSessionContext> {
  const session = await verifySession(residentSessionKey(ctx), token, ctx.config.MUNICIPALITY_CODE, ctx.config.SESSION_TTL_SECONDS, RESIDENT_SESSION_TYP);
  if (session.role !== 'resident') throw unauthorized('Session token invalid');
  const [row, credential] = await Promise.all([findSession(ctx.models.ResidentSession, session.jti), findCredential(ctx.models.ResidentCredential, session.sub)]);
  if (!row || row.credentialId !== session.sub) throw new AppError(401, 'session-invalid', 'Session token invalid');
  if (row.endedAt) throw new AppError(401, 'session-logged-out', 'Session ended at sign-out: sign in again');
  const resident = credential && !credential.revokedAt ? await findResidentById(ctx, credential.residentId) : null;
  if (!credential || !resident) throw new AppError(401, 'session-credential-withdrawn', 'The credential of this session was withdrawn: sign in again');
  return {
    who: { kind: 'resident', credentialId: credential.id, residentId: resident.id, addresseeNumber: resident.addresseeNumber },
    session, signIn: row.signIn, certificate: credential.certificate,
  };
}

export async function signOutResident(ctx: MunicipalityContext, who: ResidentActor, session: VerifiedSession, now = new Date()): Promise<void> {
  await inTransaction(ctx.sequelize, async (t) => {
    await endSession(ctx.models.ResidentSession, session.jti, now.toISOString(), t);
    await logAccessBy(ctx, t, who, { action: Actions.RESIDENT_SIGN_OUT, subject: who.addresseeNumber, outcome: 'allowed' });
  });
}

/* ---------- the resident's own data ---------- */

export interface OwnRecord {
  recordId: string;
  occurrenceDate: string;
  vaccine: { code: string; display: string; series: string | null };
  doseNumber: number;
  lotNumber: string | null;
  place: string | null;
  status: string;
  /** Where an imported record came from; null for a dose recorded here. */
  source: { municipality: string; retrievedAt: string | null } | null;
}

export interface OwnConsent {
  id: string;
  purpose: string;
  sources: string[];
  givenAt: string;
  expiresAt: string;
  method: string;
  revokedAt: string | null;
}

export interface OwnData {
  resident: { name: string; kana: string; birthDate: string; addresseeNumber: string; status: string };
  records: OwnRecord[];
  consents: OwnConsent[];
}

/**
 * The resident's records (current versions, own and imported) and consents; the reading is logged.
 * Also, for gathering the trail (not shown): the resident's code here, and the municipalities they
 * came from (every one on their chain of moves) or whose records or consents they hold here.
 */
export async function ownData(ctx: MunicipalityContext, who: ResidentActor): Promise<OwnData & { trail: { code: string | null; sources: string[] } }> {
  return inTransaction(ctx.sequelize, async (t) => {
    const resident = await findResidentById(ctx, who.residentId, t);
    if (!resident) throw notFound('Resident');
    const versions = await currentVersionsOf(ctx.models.VaccinationRecord, resident.id, t);
    const consents = await listConsentsOf(ctx.models.Consent, resident.id, t);
    // Every municipality on their chains of moves here (X → A → B names X and A), not only the last.
    const chain = (await moveLinksOf(ctx.models.MoveIn, resident.id, t)).flatMap(chainIssuers);
    await logAccessBy(ctx, t, who, {
      action: Actions.RESIDENT_SELF_READ, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: versions.map((v) => v.recordId),
      details: { records: versions.length, consents: consents.length },
    });
    return {
      resident: { name: resident.name, kana: resident.kana, birthDate: resident.birthDate, addresseeNumber: resident.addresseeNumber, status: resident.status },
      records: versions.map((v): OwnRecord => {
        const product = findProduct(v.vaccineCode);
        return {
          recordId: v.recordId, occurrenceDate: v.occurrenceDate, doseNumber: v.doseNumber, lotNumber: v.lotNumber, place: v.place, status: v.status,
          vaccine: { code: v.vaccineCode, display: product?.display ?? v.vaccineCode, series: product?.seriesDisplay ?? null },
          source: v.sourceMunicipality ? { municipality: v.sourceMunicipality, retrievedAt: v.retrievedAt } : null,
        };
      }).sort((a, b) => b.occurrenceDate.localeCompare(a.occurrenceDate)),
      consents: consents.map((c) => ({
        id: c.id, purpose: c.purpose, sources: c.sources, givenAt: c.givenAt, expiresAt: c.expiresAt, method: c.method, revokedAt: c.revokedAt,
      })),
      trail: {
        code: resident.code ?? null,
        sources: [...new Set([
          ...(resident.previousMunicipality ? [resident.previousMunicipality] : []), ...chain, ...consents.flatMap((c) => c.sources),
          ...versions.flatMap((v) => (v.sourceMunicipality ? [v.sourceMunicipality] : [])),
        ])].filter((m) => m !== ctx.config.MUNICIPALITY_CODE).sort(),
      },
    };
  });
}
