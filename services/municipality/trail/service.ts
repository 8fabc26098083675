/**
 * The resident's trail across the federation (docs/PROTOCOL.md §3.10). A resident signed in at the
 * page of the municipality they live in (B) sees every access to their data there; the accesses
 * at a municipality they lived in before (A) are in A's log alone. B asks A for them through the
 * gateway, on the resident's own strength: it seals for A the resident's personal certificate and
 * their signature over B's sign-in challenge. A trusts neither B nor the gateway for who the
 * resident is: it verifies both envelopes, the issuer's attestations, the certificate against the
 * CA, the resident's signature (made for B, recently) and that the certificate names its resident
 * (kana, birth date, sex); only then it signs its entries about the resident and seals them for B.
 * Both sides log the exchange.
 */
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { appendAccess } from '../../../shared/access-log/chain.ts';
import { currentHead, keepHeads, type SeenHead } from '../../../shared/access-log/heads.ts';
import { ResidentSignInRefused, verifyResidentSignIn } from '../../../shared/consent-policy.ts';
import { sha256Hex } from '../../../shared/crypto.ts';
import { isPeerUnavailable } from '../../../shared/federation/member-http.ts';
import { openMessage, sealMessage, signMessage, verifyMessage } from '../../../shared/federation/messages.ts';
import { classifyPeerReply } from '../../../shared/federation/peer-reply.ts';
import {
  GATEWAY_ID, GATEWAY_TRAIL_PATH, TRAIL_REQUESTS_PATH, Typ, gatewayTrailAnswerClaimsSchema, gatewayTrailEntriesClaimsSchema, trailAnswerClaimsSchema,
  trailEntriesClaimsSchema, trailForwardClaimsSchema, trailProofClaimsSchema, trailRequestClaimsSchema, type GatewayTrailItem, type TrailItem,
  type TrailRequestClaims, type TrailStatus,
} from '../../../shared/federation/protocol.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { AppError } from '../../../shared/platform/errors.ts';
import { Actions } from '../access-log/actions.ts';
import { logAccessBy, type ResidentActor } from '../access-log/service.ts';
import { attestationsAgree, verifyGatewayForward } from '../answering/service.ts';
import type { MunicipalityContext } from '../context.ts';
import { disclosureItems } from '../disclosure/report.ts';
import type { FederationLink } from '../federation/link.ts';
import { identityMismatches } from '../residents/identity.ts';
import { residentsByCodes } from '../residents/model.ts';

/**
 * How recent the resident's sign-in at B must be for A to answer on its strength: a session's
 * longest life (12 h, services/municipality/config.ts) — B cannot keep asking in the resident's
 * name long after they left the page.
 */
export const TRAIL_SIGN_IN_MAX_AGE_SECONDS = 12 * 3600;

/* ---------- A: answering the gateway's forward ---------- */

interface TrailDecision {
  status: TrailStatus;
  reason?: string;
  subject: string;
  items?: TrailItem[];
  truncated?: boolean;
}

/** The forward and B's request inside it (answering's checks), addressed to us as the source. */
async function verifyForward(ctx: MunicipalityContext, fed: FederationLink, peer: string, forwardJws: string) {
  const self = ctx.config.MUNICIPALITY_CODE;
  const { forward, inner: request } = await verifyGatewayForward(ctx, fed, peer, forwardJws, {
    what: 'trail requests', forward: { schema: trailForwardClaimsSchema, typ: Typ.TRAIL_FORWARD },
    inner: { field: 'request', of: (f) => f.request, schema: trailRequestClaimsSchema, typ: Typ.TRAIL_REQUEST },
  });
  if (request.source !== self) throw new AppError(400, 'invalid-claims', 'The request names another source', { field: 'request.source', rule: `must be ${self}` });
  return { forward, request };
}

async function decide(ctx: MunicipalityContext, fed: FederationLink, request: TrailRequestClaims, forward: { code: string; requesterAttestation: string; sourceAttestation: string }, t: Transaction): Promise<TrailDecision> {
  const self = ctx.config.MUNICIPALITY_CODE;
  const refuse = (status: TrailStatus, reason: string, subject = forward.code): TrailDecision => ({ status, reason, subject });
  if (!(await attestationsAgree(fed, request.iss, request.sub, self, { ref: 'trail', ...forward }))) return refuse('denied', 'attestation_invalid');
  const [resident] = await residentsByCodes(ctx.models.Resident, [forward.code], t);
  if (!resident) return refuse('not_found', 'no_resident_with_code');
  let proof;
  try {
    proof = await openMessage(request.sealed, fed.decryptionKey, trailProofClaimsSchema, {
      key: (await fed.peers.signingKey(request.iss)).key, issuer: request.iss, audience: self, typ: Typ.TRAIL_PROOF,
    });
  } catch {
    return refuse('denied', 'sealed_proof_invalid', resident.addresseeNumber);
  }
  if (proof.requestJti !== request.jti) return refuse('denied', 'sealed_proof_not_bound', resident.addresseeNumber);
  let signedIn;
  try {
    // The resident signed in at B (aud = B), recently: B's word alone is not enough.
    signedIn = await verifyResidentSignIn(proof.signIn, proof.certificate, {
      ca: fed.trust.ca, isRevoked: fed.trust.isRevoked, audience: request.iss, maxAgeSeconds: TRAIL_SIGN_IN_MAX_AGE_SECONDS,
    });
  } catch (err) {
    if (err instanceof ResidentSignInRefused) return refuse('denied', `resident_${err.reason}`, resident.addresseeNumber);
    throw err;
  }
  const differs = identityMismatches(signedIn.certificate, resident);
  if (differs.length > 0) return refuse('identity_mismatch', `identity_mismatch:${differs.join(',')}`, resident.addresseeNumber);
  const { items, truncated } = await disclosureItems(ctx, resident, t);
  // Our trace ids stay here: the resident quotes an entry by its reference.
  return { status: 'ok', subject: resident.addresseeNumber, items: items.map(({ requestId: _ours, ...item }) => item), truncated };
}

/**
 * Handles one forwarded trail request (`peer` = the verified client certificate's CN) and returns
 * A's signed answer. A forward that fails verification as a whole is refused with a problem and
 * logged as denied.
 */
export async function answerTrailForward(ctx: MunicipalityContext, fed: FederationLink, peer: string, forwardJws: string): Promise<string> {
  const requestHash = sha256Hex(forwardJws);
  let verified: Awaited<ReturnType<typeof verifyForward>>;
  try {
    verified = await verifyForward(ctx, fed, peer, forwardJws);
  } catch (err) {
    await inTransaction(ctx.sequelize, (t) => appendAccess(ctx.models.AccessLog, t, {
      actorType: 'member', actorId: peer, actingMunicipality: null, action: Actions.TRAIL_ANSWER, outcome: 'denied',
      reason: err instanceof AppError ? err.code : 'invalid', requestHash,
    }));
    throw err instanceof AppError ? err : new AppError(400, 'invalid-request', 'Forwarded trail request refused', { field: 'forward', rule: 'must be a valid gateway envelope' });
  }
  const { forward, request } = verified;
  const decision = await inTransaction(ctx.sequelize, async (t) => {
    const d = await decide(ctx, fed, request, forward, t);
    // The gateway's head (its envelope) and B's head (B's own request), as they signed them (§3.0).
    await keepHeads(ctx.models.WitnessedHead, t, [
      { member: GATEWAY_ID, head: forward.head, exchange: 'trail', requestId: request.rid, message: forwardJws },
      { member: request.iss, head: request.head, exchange: 'trail', requestId: request.rid, message: forward.request },
    ]);
    // The disclosure is an access too: to the resident's log entries, for B, on the resident's own signature.
    await appendAccess(ctx.models.AccessLog, t, {
      requestId: request.rid, actorType: 'member', actorId: request.iss, actorRole: 'resident-request', actingMunicipality: request.iss,
      subject: d.subject, action: Actions.TRAIL_ANSWER, outcome: d.status === 'ok' ? 'allowed' : 'denied', reason: d.reason ?? null, requestHash,
      details: { status: d.status, via: GATEWAY_ID, items: d.items?.length ?? 0 },
    });
    return d;
  });
  const entries = decision.items
    ? await sealMessage({ aud: request.iss, jti: randomUUID(), requestJti: request.jti, items: decision.items, truncated: decision.truncated ?? false },
      fed.signer, Typ.TRAIL_ENTRIES, await fed.peers.encryptionKey(request.iss))
    : undefined;
  // Our head after this answer's own entry: the gateway and B keep it, so they witness it.
  return signMessage({
    aud: request.iss, jti: randomUUID(), rid: request.rid, requestJti: request.jti, status: decision.status,
    ...(decision.reason ? { reason: decision.reason } : {}), ...(entries ? { entries } : {}), head: await currentHead(ctx.sequelize),
  }, fed.signer, Typ.TRAIL_ANSWER);
}

/* ---------- B: gathering the resident's trail ---------- */

export interface GatheredTrail {
  municipality: string;
  status: TrailStatus;
  reason: string | null;
  items: TrailItem[];
  truncated: boolean;
  /** The source's head as its verified answer carried it (kept with the entry about the ask). */
  head?: SeenHead;
}

/** What B holds of the signed-in resident: their code here, their certificate and their signed challenge. */
export interface TrailAsker {
  who: ResidentActor;
  code: string | null;
  certificate: string;
  signIn: string;
}

async function askOne(ctx: MunicipalityContext, fed: FederationLink, asker: TrailAsker, source: string): Promise<GatheredTrail> {
  const self = ctx.config.MUNICIPALITY_CODE;
  const result = (status: TrailStatus, reason: string | null, items: TrailItem[] = [], truncated = false): GatheredTrail =>
    ({ municipality: source, status, reason, items, truncated });
  if (!asker.code) return result('not_found', 'code_pending');
  const rid = randomUUID();
  const jti = randomUUID();
  const sealed = await sealMessage({ aud: source, jti: randomUUID(), requestJti: jti, certificate: asker.certificate, signIn: asker.signIn },
    fed.signer, Typ.TRAIL_PROOF, await fed.peers.encryptionKey(source));
  const request = await signMessage({ aud: GATEWAY_ID, jti, rid, sub: asker.code, source, sealed, head: await currentHead(ctx.sequelize) }, fed.signer, Typ.TRAIL_REQUEST);
  let res;
  try {
    res = await fed.http.postJson(`${fed.gatewayUrl}${TRAIL_REQUESTS_PATH}`, { request }, { expectPeer: GATEWAY_ID, timeoutMs: fed.timeoutMs, requestId: rid });
  } catch (err) {
    if (!isPeerUnavailable(err)) throw err;
    return result('source_unavailable', 'gateway_unavailable');
  }
  const reply = classifyPeerReply(res);
  if (reply.outcome !== 'ok') return result('source_unavailable', `gateway_status_${res.status}`);
  const body = res.body as { status?: TrailStatus; reason?: string; answer?: string };
  // Without A's signed answer, the status is the gateway's (it found no code at A, or A did not answer).
  if (!body.answer) return result(body.status && body.status !== 'ok' ? body.status : 'source_unavailable', body.reason ?? 'no_answer');
  try {
    const key = (await fed.peers.signingKey(source)).key;
    const answer = await verifyMessage(body.answer, trailAnswerClaimsSchema, { key, issuer: source, audience: self, typ: Typ.TRAIL_ANSWER });
    if (answer.requestJti !== jti) return result('source_unavailable', 'invalid_answer');
    // A's head as it signed it, whatever it answered (§3.0).
    const head: SeenHead = { member: source, head: answer.head, exchange: 'trail', requestId: rid, message: body.answer };
    if (answer.status !== 'ok' || !answer.entries) return { ...result(answer.status === 'ok' ? 'source_unavailable' : answer.status, answer.reason ?? null), head };
    const entries = await openMessage(answer.entries, fed.decryptionKey, trailEntriesClaimsSchema, { key, issuer: source, audience: self, typ: Typ.TRAIL_ENTRIES });
    if (entries.requestJti !== jti) return { ...result('source_unavailable', 'invalid_answer'), head };
    return { ...result('ok', null, entries.items, entries.truncated), head };
  } catch (err) {
    ctx.logger.warn({ source, code: (err as AppError).code }, 'trail answer did not verify');
    return result('source_unavailable', 'invalid_answer');
  }
}

/**
 * Asks each municipality in `sources` for its entries about the signed-in resident, in parallel;
 * one that cannot answer says so and never hides the others. Each ask is logged here, in the
 * resident's name.
 */
export async function gatherTrail(ctx: MunicipalityContext, fed: FederationLink, asker: TrailAsker, sources: string[]): Promise<GatheredTrail[]> {
  const gathered = await Promise.all(sources.map((source) => askOne(ctx, fed, asker, source)));
  await inTransaction(ctx.sequelize, async (t) => {
    await keepHeads(ctx.models.WitnessedHead, t, gathered.flatMap((g) => (g.head ? [g.head] : [])));
    for (const g of gathered) {
      await logAccessBy(ctx, t, asker.who, {
        action: Actions.TRAIL_REQUEST, subject: asker.who.addresseeNumber, outcome: g.status === 'ok' ? 'allowed' : 'denied', reason: g.reason,
        details: { source: g.municipality, status: g.status, items: g.items.length },
      });
    }
  });
  return gathered;
}

/* ---------- B: the gateway's own entries about the resident ---------- */

export interface GatheredGatewayTrail {
  status: 'ok' | 'denied' | 'unavailable';
  reason: string | null;
  items: GatewayTrailItem[];
  truncated: boolean;
}

/**
 * Asks the gateway for its own entries about the signed-in resident (docs/PROTOCOL.md §3.10): a
 * request B signs naming only B's code — no certificate, no identity: the gateway answers on B's
 * word, as the municipality the resident lives in. Verifies the gateway's signed answer and opens
 * its entries (sealed for B), keeps the gateway's head, and logs the ask in the resident's name.
 */
export async function gatherGatewayTrail(ctx: MunicipalityContext, fed: FederationLink, asker: TrailAsker): Promise<GatheredGatewayTrail> {
  const self = ctx.config.MUNICIPALITY_CODE;
  const result = (status: GatheredGatewayTrail['status'], reason: string | null, items: GatewayTrailItem[] = [], truncated = false): GatheredGatewayTrail =>
    ({ status, reason, items, truncated });
  const rid = randomUUID();
  let gathered: GatheredGatewayTrail;
  let head: SeenHead | undefined;
  if (!asker.code) {
    gathered = result('unavailable', 'code_pending');
  } else {
    const jti = randomUUID();
    const request = await signMessage({ aud: GATEWAY_ID, jti, rid, sub: asker.code, head: await currentHead(ctx.sequelize) }, fed.signer, Typ.GATEWAY_TRAIL_REQUEST);
    gathered = await (async () => {
      let res;
      try {
        res = await fed.http.postJson(`${fed.gatewayUrl}${GATEWAY_TRAIL_PATH}`, { request }, { expectPeer: GATEWAY_ID, timeoutMs: fed.timeoutMs, requestId: rid });
      } catch (err) {
        if (!isPeerUnavailable(err)) throw err;
        return result('unavailable', 'gateway_unavailable');
      }
      if (classifyPeerReply(res).outcome !== 'ok' || typeof res.body?.answer !== 'string') return result('unavailable', `gateway_status_${res.status}`);
      try {
        const key = (await fed.peers.signingKey(GATEWAY_ID)).key;
        const answer = await verifyMessage(res.body.answer as string, gatewayTrailAnswerClaimsSchema, { key, issuer: GATEWAY_ID, audience: self, typ: Typ.GATEWAY_TRAIL_ANSWER });
        if (answer.requestJti !== jti || answer.rid !== rid) return result('unavailable', 'invalid_answer');
        head = { member: GATEWAY_ID, head: answer.head, exchange: 'trail', requestId: rid, message: res.body.answer as string };
        if (answer.status !== 'ok' || !answer.entries) return result(answer.status === 'ok' ? 'unavailable' : 'denied', answer.reason ?? null);
        const entries = await openMessage(answer.entries, fed.decryptionKey, gatewayTrailEntriesClaimsSchema, { key, issuer: GATEWAY_ID, audience: self, typ: Typ.GATEWAY_TRAIL_ENTRIES });
        if (entries.requestJti !== jti) return result('unavailable', 'invalid_answer');
        return result('ok', null, entries.items, entries.truncated);
      } catch (err) {
        ctx.logger.warn({ code: (err as AppError).code }, 'gateway trail answer did not verify');
        return result('unavailable', 'invalid_answer');
      }
    })();
  }
  await inTransaction(ctx.sequelize, async (t) => {
    if (head) await keepHeads(ctx.models.WitnessedHead, t, [head]);
    await logAccessBy(ctx, t, asker.who, {
      requestId: rid, action: Actions.TRAIL_REQUEST, subject: asker.who.addresseeNumber, outcome: gathered.status === 'ok' ? 'allowed' : 'denied', reason: gathered.reason,
      details: { source: GATEWAY_ID, status: gathered.status, items: gathered.items.length },
    });
  });
  return gathered;
}
