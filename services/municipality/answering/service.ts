import type { z } from 'zod';
/**
 * The answering side (flow 4, A's part). A trusts nothing the gateway says about who asked or
 * why: it verifies the gateway's envelope AND B's own signature on the embedded query, refuses
 * replays, checks the issuer's attestations that B's code and A's code belong to one person,
 * re-checks the legal basis itself, checks the move-in capability on its own records, matches the
 * identity check sealed for A (one envelope per batch, signed by B), verifies a resident-signed
 * consent itself, and only then releases records cut to the purpose's allow-list, signed by A and
 * encrypted for B in one envelope per answer. Every subject's decision is logged.
 */
import { logMemberRefusal } from '../../../shared/access-log/member-access.ts';
import { randomUUID } from 'node:crypto';
import { mapWithLimit, SUBJECTS_IN_FLIGHT } from '../../../shared/platform/concurrency.ts';
import { appendAccessBatch, type AccessInput } from '../../../shared/access-log/chain.ts';
import { currentHead, keepHeads } from '../../../shared/access-log/heads.ts';
import { ResidentConsentRefused, checkLegalBasis, residentTermsDiffer, verifyResidentConsent } from '../../../shared/consent-policy.ts';
import { adoptRequestId } from '../../../shared/platform/context.ts';
import { peekJwt, sha256Hex, verifyPayload } from '../../../shared/crypto.ts';
import { AppError } from '../../../shared/platform/errors.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import { companionDigest, companionMatches, openMessage, sealMessage, signMessage, verifyMessage } from '../../../shared/federation/messages.ts';
import {
  GATEWAY_ID, ISSUER_ID, Typ, attestationSchema, forwardClaimsSchema, queryClaimsSchema, sealedIdentitiesSchema,
  type AnswerResult, type ForwardClaims, type ForwardSubject, type QueryClaims, type QuerySubject, type ReleasedSubject, type SealedIdentity, type SourceAnswer,
} from '../../../shared/federation/protocol.ts';
import { Actions } from '../access-log/actions.ts';
import type { MunicipalityContext } from '../context.ts';
import { releasableRecordsOfMany } from '../vaccinations/service.ts';
import type { RecordVersion } from '../vaccinations/model.ts';
import { toImmunization } from '../vaccinations/fhir.ts';
import { sourceCapability } from '../moves/capability.ts';
import { DISCLOSURE_POLICY, discloseImmunization } from './disclosure-policy.ts';
import type { FederationLink } from '../federation/link.ts';
import { identityMismatches } from '../residents/identity.ts';
import { pruneTokens, rememberToken } from './model.ts';
import { residentsByCodes, type ResidentRecord } from '../residents/model.ts';
import { receivedRevocationsAmong } from '../consents/model.ts';

interface Decision {
  ref: string;
  status: AnswerResult['status'];
  reason?: string;
  flags: string[];
  subject: string | null;
  recordIds: string[];
  released?: ReleasedSubject;
  /** The Immunization elements the purpose released (minimal disclosure). */
  elements?: readonly string[];
}

interface EnvelopeSpec<F extends z.ZodType, I extends z.ZodType> {
  /** What the gateway forwards, for the refusal's title (`record requests`, `trail requests`). */
  what: string;
  forward: { schema: F; typ: string };
  /** The requester's own message inside the envelope: where it sits, its claims and type. */
  inner: { field: string; of: (forward: z.infer<F>) => string; schema: I; typ: string };
}

/**
 * The gateway's envelope and the requester's own message inside it, checked here and trusted for
 * nothing the gateway says (docs/PROTOCOL.md §4): only the gateway forwards (403); the envelope is
 * signed by the gateway for us, the message inside by its requester for the gateway, each with the
 * key from our own directory; both carry one request id (400); and both are single-use here, also
 * across restarts (409 `replayed`). Used for record requests and for a resident's trail requests.
 */
export async function verifyGatewayForward<F extends z.ZodType<{ rid: string; jti: string; exp: number }>, I extends z.ZodType<{ iss: string; rid: string; jti: string; exp: number }>>(
  ctx: MunicipalityContext, fed: FederationLink, peer: string, forwardJws: string, spec: EnvelopeSpec<F, I>,
): Promise<{ forward: z.infer<F>; inner: z.infer<I> }> {
  const self = ctx.config.MUNICIPALITY_CODE;
  if (peer !== GATEWAY_ID) throw new AppError(403, 'forbidden', `Only the gateway forwards ${spec.what}`, { field: 'client certificate', rule: 'must be the gateway' });
  const forward = await verifyMessage(forwardJws, spec.forward.schema, {
    key: (await fed.peers.signingKey(GATEWAY_ID)).key, issuer: GATEWAY_ID, audience: self, typ: spec.forward.typ,
  });
  adoptRequestId(forward.rid);
  const innerJws = spec.inner.of(forward);
  const requester = peekJwt(innerJws).claims.iss;
  if (!isValidMunicipalityCode(requester)) throw new AppError(400, 'invalid-claims', 'Requester malformed', { field: `${spec.inner.field}.iss`, rule: 'must be a municipality code' });
  const inner = await verifyMessage(innerJws, spec.inner.schema, {
    key: (await fed.peers.signingKey(requester)).key, issuer: requester, audience: GATEWAY_ID, typ: spec.inner.typ,
  });
  if (inner.rid !== forward.rid) throw new AppError(400, 'invalid-claims', 'Envelope and request disagree on the request id', { field: 'rid', rule: `must equal the ${spec.inner.field} rid` });
  const fresh = await ctx.sequelize.transaction(async (t) => {
    await pruneTokens(ctx.models.SeenToken, Math.floor(Date.now() / 1000), t);
    return (await rememberToken(ctx.models.SeenToken, GATEWAY_ID, forward.jti, forward.exp, t))
      && (await rememberToken(ctx.models.SeenToken, inner.iss, inner.jti, inner.exp, t));
  });
  if (!fresh) throw new AppError(409, 'replayed', 'This request was already answered', { field: 'jti', rule: 'must not be reused' });
  return { forward, inner };
}

/**
 * Handles one forwarded batch from the gateway (`peer` is the verified client certificate's CN).
 * Returns A's signed answer. A forward that fails verification as a whole is refused with a
 * problem and logged as denied.
 */
export async function answerForward(ctx: MunicipalityContext, fed: FederationLink, peer: string, forwardJws: string, sealed: string | undefined): Promise<SourceAnswer> {
  let forward: ForwardClaims;
  let query: QueryClaims;
  try {
    ({ forward, inner: query } = await verifyGatewayForward(ctx, fed, peer, forwardJws, {
      what: 'record requests', forward: { schema: forwardClaimsSchema, typ: Typ.FORWARD },
      inner: { field: 'query', of: (f) => f.query, schema: queryClaimsSchema, typ: Typ.QUERY },
    }));
  } catch (err) {
    await logRefusal(ctx, peer, forwardJws, err);
    throw err instanceof AppError ? err : new AppError(400, 'invalid-request', 'Forwarded request refused', { field: 'forward', rule: 'must be a valid gateway envelope' });
  }

  const requestHash = sha256Hex(forward.query);
  const subjectsByRef = new Map(query.subjects.map((s) => [s.ref, s]));
  // One read for the whole batch; each subject's checks and crypto then run a few at a time.
  const residentsByCode = new Map((await residentsByCodes(ctx.models.Resident, forward.subjects.map((f) => f.code)))
    .map((r) => [r.code!, r]));
  // Read with the residents, released only by a subject's own decision below.
  const recordsOf = await releasableRecordsOfMany(ctx, [...residentsByCode.values()].map((r) => r.id));
  // The requester's consents we hold its signed revocation of (docs/DESIGN.md §4.4): refused by the one consent rule.
  const revoked = await receivedRevocationsAmong(ctx.models.ReceivedRevocation, query.iss, query.subjects.flatMap((s) => (s.consent ? [s.consent.id] : [])));
  const identities = await openIdentities(fed, query, sealed);
  const answered = new Set<string>();
  const decisions = await mapWithLimit(forward.subjects, SUBJECTS_IN_FLIGHT, (f): Promise<Decision> => {
    // One answer per subject: a ref forwarded twice (e.g. with two codes) releases nothing the second time.
    if (answered.has(f.ref)) return Promise.resolve({ ref: f.ref, status: 'denied', reason: 'duplicate_ref', flags: [], subject: f.code, recordIds: [] });
    answered.add(f.ref);
    const resident = residentsByCode.get(f.code);
    const identity = typeof identities === 'string' ? identities : (identities.get(f.ref) ?? 'sealed_identity_missing');
    return decide(ctx, fed, query, f, subjectsByRef.get(f.ref), identity, resident, resident ? (recordsOf.get(resident.id) ?? []) : [], revoked);
  });

  // Every released subject in one envelope, signed by us and readable by B alone (docs/PROTOCOL.md §3.6),
  // sealed before anything is logged as released: a seal that fails logs nothing as allowed.
  const released = decisions.flatMap((d) => (d.released ? [d.released] : []));
  const records = released.length === 0 ? undefined : await sealMessage({
    aud: query.iss, jti: randomUUID(), rid: query.rid, queryJti: query.jti, purpose: query.purpose, elements: [...DISCLOSURE_POLICY[query.purpose]], subjects: released,
  }, fed.signer, Typ.RECORDS, await fed.peers.encryptionKey(query.iss));

  const entries: AccessInput[] = decisions.map((d) => {
    const s = subjectsByRef.get(d.ref);
    return {
      requestId: query.rid, actorType: 'member', actorId: query.iss, actorRole: `staff:${query.actor}`, actingMunicipality: query.iss,
      subject: d.subject, action: Actions.QUERY_ANSWER, purpose: query.purpose, legalBasis: s?.legalBasis ?? null,
      consentId: s?.consent?.id ?? null, outcome: d.status === 'ok' ? 'allowed' : 'denied', reason: d.status === 'ok' ? null : (d.reason ?? d.status),
      recordIds: d.recordIds, requestHash, flags: d.flags,
      details: { status: d.status, ref: d.ref, via: GATEWAY_ID, forwardJti: forward.jti, ...(d.elements ? { elements: d.elements } : {}) },
    };
  });
  await ctx.sequelize.transaction(async (t) => {
    await appendAccessBatch(ctx.models.AccessLog, t, entries);
    // The gateway's head (its envelope) and B's head (B's own query), as they signed them.
    await keepHeads(ctx.models.WitnessedHead, t, [
      { member: GATEWAY_ID, head: forward.head, exchange: 'forward', requestId: query.rid, message: forwardJws },
      { member: query.iss, head: query.head, exchange: 'query', requestId: query.rid, message: forward.query },
    ]);
  });

  // Our head after this answer's own entries: the gateway and B keep it, so they witness them.
  // The records travel beside the answer, which names them by digest (docs/PROTOCOL.md §3.11).
  const answer = await signMessage({
    aud: query.iss, jti: randomUUID(), rid: query.rid, queryJti: query.jti, head: await currentHead(ctx.sequelize),
    results: decisions.map((d) => ({ ref: d.ref, status: d.status, ...(d.reason && d.status !== 'ok' ? { reason: d.reason } : {}) })),
    ...(records ? { recordsDigest: companionDigest(records) } : {}),
  }, fed.signer, Typ.ANSWER);
  return records ? { answer, records } : { answer };
}

/**
 * B's identity checks for this batch, opened once: the envelope B's query names by digest, sealed
 * for our key, signed by B, bound to B's query by its jti. A refusal word instead when the envelope
 * fails, for every subject to carry.
 */
async function openIdentities(fed: FederationLink, query: QueryClaims, envelope: string | undefined): Promise<Map<string, SealedIdentity> | string> {
  if (envelope === undefined) return 'sealed_identity_missing';
  if (!companionMatches(envelope, query.sealedDigest)) return 'sealed_identity_not_bound';
  try {
    const sealed = await openMessage(envelope, fed.decryptionKey, sealedIdentitiesSchema, {
      key: (await fed.peers.signingKey(query.iss)).key, issuer: query.iss, audience: fed.self, typ: Typ.SEALED_IDENTITIES,
    });
    if (sealed.jti !== query.jti) return 'sealed_identity_not_bound';
    return new Map(sealed.identities.map((i) => [i.ref, i]));
  } catch {
    return 'sealed_identity_invalid';
  }
}

async function decide(
  ctx: MunicipalityContext, fed: FederationLink, query: QueryClaims, f: ForwardSubject, s: QuerySubject | undefined,
  identity: SealedIdentity | string, resident: ResidentRecord | undefined, records: RecordVersion[], revoked: ReadonlySet<string>,
): Promise<Decision> {
  const self = ctx.config.MUNICIPALITY_CODE;
  const refuse = (status: AnswerResult['status'], reason: string, subject: string | null = f.code, flags: string[] = []): Decision =>
    ({ ref: f.ref, status, reason, flags, subject, recordIds: [] });
  if (!s) return refuse('denied', 'ref_not_in_query');
  if (s.source !== self) return refuse('denied', 'not_for_this_source');
  const verdict = checkLegalBasis(s, query, new Date(), revoked);
  if (verdict.status !== 'ok') return refuse(verdict.status, verdict.reason ?? 'refused', f.code, verdict.flags);
  if (!(await attestationsAgree(fed, query.iss, s.sub, self, f))) return refuse('denied', 'attestation_invalid', f.code, verdict.flags);

  if (!resident) return refuse('not_found', 'no_resident_with_code', f.code, verdict.flags);

  if (typeof identity === 'string') return refuse('denied', identity, resident.addresseeNumber, verdict.flags);
  const sealed = identity;
  // The move-in capability, on our own: B's word that the resident moved in there is not enough.
  const capability = await sourceCapability(ctx, fed, resident, query.iss, sealed.moveIn);
  if (!capability.ok) return refuse('denied', capability.reason, resident.addresseeNumber, verdict.flags);
  const differs = identityMismatches(sealed, resident);
  if (differs.length > 0) {
    return { ...refuse('identity_mismatch', `identity_mismatch:${differs.join(',')}`, resident.addresseeNumber, [...verdict.flags, 'identity_mismatch']) };
  }
  if (s.consent?.method === 'resident-signed') {
    const refusal = await residentConsentRefusal(fed, query, s, sealed.residentCertificate, resident);
    if (refusal) return refuse(refusal.status, refusal.reason, resident.addresseeNumber, verdict.flags);
  }

  // Minimal disclosure: each Immunization is rebuilt from the purpose's allow-list before signing.
  const bundle = {
    resourceType: 'Bundle' as const, type: 'collection',
    entry: records.map((r) => ({ resource: discloseImmunization(toImmunization(r) as unknown as Record<string, unknown>, query.purpose) })),
  };
  return {
    ref: f.ref, status: 'ok', flags: verdict.flags, subject: resident.addresseeNumber,
    recordIds: records.map((r) => `${r.recordId}@${r.version}`), released: { ref: s.ref, sub: s.sub, bundle }, elements: DISCLOSURE_POLICY[query.purpose],
  };
}

/**
 * A resident-signed consent is verified here, by us, before anything leaves: the certificate
 * (sealed for us by B) chains to the federation CA and is valid now, the resident's signature
 * verifies with it and names B as requester and us as source, the terms B signed into the query
 * are exactly the signed ones, and the certificate names our resident. Null when it holds.
 */
async function residentConsentRefusal(
  fed: FederationLink, query: QueryClaims, s: QuerySubject, certificate: string | undefined, resident: { kana: string; birthDate: string; sex: string },
): Promise<{ status: AnswerResult['status']; reason: string } | null> {
  if (!s.consent?.residentSignature || !certificate) return { status: 'no_consent', reason: 'resident_signature_missing' };
  try {
    const { claims, certificate: holder } = await verifyResidentConsent(s.consent.residentSignature, certificate, {
      ca: fed.trust.ca, isRevoked: fed.trust.isRevoked, source: fed.self, requester: query.iss,
    });
    const term = residentTermsDiffer(s.consent, claims);
    if (term) return { status: 'no_consent', reason: `resident_consent_terms:${term}` };
    if (claims.purpose !== query.purpose) return { status: 'no_consent', reason: 'resident_consent_terms:purpose' };
    if (identityMismatches(holder, resident).length > 0) return { status: 'no_consent', reason: 'resident_certificate_identity' };
    return null;
  } catch (err) {
    if (!(err instanceof ResidentConsentRefused)) throw err;
    return { status: err.reason === 'resident_consent_expired' ? 'consent_expired' : 'no_consent', reason: err.reason };
  }
}

/** The issuer signed that B's code and our code share one link; the gateway cannot invent that. */
export async function attestationsAgree(fed: FederationLink, requester: string, requesterCode: string, self: string, f: ForwardSubject): Promise<boolean> {
  try {
    const { key } = await fed.peers.signingKey(ISSUER_ID);
    const theirs = attestationSchema.parse(await verifyPayload(f.requesterAttestation, key, Typ.ATTESTATION));
    const ours = attestationSchema.parse(await verifyPayload(f.sourceAttestation, key, Typ.ATTESTATION));
    return theirs.municipality === requester && theirs.code === requesterCode
      && ours.municipality === self && ours.code === f.code && theirs.link === ours.link;
  } catch {
    return false;
  }
}

async function logRefusal(ctx: MunicipalityContext, peer: string, forwardJws: string, err: unknown): Promise<void> {
  const code = err instanceof AppError ? err.code : 'invalid-request';
  await logMemberRefusal(ctx.models.AccessLog, { id: peer }, {
    action: Actions.QUERY_ANSWER, reason: code, requestHash: sha256Hex(forwardJws), details: { refusedAt: 'envelope' },
  });
  ctx.logger.warn({ peer, code, err: err instanceof AppError ? undefined : err }, 'forwarded request refused');
}

