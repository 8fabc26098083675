/**
 * Routing a query (docs/DESIGN.md §4.5 and §4.8, gateway's part). The gateway verifies B's own
 * signature, refuses replays, checks per subject that the code is B's and that the legal basis
 * holds, translates B's code into the source's code through the correspondence table, and
 * forwards B's query unchanged inside a gateway-signed envelope, one per source, in parallel. It
 * reads A's signed statuses but never records (they are encrypted for B). Every subject is
 * logged at each hop with metadata only, under the query's own request id.
 */
import { verifyMemberMessage, verifySignedBy } from '../directory/messages.ts';
import { classifyPeerReply } from '../../shared/federation/peer-reply.ts';
import { randomUUID } from 'node:crypto';
import { checkLegalBasis } from '../../shared/consent-policy.ts';
import { currentHead, keepHeads, type SeenHead } from '../../shared/access-log/heads.ts';
import { adoptRequestId } from '../../shared/platform/context.ts';
import { CLOCK_SKEW_SECONDS, sha256Hex } from '../../shared/crypto.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { AppError } from '../../shared/platform/errors.ts';
import { ACCESS_LOG_UNAVAILABLE } from '../../shared/access-log/chain.ts';
import { isPeerUnavailable, type Member } from '../../shared/federation/member-http.ts';
import { companionMatches, signMessage } from '../../shared/federation/messages.ts';
import {
  answerClaimsSchema, GATEWAY_ID, MAX_MESSAGE_AGE_SECONDS, queryClaimsSchema, Typ,
  type AnswerClaims, type LogHead, type ForwardSubject, type QueryClaims, type QueryResponse, type QuerySubject, type SourceAnswer, type SubjectStatus,
} from '../../shared/federation/protocol.ts';
import { logMemberAccess, logMemberRefusal, type MemberAccess } from '../../shared/access-log/member-access.ts';
import { GatewayActions } from '../access-log/actions.ts';
import { findByCodes, findByLinks } from '../codes/model.ts';
import { revokedAmong } from '../consent-revocations/model.ts';
import type { GatewayContext } from '../context.ts';
import { createLimiter } from '../../shared/platform/concurrency.ts';
import { pruneExpired, rememberJti } from './model.ts';
import { answerResponseSchema } from './schemas.ts';
import { captureMessage } from './capture.ts';

/** The path at which every municipality answers forwarded record requests. */
export const RECORD_REQUESTS_PATH = '/federation/record-requests';

type Result = QueryResponse['results'][number];

interface Routed {
  subject: QuerySubject;
  flags: string[];
  /** Set when the gateway decided the subject itself. */
  result?: Result;
  forward?: ForwardSubject;
}

const problem = (status: number, code: string, title: string, field: string, rule: string) => new AppError(status, code, title, { field, rule });

/** Verifies B's query: signer = client certificate, B's key from the verified directory, pinned alg/typ/aud, lifetime. */
async function verifyQuery(ctx: GatewayContext, requester: Member, compact: string, sealed: string): Promise<QueryClaims> {
  const query = await verifyMemberMessage(ctx, requester, compact, queryClaimsSchema, { field: 'query', what: 'Query', audience: GATEWAY_ID, typ: Typ.QUERY });
  adoptRequestId(query.rid);
  if (query.subjects.length > ctx.config.MAX_BATCH) {
    throw problem(413, 'batch-too-large', 'Too many subjects in one query', 'subjects', `must list at most ${ctx.config.MAX_BATCH} subjects`);
  }
  const refs = new Set<string>();
  for (const [i, s] of query.subjects.entries()) {
    if (refs.has(s.ref)) throw problem(400, 'validation', 'Duplicate subject reference', `subjects.${i}.ref`, 'must be unique in the query');
    refs.add(s.ref);
  }
  const checked = new Map<string, boolean>();
  for (const [i, s] of query.subjects.entries()) {
    if (!checked.has(s.source)) {
      const entry = await ctx.directory.entry(s.source).catch(() => null);
      checked.set(s.source, entry?.kind === 'municipality' && Boolean(entry.endpoint));
    }
    if (!checked.get(s.source)) {
      throw problem(400, 'unknown-member', 'Unknown source municipality', `subjects.${i}.source`, 'must be a municipality of the federation directory with an endpoint');
    }
  }
  // The sealed part is relayed only as the one B signed for (docs/PROTOCOL.md §3.11); the gateway cannot open it.
  if (!companionMatches(sealed, query.sealedDigest)) {
    throw problem(400, 'invalid-claims', 'Sealed part is not the one the query names', 'sealed', 'must be the envelope whose digest the query carries as sealedDigest');
  }
  return query;
}

/** Per subject: is the code B's, does the legal basis hold (a revoked consent does not), is there a code at the source? */
async function routeSubjects(ctx: GatewayContext, requester: string, query: QueryClaims, t: Parameters<typeof findByCodes>[3]): Promise<Routed[]> {
  const own = await findByCodes(ctx.models.Correspondence, requester, query.subjects.map((s) => s.sub), t);
  const links = await findByLinks(ctx.models.Correspondence, [...own.values()].map((c) => c.linkId), t);
  // The requester's consents this gateway holds a signed revocation of (docs/DESIGN.md §4.4).
  const revoked = await revokedAmong(ctx.models.RevokedConsent, requester, query.subjects.flatMap((s) => (s.consent ? [s.consent.id] : [])), t);
  const now = new Date();
  return query.subjects.map((subject): Routed => {
    const decided = (status: SubjectStatus, reason: string, flags: string[] = []): Routed =>
      ({ subject, flags, result: { ref: subject.ref, source: subject.source, status, reason } });
    const mine = own.get(subject.sub);
    if (!mine) return decided('denied', 'code_not_yours');
    if (subject.source === requester) return decided('denied', 'source_is_requester');
    const verdict = checkLegalBasis(subject, query, now, revoked);
    if (verdict.status !== 'ok') return decided(verdict.status, verdict.reason ?? verdict.status, verdict.flags);
    const theirs = links.get(`${mine.linkId}|${subject.source}`);
    if (!theirs) return decided('not_found', 'not_registered_at_source', verdict.flags);
    return {
      subject,
      flags: verdict.flags,
      forward: { ref: subject.ref, code: theirs.code, requesterAttestation: mine.attestation, sourceAttestation: theirs.attestation },
    };
  });
}

interface SourceReply {
  /** A's signed answer and the records envelope it names, unchanged, when they verified. */
  answer?: SourceAnswer;
  answerJti?: string;
  /** A's log head, as its verified answer carried it. */
  head?: SeenHead;
  results: Map<string, { status: SubjectStatus; reason?: string; retryAfter?: number }>;
}

/** Sends one source its envelope and reads its answer; a source that fails never fails the others. */
async function askSource(ctx: GatewayContext, query: QueryClaims, compact: string, sealed: string, source: string, subjects: ForwardSubject[], head: LogHead): Promise<SourceReply> {
  const unavailable = (reason: string, retryAfter = ctx.config.RETRY_AFTER_SECONDS): SourceReply =>
    ({ results: new Map(subjects.map((s) => [s.ref, { status: 'source_unavailable' as const, reason, retryAfter }])) });
  const ttl = Math.max(1, Math.min(MAX_MESSAGE_AGE_SECONDS, query.exp - Math.floor(Date.now() / 1000)));
  const forward = await signMessage({ aud: source, jti: randomUUID(), rid: query.rid, query: compact, subjects, head }, ctx.credentials.signer, Typ.FORWARD, ttl);

  let limiter = ctx.sourceLimiters.get(source);
  if (!limiter) {
    limiter = createLimiter(ctx.config.SOURCE_CONCURRENCY);
    ctx.sourceLimiters.set(source, limiter);
  }
  let endpoint: string;
  try {
    endpoint = await ctx.directory.endpoint(source);
  } catch {
    // The directory changed under the query (member removed or revoked): nobody to ask.
    return unavailable('source_not_in_directory');
  }
  let res;
  const sent = { direction: 'out' as const, peer: source, method: 'POST', path: `${endpoint}${RECORD_REQUESTS_PATH}`, requestId: query.rid, request: { forward, sealed } };
  try {
    res = await limiter(() => ctx.client.postJson(`${endpoint}${RECORD_REQUESTS_PATH}`, { forward, sealed }, {
      expectPeer: source, timeoutMs: ctx.config.SOURCE_TIMEOUT_MS, requestId: query.rid,
    }));
  } catch (err) {
    if (!isPeerUnavailable(err)) throw err;
    captureMessage(ctx.config.CAPTURE_DIR, { ...sent, status: 0, response: { reason: err.extra.reason ?? null } });
    ctx.logger.warn({ source, reason: err.extra.reason }, 'source unavailable');
    return unavailable(String(err.extra.reason ?? 'unreachable'));
  }
  captureMessage(ctx.config.CAPTURE_DIR, { ...sent, status: res.status, response: res.body });
  const reply = classifyPeerReply(res);
  if (reply.outcome === 'retry') return unavailable(`source_status_${res.status}`, reply.retryAfter ?? ctx.config.RETRY_AFTER_SECONDS);
  if (reply.outcome === 'final') {
    // A refused the envelope as a whole (a 4xx problem): retrying the same would not help.
    const type = typeof (res.body as { type?: unknown })?.type === 'string' ? String((res.body as { type: string }).type).split('/').pop() : res.status;
    ctx.logger.warn({ source, status: res.status, type }, 'source refused the forward');
    return { results: new Map(subjects.map((s) => [s.ref, { status: 'denied' as const, reason: `source_refused:${type}` }])) };
  }
  const body = answerResponseSchema.safeParse(res.body);
  if (!body.success) return unavailable('invalid_answer');
  let answer: AnswerClaims;
  try {
    answer = await verifySignedBy(ctx, source, body.data.answer, answerClaimsSchema, { audience: query.iss, typ: Typ.ANSWER });
  } catch (err) {
    ctx.logger.warn({ source, code: (err as AppError).code }, 'answer did not verify');
    return unavailable('invalid_answer');
  }
  const asked = new Set(subjects.map((s) => s.ref));
  const seen = new Set<string>();
  const wellFormed = answer.queryJti === query.jti && answer.rid === query.rid
    && answer.results.every((r) => asked.has(r.ref) && !seen.has(r.ref) && seen.add(r.ref))
    && companionMatches(body.data.records, answer.recordsDigest);
  if (!wellFormed) return unavailable('invalid_answer');
  const results: SourceReply['results'] = new Map();
  for (const r of answer.results) {
    results.set(r.ref, { status: r.status, ...(r.reason ? { reason: r.reason } : {}) });
  }
  for (const ref of asked) {
    if (!results.has(ref)) results.set(ref, { status: 'source_unavailable', reason: 'missing_in_answer', retryAfter: ctx.config.RETRY_AFTER_SECONDS });
  }
  return {
    answer: body.data, answerJti: answer.jti, results,
    head: { member: source, head: answer.head, exchange: 'answer', requestId: query.rid, message: body.data.answer },
  };
}

function accessEntry(query: QueryClaims, r: Routed, requestHash: string, action: string, status: SubjectStatus | 'forwarded', reason: string | null, details: Record<string, unknown>): MemberAccess {
  return {
    requestId: query.rid,
    action,
    actingMunicipality: query.iss,
    subject: r.subject.sub,
    purpose: query.purpose,
    legalBasis: r.subject.legalBasis,
    consentId: r.subject.consent?.id ?? null,
    outcome: status === 'forwarded' || status === 'ok' ? 'allowed' : 'denied',
    reason,
    requestHash,
    flags: r.flags,
    // `ref` ties the entry to B's and A's entries for the same subject (reconciliation, docs/DESIGN.md §5.3).
    details: { source: r.subject.source, ref: r.subject.ref, status, staff: query.actor, ...details },
  };
}

/**
 * A query refused as a whole is logged too (one entry, no subject), then the problem goes back to
 * B. A refusal that cannot be logged fails closed: B gets `503 access-log-unavailable` instead.
 */
async function logRefusal(ctx: GatewayContext, requester: Member, requestHash: string, err: unknown): Promise<void> {
  const e = err instanceof AppError ? err : undefined;
  // The failed append itself is not logged again (it would fail the same way).
  if (e?.code === ACCESS_LOG_UNAVAILABLE) return;
  await logMemberRefusal(ctx.models.AccessLog, requester, {
    action: GatewayActions.QUERY_REFUSE, actingMunicipality: requester.kind === 'municipality' ? requester.id : null,
    reason: e?.code ?? 'internal', requestHash,
    details: e ? { status: e.status, field: e.extra.field ?? null, rule: e.extra.rule ?? null } : {},
  });
}

/** Handles B's query end to end at the gateway and returns what B gets back. */
export async function routeQuery(ctx: GatewayContext, requester: Member, compact: string, sealed: string): Promise<QueryResponse> {
  const requestHash = sha256Hex(compact);
  await ctx.currentDirectory();
  let query: QueryClaims;
  let routed: Routed[];
  try {
    query = await verifyQuery(ctx, requester, compact, sealed);
    const q = query;
    routed = await inTransaction(ctx.sequelize, async (t) => {
      const nowSeconds = Math.floor(Date.now() / 1000);
      await pruneExpired(ctx.models.ReplayCache, nowSeconds, CLOCK_SKEW_SECONDS, t);
      if (!(await rememberJti(ctx.models.ReplayCache, q.iss, q.jti, q.exp, t))) {
        throw problem(409, 'replayed', 'Query already received', 'query.jti', 'must not be reused');
      }
      const decisions = await routeSubjects(ctx, requester.id, q, t);
      await logMemberAccess(ctx.models.AccessLog, t, requester, decisions.map((r) => (r.result
        ? accessEntry(q, r, requestHash, GatewayActions.QUERY_ROUTE, r.result.status, r.result.reason ?? null, {})
        : accessEntry(q, r, requestHash, GatewayActions.QUERY_ROUTE, 'forwarded', null, {}))));
      // B's head as B signed it, kept with the entries about its query.
      await keepHeads(ctx.models.WitnessedHead, t, [{ member: q.iss, head: q.head, exchange: 'query', requestId: q.rid, message: compact }]);
      return decisions;
    });
  } catch (err) {
    await logRefusal(ctx, requester, requestHash, err);
    throw err;
  }

  // One source per query (docs/PROTOCOL.md §3.2): one envelope, one answer.
  const source = query.subjects[0]!.source;
  const forwarded = routed.filter((r) => r.forward);
  let reply: SourceReply = { results: new Map() };
  if (forwarded.length > 0) {
    try {
      // Our head after the routing entries: the source keeps it from the envelope we sign.
      reply = await askSource(ctx, query, compact, sealed, source, forwarded.map((r) => r.forward!), await currentHead(ctx.sequelize));
    } catch (err) {
      ctx.logger.error({ err, source }, 'forwarding failed');
      reply = { results: new Map(forwarded.map((r) => [r.subject.ref, { status: 'source_unavailable' as const, reason: 'gateway_error', retryAfter: ctx.config.RETRY_AFTER_SECONDS }])) };
    }
  }

  const results: Result[] = routed.map((r) => {
    if (r.result) return r.result;
    const got = reply.results.get(r.subject.ref)!;
    return {
      ref: r.subject.ref, source: r.subject.source, status: got.status,
      ...(got.reason ? { reason: got.reason } : {}), ...(got.retryAfter !== undefined ? { retryAfter: got.retryAfter } : {}),
    };
  });
  if (forwarded.length > 0) {
    await inTransaction(ctx.sequelize, async (t) => {
      await logMemberAccess(ctx.models.AccessLog, t, requester, forwarded.map((r) => {
        const got = reply.results.get(r.subject.ref)!;
        // How many records a subject has is sealed for B: not the gateway's business (docs/PROTOCOL.md §3.6).
        return accessEntry(query, r, requestHash, GatewayActions.QUERY_ANSWER, got.status, got.status === 'ok' ? null : (got.reason ?? got.status), {
          ...(reply.answerJti ? { answerJti: reply.answerJti } : {}),
        });
      }));
      // The source's head as its answer carried it.
      if (reply.head) await keepHeads(ctx.models.WitnessedHead, t, [reply.head]);
    });
  }
  const counts: Record<string, number> = {};
  for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
  ctx.logger.info({ requester: requester.id, subjects: results.length, source, statuses: counts }, 'query routed');
  return {
    requestId: query.rid,
    results,
    answers: reply.answer ? [reply.answer] : [],
  };
}
