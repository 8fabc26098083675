import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { ResidentConsentRefused, consentMismatch, consentNotInForce, verifyResidentConsent } from '../../../shared/consent-policy.ts';
import { sha256Hex } from '../../../shared/crypto.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { AppError, badRequest, notFound } from '../../../shared/platform/errors.ts';
import { CONSENT_SCOPE, type ConsentTerms } from '../../../shared/federation/protocol.ts';
import { Actions } from '../access-log/actions.ts';
import { isResidentActor, logAccessBy, logStaffAccess, type Accessor } from '../access-log/service.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import type { FederationLink } from '../federation/link.ts';
import { identityMismatches } from '../residents/identity.ts';
import { findResidentByAddressee } from '../residents/service.ts';
import { enqueueConsentRevocation } from './revocations.ts';
import { findConsent, findConsentBySignature, insertConsent, listConsentsOf, listConsentsOfMany, markRevoked, type ConsentView } from './model.ts';
import { MAX_CONSENT_DAYS, type ConsentInput, type ResidentSignedConsentInput } from './schemas.ts';

const DAY_MS = 24 * 3600 * 1000;

/** Records a resident's consent to fetch their vaccination history from the named municipalities. */
export async function recordConsent(
  ctx: MunicipalityContext, t: Transaction, resident: { id: string; addresseeNumber: string; status: string },
  input: ConsentInput, actor: Actor, now = new Date(),
): Promise<ConsentView> {
  if (resident.status !== 'resident') throw new AppError(409, 'resident-not-active', 'Consent can be recorded only for a current resident', { field: 'addresseeNumber', rule: 'resident must have status resident' });
  if (input.sources.includes(ctx.config.MUNICIPALITY_CODE)) throw badRequest('sources', 'must not include this municipality');
  const expires = Date.parse(input.expiresAt);
  if (expires <= now.getTime()) throw badRequest('expiresAt', 'must be in the future');
  if (expires > now.getTime() + MAX_CONSENT_DAYS * DAY_MS) throw badRequest('expiresAt', `must be within ${MAX_CONSENT_DAYS} days`);
  const consent = await insertConsent(ctx.models.Consent, {
    id: randomUUID(),
    residentId: resident.id,
    scope: CONSENT_SCOPE,
    purpose: input.purpose,
    sources: [...new Set(input.sources)],
    givenAt: now.toISOString(),
    expiresAt: new Date(expires).toISOString(),
    method: input.method,
    recordedBy: actor.staffId,
    residentSignature: null,
    residentCertificate: null,
  }, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.CONSENT_RECORD, subject: resident.addresseeNumber, purpose: input.purpose, legalBasis: 'consent',
    consentId: consent.id, outcome: 'allowed', details: { sources: consent.sources, expiresAt: consent.expiresAt },
  });
  return consent;
}

/**
 * Records a consent the resident signed with their personal key (docs/DESIGN.md §4.4), after checking it
 * here: the certificate chains to the federation CA and is valid, the signature verifies with it,
 * the consent names this municipality as requester and another as source, is still valid, and the
 * certificate names this resident (kana, birth date, sex). The source verifies all of it again
 * before releasing anything. A refusal is a 422 problem, logged as a denied `consent.record`.
 */
export async function acceptResidentSignedConsent(
  ctx: MunicipalityContext, trust: FederationLink['trust'], addresseeNumber: string, input: ResidentSignedConsentInput, actor: Actor,
): Promise<ConsentView> {
  const self = ctx.config.MUNICIPALITY_CODE;
  try {
    const verified = await verifyResidentConsent(input.signature, input.certificate, { ca: trust.ca, isRevoked: trust.isRevoked, requester: self });
    const { claims, certificate } = verified;
    if (claims.aud === self) throw new ResidentConsentRefused('resident_consent_terms', 'signature', 'the source (aud) must be another municipality');
    return await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, addresseeNumber, t);
      if (!resident) throw notFound('Resident');
      if (resident.status !== 'resident') throw new AppError(409, 'resident-not-active', 'Consent can be recorded only for a current resident', { field: 'addresseeNumber', rule: 'resident must have status resident' });
      if (identityMismatches(certificate, resident).length > 0) {
        throw new ResidentConsentRefused('resident_certificate_identity', 'certificate', 'must name this resident (kana, birth date, sex)');
      }
      const held = await findConsentBySignature(ctx.models.Consent, input.signature, t);
      if (held) throw new AppError(409, 'consent-already-recorded', 'This signed consent is already recorded', { field: 'signature', rule: 'must be recorded once' });
      const consent = await insertConsent(ctx.models.Consent, {
        id: randomUUID(), residentId: resident.id, scope: CONSENT_SCOPE, purpose: claims.purpose, sources: [claims.aud],
        givenAt: new Date(claims.iat * 1000).toISOString(), expiresAt: new Date(claims.exp * 1000).toISOString(), method: 'resident-signed',
        recordedBy: actor.staffId, residentSignature: input.signature, residentCertificate: input.certificate,
      }, t);
      await logStaffAccess(ctx, t, actor, {
        action: Actions.CONSENT_RECORD, subject: resident.addresseeNumber, purpose: claims.purpose, legalBasis: 'consent', consentId: consent.id, outcome: 'allowed',
        details: { method: 'resident-signed', sources: consent.sources, expiresAt: consent.expiresAt, certificateSerial: certificate.serial },
      });
      return consent;
    });
  } catch (err) {
    if (err instanceof ResidentConsentRefused) {
      // Logged after the refused transaction rolled back: who tried, why, which signature by hash.
      await inTransaction(ctx.sequelize, (t) => logStaffAccess(ctx, t, actor, {
        action: Actions.CONSENT_RECORD, subject: addresseeNumber, outcome: 'denied', reason: err.reason,
        details: { method: 'resident-signed', field: err.extra.field ?? null, rule: err.extra.rule ?? null, signatureSha256: sha256Hex(input.signature) },
      }));
    }
    throw err;
  }
}

/**
 * Revokes a consent (the one way to: a clerk at the counter, the resident themselves): recorded on
 * the consent, logged, and queued in the same transaction as a signed revocation for the gateway
 * and the sources (docs/DESIGN.md §4.4), so a revocation never commits without it.
 */
export async function revokeConsent(
  ctx: MunicipalityContext, t: Transaction, resident: { id: string; addresseeNumber: string }, consentId: string, reason: string, actor: Accessor,
): Promise<ConsentView> {
  const consent = await findConsent(ctx.models.Consent, consentId, t);
  if (!consent || consent.residentId !== resident.id) throw notFound('Consent');
  if (consent.revokedAt) throw new AppError(409, 'consent-already-revoked', 'Consent was already revoked', { field: 'consentId', rule: 'must not be revoked already' });
  // Revoked by the resident at their own page, or by a clerk at the counter (the staff id).
  await markRevoked(ctx.models.Consent, consentId, isResidentActor(actor) ? 'resident' : actor.staffId, reason, t);
  const revoked = (await findConsent(ctx.models.Consent, consentId, t))!;
  // The gateway and each source hear of it (docs/DESIGN.md §4.4): queued here, so every way of revoking sends it.
  await enqueueConsentRevocation(ctx, t, revoked, revoked.revokedAt!);
  await logAccessBy(ctx, t, actor, {
    action: Actions.CONSENT_REVOKE, subject: resident.addresseeNumber, purpose: consent.purpose, consentId, outcome: 'allowed', reason,
  });
  return revoked;
}

export type ConsentDecision =
  | { status: 'ok'; consent: ConsentView }
  | { status: 'no_consent' | 'consent_expired'; reason: string };

/**
 * Which consent, if any, allows asking `source` for `purpose` now, by the same rules every hop
 * applies to the terms (shared/consent-policy.ts). A valid one wins; otherwise
 * an expired one says `consent_expired`, a revoked one `no_consent` (reason consent_revoked).
 */
export function decideConsent(consents: ConsentView[], source: string, purpose: string, now = new Date()): ConsentDecision {
  const matching = consents.filter((c) => consentMismatch(c, source, purpose) === null);
  const live = matching.filter((c) => !c.revokedAt);
  const valid = live.find((c) => consentNotInForce(c, now) === null);
  if (valid) return { status: 'ok', consent: valid };
  if (live.length > 0) return { status: 'consent_expired', reason: 'consent_expired' };
  if (matching.length > 0) return { status: 'no_consent', reason: 'consent_revoked' };
  return { status: 'no_consent', reason: 'no_matching_consent' };
}

export async function consentDecisionFor(ctx: MunicipalityContext, residentId: string, source: string, purpose: string, t?: Transaction): Promise<ConsentDecision> {
  return decideConsent(await listConsentsOf(ctx.models.Consent, residentId, t), source, purpose);
}

/** The terms B signs into a query; A re-checks them on its own. */
export function consentTerms(consent: ConsentView): ConsentTerms {
  return {
    id: consent.id,
    scope: CONSENT_SCOPE,
    purpose: consent.purpose as ConsentTerms['purpose'],
    sources: consent.sources,
    givenAt: consent.givenAt,
    expiresAt: consent.expiresAt,
    method: consent.method as ConsentTerms['method'],
    ...(consent.residentSignature ? { residentSignature: consent.residentSignature } : {}),
  };
}

export { listConsentsOf, listConsentsOfMany };
