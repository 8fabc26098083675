/**
 * The answering side (flow 4, A's part). A trusts nothing the gateway says about who asked or
 * why: it verifies the gateway's envelope AND B's own signature on the embedded query, refuses
 * replays, checks the issuer's attestations that B's code and A's code belong to one person,
 * re-checks the legal basis itself, matches the identity check sealed for A, and only then
 * releases records, signed by A and encrypted for B. Every subject's decision is logged.
 */
import { randomUUID } from 'node:crypto';
import { appendAccessBatch, type AccessInput } from '../../../shared/audit.ts';
import { checkLegalBasis } from '../../../shared/consent-policy.ts';
import { adoptRequestId } from '../../../shared/context.ts';
import { peekJwt, sha256Hex, verifyPayload } from '../../../shared/crypto.ts';
import { AppError } from '../../../shared/errors.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import { openMessage, sealMessage, signMessage, verifyMessage } from '../../../shared/messages.ts';
import {
  GATEWAY_ID, ISSUER_ID, Typ, attestationSchema, forwardClaimsSchema, queryClaimsSchema, sealedIdentitySchema,
  type AnswerResult, type ForwardClaims, type ForwardSubject, type QueryClaims, type QuerySubject,
} from '../../../shared/protocol.ts';
import { Actions } from '../audit/actions.ts';
import type { MunicipalityContext } from '../context.ts';
import { releasableRecords } from '../vaccinations/service.ts';
import { toImmunization } from '../vaccinations/fhir.ts';
import type { FederationLink } from './federation.ts';
import { identityMismatches } from './identity.ts';
import { rememberToken } from './model.ts';

interface Decision {
  ref: string;
  status: AnswerResult['status'];
  reason?: string;
  flags: string[];
  subject: string | null;
  recordIds: string[];
  records?: string;
}

/**
 * Handles one forwarded batch from the gateway (`peer` is the verified client certificate's CN).
 * Returns A's signed answer. A forward that fails verification as a whole is refused with a
 * problem and logged as denied.
 */
export async function answerForward(ctx: MunicipalityContext, fed: FederationLink, peer: string, forwardJws: string): Promise<string> {
  const self = ctx.config.MUNICIPALITY_CODE;
  let forward: ForwardClaims;
  let query: QueryClaims;
  try {
    if (peer !== GATEWAY_ID) throw new AppError(403, 'forbidden', 'Only the gateway forwards record requests', { field: 'client certificate', rule: 'must be the gateway' });
    forward = await verifyMessage(forwardJws, forwardClaimsSchema, {
      key: (await fed.peers.signingKey(GATEWAY_ID)).key, issuer: GATEWAY_ID, audience: self, typ: Typ.FORWARD,
    });
    adoptRequestId(forward.rid);
    const requester = peekJwt(forward.query).claims.iss;
    if (!isValidMunicipalityCode(requester)) throw new AppError(400, 'invalid-claims', 'Query issuer malformed', { field: 'query.iss', rule: 'must be a municipality code' });
    query = await verifyMessage(forward.query, queryClaimsSchema, {
      key: (await fed.peers.signingKey(requester)).key, issuer: requester, audience: GATEWAY_ID, typ: Typ.QUERY,
    });
    if (query.rid !== forward.rid) throw new AppError(400, 'invalid-claims', 'Envelope and query disagree on the request id', { field: 'rid', rule: 'must equal the query rid' });
    // Both the envelope and B's query are single-use here, also across restarts.
    const fresh = await ctx.sequelize.transaction(async (t) =>
      (await rememberToken(ctx.models.SeenToken, GATEWAY_ID, forward.jti, forward.exp, t))
      && (await rememberToken(ctx.models.SeenToken, query.iss, `${query.jti}`, query.exp, t)));
    if (!fresh) throw new AppError(409, 'replayed', 'This request was already answered', { field: 'jti', rule: 'must not be reused' });
  } catch (err) {
    await logRefusal(ctx, peer, forwardJws, err);
    throw err instanceof AppError ? err : new AppError(400, 'invalid-request', 'Forwarded request refused', { field: 'forward', rule: 'must be a valid gateway envelope' });
  }

  const requestHash = sha256Hex(forward.query);
  const subjectsByRef = new Map(query.subjects.map((s) => [s.ref, s]));
  const decisions: Decision[] = [];
  for (const f of forward.subjects) {
    decisions.push(await decide(ctx, fed, query, f, subjectsByRef.get(f.ref)));
  }

  const entries: AccessInput[] = decisions.map((d) => {
    const s = subjectsByRef.get(d.ref);
    return {
      requestId: query.rid, actorType: 'member', actorId: query.iss, actorRole: `staff:${query.actor}`, actingMunicipality: query.iss,
      subject: d.subject, action: Actions.QUERY_ANSWER, purpose: query.purpose, legalBasis: s?.legalBasis ?? null,
      consentId: s?.consent?.id ?? null, outcome: d.status === 'ok' ? 'allowed' : 'denied', reason: d.status === 'ok' ? null : (d.reason ?? d.status),
      recordIds: d.recordIds, requestHash, flags: d.flags, details: { status: d.status, ref: d.ref, via: GATEWAY_ID, forwardJti: forward.jti },
    };
  });
  await ctx.sequelize.transaction((t) => appendAccessBatch(ctx.models.AccessLog, t, entries));

  return signMessage({
    aud: query.iss, jti: randomUUID(), rid: query.rid, queryJti: query.jti,
    results: decisions.map((d) => ({
      ref: d.ref, status: d.status, ...(d.reason && d.status !== 'ok' ? { reason: d.reason } : {}),
      ...(d.records ? { records: d.records, recordCount: d.recordIds.length } : {}),
    })),
  }, fed.signer, Typ.ANSWER);
}

async function decide(ctx: MunicipalityContext, fed: FederationLink, query: QueryClaims, f: ForwardSubject, s: QuerySubject | undefined): Promise<Decision> {
  const self = ctx.config.MUNICIPALITY_CODE;
  const refuse = (status: AnswerResult['status'], reason: string, subject: string | null = f.code, flags: string[] = []): Decision =>
    ({ ref: f.ref, status, reason, flags, subject, recordIds: [] });
  if (!s) return refuse('denied', 'ref_not_in_query');
  if (s.source !== self) return refuse('denied', 'not_for_this_source');
  const verdict = checkLegalBasis(s, query);
  if (verdict.status !== 'ok') return refuse(verdict.status, verdict.reason ?? 'refused', f.code, verdict.flags);
  if (!(await attestationsAgree(fed, query.iss, s.sub, self, f))) return refuse('denied', 'attestation_invalid', f.code, verdict.flags);

  const resident = await ctx.models.Resident.findOne({ where: { code: f.code }, raw: true });
  if (!resident) return refuse('not_found', 'no_resident_with_code', f.code, verdict.flags);

  let sealed;
  try {
    sealed = await openMessage(s.sealed, fed.decryptionKey, sealedIdentitySchema, {
      key: (await fed.peers.signingKey(query.iss)).key, issuer: query.iss, audience: self, typ: Typ.SEALED_IDENTITY,
    });
  } catch {
    return refuse('denied', 'sealed_identity_invalid', resident.addresseeNumber, verdict.flags);
  }
  if (sealed.jti !== query.jti || sealed.ref !== s.ref) return refuse('denied', 'sealed_identity_not_bound', resident.addresseeNumber, verdict.flags);
  const differs = identityMismatches(sealed, resident);
  if (differs.length > 0) {
    return { ...refuse('identity_mismatch', `identity_mismatch:${differs.join(',')}`, resident.addresseeNumber, [...verdict.flags, 'identity_mismatch']) };
  }

  const records = await releasableRecords(ctx, resident.id);
  const bundle = {
    resourceType: 'Bundle', type: 'collection',
    entry: records.map((r) => ({ resource: toImmunization(r) })),
  };
  const recipient = await fed.peers.encryptionKey(query.iss);
  const sealedRecords = await sealMessage({
    aud: query.iss, jti: randomUUID(), rid: query.rid, queryJti: query.jti, ref: s.ref, sub: s.sub, purpose: query.purpose, bundle,
  }, fed.signer, Typ.RECORDS, recipient);
  return {
    ref: f.ref, status: 'ok', flags: verdict.flags, subject: resident.addresseeNumber,
    recordIds: records.map((r) => `${r.recordId}@${r.version}`), records: sealedRecords,
  };
}

/** The issuer signed that B's code and our code share one link; the gateway cannot invent that. */
async function attestationsAgree(fed: FederationLink, requester: string, requesterCode: string, self: string, f: ForwardSubject): Promise<boolean> {
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
  await ctx.sequelize.transaction((t) => appendAccessBatch(ctx.models.AccessLog, t, [{
    actorType: 'member', actorId: peer, action: Actions.QUERY_ANSWER, outcome: 'denied', reason: code,
    requestHash: sha256Hex(forwardJws), details: { refusedAt: 'envelope' },
  }]));
  ctx.logger.warn({ peer, code, err: err instanceof AppError ? undefined : err }, 'forwarded request refused');
}

