/**
 * The asking side of a prior-record query (flow 4, B's part). B checks the move-in capability and
 * consent itself, seals the identity checks (and the capability's proofs) of one source's subjects
 * for A in one envelope, signs, sends through the gateway, verifies A's signed answer and opens the
 * one records envelope inside it, cuts the records to the purpose's allow-list and imports them
 * with provenance (docs/PROTOCOL.md §3.2–§3.6). Every subject ends with one status.
 */
import { classifyPeerReply } from '../../../shared/federation/peer-reply.ts';
import { randomUUID } from 'node:crypto';
import { appendAccessBatch, type AccessInput } from '../../../shared/access-log/chain.ts';
import { currentHead, keepHeads, type SeenHead } from '../../../shared/access-log/heads.ts';
import { checkLegalBasis } from '../../../shared/consent-policy.ts';
import { sha256Hex, peekJwt } from '../../../shared/crypto.ts';
import { currentRequestId } from '../../../shared/platform/context.ts';
import { AppError } from '../../../shared/platform/errors.ts';
import { companionDigest, companionMatches, openMessage, sealMessage, signMessage, verifyMessage } from '../../../shared/federation/messages.ts';
import {
  GATEWAY_ID, Typ, answerClaimsSchema, recordsClaimsSchema, type AnswerClaims, type Purpose,
  type QuerySubject, type SubjectStatus,
} from '../../../shared/federation/protocol.ts';
import { Actions } from '../access-log/actions.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { consentTerms, decideConsent, listConsentsOfMany } from '../consents/service.ts';
import { importRecordsBatch } from '../vaccinations/service.ts';
import { fromImmunization, type ImportedImmunization } from '../vaccinations/fhir.ts';
import { requesterCapability, type MoveInProof } from '../moves/capability.ts';
import { discloseImmunization } from '../answering/disclosure-policy.ts';
import type { FederationLink } from '../federation/link.ts';
import { insertQuerySubjects, settleQuerySubjects } from './model.ts';
import { changeExceptionStatus, findException } from '../exceptions/model.ts';
import { residentsByAddressees } from '../residents/model.ts';
import { gatewayResponseSchema, type GatewayResponse, type QueryInput } from './schemas.ts';

/** Seconds a caller should wait before asking again when the gateway itself is unreachable. */
export const GATEWAY_RETRY_AFTER = 30;

export interface SubjectOutcome {
  ref: string;
  addresseeNumber: string;
  source: string;
  status: SubjectStatus;
  reason?: string;
  retryAfter?: number;
  recordCount: number;
  imported: number;
}

export interface QueryOutcome {
  requestId: string;
  results: SubjectOutcome[];
}

interface Prepared {
  ref: string;
  resident: {
    id: string; addresseeNumber: string; code: string | null; birthDate: string; sex: string; kana: string; status: string;
    movedInAt: string | null; previousMunicipality: string | null;
  };
  source: string;
  legalBasis: 'consent' | 'life-protection';
  consentId: string | null;
  exceptionId: string | null;
  queryJti?: string;
  subject?: QuerySubject;
  local?: { status: SubjectStatus; reason: string; retryAfter?: number };
  /** The move-in capability's proof, sealed for the source (docs/DESIGN.md §4.6). */
  moveIn?: MoveInProof;
  /** A resident-signed consent's certificate, sealed for the source (it names the resident). */
  residentCertificate?: string;
}

/**
 * Runs one query (one subject or a batch) end to end; never throws for a subject's refusal.
 * B signs one query per source municipality, so each source sees only the subjects meant for it
 * (not B's codes or consent terms for residents who came from elsewhere). All share one request id.
 */
export async function runQuery(ctx: MunicipalityContext, fed: FederationLink, input: QueryInput, actor: Actor): Promise<QueryOutcome> {
  const requestId = currentRequestId() ?? randomUUID();
  const prepared = await prepareSubjects(ctx, fed, input, actor);
  await claimExceptions(ctx, prepared);
  const bySource = new Map<string, Prepared[]>();
  for (const p of prepared) {
    if (!p.subject) continue;
    bySource.set(p.source, [...(bySource.get(p.source) ?? []), p]);
  }
  const batches: Batch[] = [];
  // Our log head goes into every query we sign (docs/PROTOCOL.md §3.0): one index lookup per query.
  const head = bySource.size > 0 ? await currentHead(ctx.sequelize) : undefined;
  for (const [source, members] of bySource) {
    const jti = randomUUID();
    for (const p of members) p.queryJti = jti;
    const subjects = members.map((p) => p.subject!);
    // The sealed part travels beside the query, which names it by digest (docs/PROTOCOL.md §3.11).
    const sealed = await sealIdentities(fed, source, members, jti);
    const query = await signMessage({ aud: GATEWAY_ID, jti, rid: requestId, purpose: input.purpose, actor: actor.staffId, subjects, sealedDigest: companionDigest(sealed), head }, fed.signer, Typ.QUERY);
    batches.push({ source, jti, query, sealed, requestHash: sha256Hex(query), members });
  }
  const hashOf = (p: Prepared) => batches.find((b) => b.jti === p.queryJti)?.requestHash ?? null;

  // What we are about to ask is logged before anything leaves.
  await ctx.sequelize.transaction(async (t) => {
    await insertQuerySubjects(ctx.models.QuerySubject, prepared.map((p) => ({
      queryJti: p.queryJti ?? `local:${requestId}`, requestId, ref: p.ref, residentId: p.resident.id, source: p.source, purpose: input.purpose,
      legalBasis: p.legalBasis, consentId: p.consentId, exceptionId: p.exceptionId, actorId: actor.staffId,
      status: p.local?.status ?? 'pending', reason: p.local?.reason ?? null,
    })), t);
    await appendAccessBatch(ctx.models.AccessLog, t, prepared.map((p) => staffEntry(ctx, actor, p, input.purpose, requestId, hashOf(p), {
      action: Actions.QUERY_SEND,
      outcome: p.local ? 'denied' : 'allowed',
      reason: p.local?.reason ?? null,
    })));
  });

  const outcomes = new Map<string, SubjectOutcome>(prepared.map((p) => [p.ref, {
    ref: p.ref, addresseeNumber: p.resident.addresseeNumber, source: p.source,
    status: p.local?.status ?? 'source_unavailable', reason: p.local?.reason, retryAfter: p.local?.retryAfter, recordCount: 0, imported: 0,
  }]));
  const heads: SeenHead[] = [];
  const imports = (await Promise.all(batches.map((b) => sendBatch(ctx, fed, b, input.purpose, requestId, outcomes, heads)))).flat();

  // Imports and their log entries commit together; importing twice changes nothing.
  await ctx.sequelize.transaction(async (t) => {
    const retrievedAt = new Date().toISOString();
    const entries: AccessInput[] = [];
    // One batch for every subject of the answer (per record, the writes cost ~17× more here).
    const results = await importRecordsBatch(ctx, t, imports.map(({ p, records }) => ({
      residentId: p.resident.id, provenance: { sourceMunicipality: p.source, importRequestId: requestId, retrievedAt, purpose: input.purpose }, immunizations: records,
    })));
    for (const [i, { p, records }] of imports.entries()) {
      const imported = results[i]!;
      const outcome = outcomes.get(p.ref)!;
      outcome.recordCount = records.length;
      outcome.imported = imported.created;
      entries.push(staffEntry(ctx, actor, p, input.purpose, requestId, hashOf(p), {
        action: Actions.RECORDS_IMPORT, outcome: 'allowed', recordIds: imported.recordIds,
        details: { source: p.source, ref: p.ref, received: records.length, created: imported.created, unchanged: imported.unchanged, releasePurpose: input.purpose },
      }));
    }
    await settleQuerySubjects(ctx.models.QuerySubject, t, batches.flatMap((b) => b.members.map((p) => {
      const o = outcomes.get(p.ref)!;
      return { queryJti: b.jti, ref: p.ref, status: o.status, reason: o.reason ?? null, recordCount: o.recordCount, importedCount: o.imported, retryAfter: o.retryAfter ?? null };
    })));
    await appendAccessBatch(ctx.models.AccessLog, t, entries);
    // The sources' heads their answers carried, kept with the entries about those answers.
    await keepHeads(ctx.models.WitnessedHead, t, heads);
  });
  return { requestId, results: [...outcomes.values()] };
}

/** One subject's records from the source's records envelope, already cut to the purpose. */
interface Released {
  sub: string;
  records: ImportedImmunization[];
  /** A verified record broke an import rule (a date, a code, a My Number in its free text; logged with the field and rule): nothing of the subject is imported. */
  refused?: true;
}

interface Batch {
  source: string;
  jti: string;
  query: string;
  /** The identity checks sealed for the source, beside the query. */
  sealed: string;
  requestHash: string;
  members: Prepared[];
}

/** Stable problem code of a gateway refusal (the last segment of its problem type), never its text. */
function problemCode(body: unknown): string {
  const type = (body as { type?: unknown } | null)?.type;
  const code = typeof type === 'string' ? type.split('/').pop() ?? '' : '';
  return /^[a-z0-9_-]{1,40}$/.test(code) ? code : 'unknown';
}

/**
 * Sends one source's query through the gateway; fills in outcomes and returns verified records to
 * import. The gateway's reading of statuses is taken for refusals only: an `ok` counts when the
 * source's own signed answer says so, and records only when they open and verify.
 */
async function sendBatch(
  ctx: MunicipalityContext, fed: FederationLink, b: Batch, purpose: Purpose, requestId: string, outcomes: Map<string, SubjectOutcome>, heads: SeenHead[],
) {
  const imports: { p: Prepared; records: ImportedImmunization[] }[] = [];
  const setAll = (o: Pick<SubjectOutcome, 'status' | 'reason' | 'retryAfter'>) => {
    for (const p of b.members) Object.assign(outcomes.get(p.ref)!, o);
  };
  let response: GatewayResponse | null = null;
  try {
    const res = await fed.http.postJson(`${fed.gatewayUrl}/queries`, { query: b.query, sealed: b.sealed }, { timeoutMs: fed.timeoutMs, requestId, expectPeer: GATEWAY_ID });
    const reply = classifyPeerReply(res);
    if (reply.outcome === 'ok') {
      const parsed = gatewayResponseSchema.safeParse(res.body);
      if (parsed.success) response = parsed.data;
      else setAll({ status: 'source_unavailable', reason: 'invalid_gateway_response', retryAfter: GATEWAY_RETRY_AFTER });
    } else if (reply.outcome === 'final') {
      // The gateway refused the query as a whole: asking again unchanged would not help.
      ctx.logger.warn({ status: res.status, type: problemCode(res.body), source: b.source }, 'gateway refused the query');
      setAll({ status: 'denied', reason: `gateway_refused:${problemCode(res.body)}`, retryAfter: undefined });
    } else {
      ctx.logger.warn({ status: res.status, source: b.source }, 'gateway unavailable');
      setAll({ status: 'source_unavailable', reason: 'gateway_unavailable', retryAfter: GATEWAY_RETRY_AFTER });
    }
  } catch (err) {
    ctx.logger.warn({ code: (err as { code?: string }).code, source: b.source }, 'gateway unreachable');
    setAll({ status: 'source_unavailable', reason: 'gateway_unavailable', retryAfter: GATEWAY_RETRY_AFTER });
  }
  if (!response) return imports;

  setAll({ status: 'source_unavailable', reason: 'no_verified_answer', retryAfter: GATEWAY_RETRY_AFTER });
  const byRef = new Map(b.members.map((p) => [p.ref, p]));
  for (const r of response.results) {
    if (!byRef.has(r.ref) || r.status === 'ok') continue;
    Object.assign(outcomes.get(r.ref)!, { status: r.status, reason: r.reason, retryAfter: r.retryAfter });
  }
  // The source's signed answer is authoritative for its subjects; the gateway's reading is not trusted.
  for (const reply of response.answers) {
    const answer = await verifyAnswer(ctx, fed, reply.answer, b, requestId);
    if (!answer) continue;
    heads.push({ member: answer.iss, head: answer.head, exchange: 'answer', requestId, message: reply.answer });
    // The records beside the answer count only when they are the envelope A's signature names.
    const released = answer.recordsDigest && companionMatches(reply.records, answer.recordsDigest)
      ? await openRecords(ctx, fed, reply.records!, answer, purpose) : new Map<string, Released>();
    for (const result of answer.results) {
      const p = byRef.get(result.ref);
      if (!p) continue;
      const outcome = outcomes.get(result.ref)!;
      Object.assign(outcome, { status: result.status, reason: result.reason, retryAfter: undefined });
      if (result.status !== 'ok') continue;
      const subject = released.get(result.ref);
      // Records for another of our residents (a swapped code) are as good as none.
      if (!subject || subject.sub !== p.resident.code) {
        Object.assign(outcome, { status: 'denied', reason: 'records_unverifiable' });
        continue;
      }
      // Genuine, but one record breaks what B accepts into its own copy (docs/PROTOCOL.md §5).
      if (subject.refused) {
        Object.assign(outcome, { status: 'denied', reason: 'records_invalid' });
        continue;
      }
      imports.push({ p, records: subject.records });
    }
  }
  return imports;
}

/**
 * Spends the approved exception requests of this query, each by exactly one query: the update
 * only succeeds from `approved`, so two queries racing for one approval cannot both send.
 */
async function claimExceptions(ctx: MunicipalityContext, prepared: Prepared[]): Promise<void> {
  const claiming = prepared.filter((p) => p.subject && p.exceptionId);
  if (claiming.length === 0) return;
  await ctx.sequelize.transaction(async (t) => {
    for (const p of claiming) {
      if (!(await changeExceptionStatus(ctx.models.ExceptionRequest, p.exceptionId!, 'approved', { status: 'used' }, t))) {
        p.subject = undefined;
        p.local = { status: 'denied', reason: 'exception_used' };
      }
    }
  });
}

function staffEntry(
  ctx: MunicipalityContext, actor: Actor, p: Prepared, purpose: string, requestId: string, requestHash: string | null,
  entry: Pick<AccessInput, 'action' | 'outcome'> & Partial<AccessInput>,
): AccessInput {
  return {
    actorType: 'staff', actorId: actor.staffId, actorRole: actor.role, actingMunicipality: ctx.config.MUNICIPALITY_CODE,
    subject: p.resident.addresseeNumber, purpose, legalBasis: p.legalBasis, consentId: p.consentId, requestId, requestHash,
    flags: p.legalBasis === 'life-protection' ? ['life-protection'] : [],
    ...entry,
    // `ref` ties this entry to the gateway's and the source's entries for the same subject (reconciliation).
    details: { source: p.source, ref: p.ref, ...entry.details },
  };
}

/**
 * A source municipality outside the federation is bad input (400 naming the subject), found here
 * before anything is logged or sent; a directory that cannot be fetched is left to each subject.
 */
export async function requireKnownSources(fed: FederationLink, subjects: readonly { source: string }[]): Promise<void> {
  // Our own code is no peer to look up; asking ourselves is refused per subject (source_is_self).
  const checked = new Set<string>([fed.self]);
  for (const [i, s] of subjects.entries()) {
    if (checked.has(s.source)) continue;
    checked.add(s.source);
    try {
      await fed.peers.encryptionKey(s.source);
    } catch (err) {
      if (err instanceof AppError && err.code === 'unknown-member') {
        throw new AppError(400, 'unknown-member', 'Unknown source municipality', { field: `subjects.${i}.source`, rule: 'must be a municipality of the federation directory' });
      }
    }
  }
}

/** B's own checks before anything is signed: resident, code, consent or an approved exception. */
async function prepareSubjects(ctx: MunicipalityContext, fed: FederationLink, input: QueryInput, actor: Actor): Promise<Prepared[]> {
  const addressees = [...new Set(input.subjects.map((s) => s.addresseeNumber))];
  const residents = await residentsByAddressees(ctx.models.Resident, addressees);
  const byAddressee = new Map(residents.map((r) => [r.addresseeNumber, r]));
  const missing = input.subjects.findIndex((s) => !byAddressee.has(s.addresseeNumber));
  if (missing >= 0) throw new AppError(404, 'not-found', 'Resident not found', { field: `subjects.${missing}.addresseeNumber`, rule: 'must be a resident of this municipality' });
  await requireKnownSources(fed, input.subjects);
  // One read of every consent the batch may need, rather than one per subject.
  const consentsOf = await listConsentsOfMany(ctx.models.Consent, residents.map((r) => r.id));

  const prepared: Prepared[] = [];
  for (const [index, s] of input.subjects.entries()) {
    const resident = byAddressee.get(s.addresseeNumber)!;
    const p: Prepared = {
      ref: String(index), resident, source: s.source, legalBasis: s.exceptionId ? 'life-protection' : 'consent',
      consentId: null, exceptionId: s.exceptionId ?? null,
    };
    prepared.push(p);
    if (s.source === ctx.config.MUNICIPALITY_CODE) { p.local = { status: 'denied', reason: 'source_is_self' }; continue; }
    if (resident.status !== 'resident') { p.local = { status: 'denied', reason: 'not_a_current_resident' }; continue; }
    if (!resident.code) { p.local = { status: 'denied', reason: 'code_pending' }; continue; }
    // The move-in capability: only where the resident came from, only within the window after the move-in.
    try {
      const capability = await requesterCapability(ctx, fed, resident, s.source);
      if (!capability.ok) { p.local = { status: 'denied', reason: capability.reason }; continue; }
      p.moveIn = capability.proof;
    } catch {
      // A chain link's issuer key could not be fetched (directory down): ask again later.
      p.local = { status: 'source_unavailable', reason: 'directory_unavailable', retryAfter: GATEWAY_RETRY_AFTER }; continue;
    }

    let basis: Pick<QuerySubject, 'legalBasis' | 'consent' | 'exception'>;
    if (s.exceptionId) {
      const exception = await findException(ctx.models.ExceptionRequest, s.exceptionId);
      if (!exception || exception.residentId !== resident.id || exception.source !== s.source || exception.purpose !== input.purpose) {
        p.local = { status: 'denied', reason: 'exception_not_matching' }; continue;
      }
      if (exception.status !== 'approved' || !exception.approvedBy || !exception.approvedAt) {
        p.local = { status: 'denied', reason: `exception_${exception.status}` }; continue;
      }
      basis = { legalBasis: 'life-protection', exception: {
        justification: exception.justification, requestedBy: exception.requestedBy, approvedBy: exception.approvedBy, approvedAt: exception.approvedAt,
      } };
    } else {
      const decision = decideConsent(consentsOf.get(resident.id) ?? [], s.source, input.purpose);
      if (decision.status !== 'ok') { p.local = { status: decision.status, reason: decision.reason }; continue; }
      p.consentId = decision.consent.id;
      p.residentCertificate = decision.consent.residentCertificate ?? undefined;
      basis = { legalBasis: 'consent', consent: consentTerms(decision.consent) };
    }

    try {
      await fed.peers.encryptionKey(s.source);
    } catch {
      // Unknown sources were refused above: what is left is a directory we cannot fetch now.
      p.local = { status: 'source_unavailable', reason: 'directory_unavailable', retryAfter: GATEWAY_RETRY_AFTER }; continue;
    }
    // The identity check is sealed per query once its jti is known (see sealIdentities).
    const subject = { ref: p.ref, sub: resident.code, source: s.source, ...basis } as QuerySubject;
    const verdict = checkLegalBasis(subject, { purpose: input.purpose, actor: actor.staffId });
    if (verdict.status !== 'ok') { p.local = { status: verdict.status, reason: verdict.reason ?? 'refused' }; continue; }
    p.subject = subject;
  }
  return prepared;
}

/** The identity checks of one source's subjects, in one envelope bound to the query's jti, readable by A alone. */
async function sealIdentities(fed: FederationLink, source: string, members: Prepared[], jti: string): Promise<string> {
  const recipient = await fed.peers.encryptionKey(source);
  return sealMessage({
    aud: source, jti,
    identities: members.map((p) => ({
      ref: p.ref, birthDate: p.resident.birthDate, sex: p.resident.sex, kana: p.resident.kana,
      ...(p.moveIn ? { moveIn: p.moveIn } : {}),
      ...(p.residentCertificate ? { residentCertificate: p.residentCertificate } : {}),
    })),
  }, fed.signer, Typ.SEALED_IDENTITIES, recipient);
}

/** Verifies the source's answer: its own signature, addressed to us, answering this query. */
async function verifyAnswer(ctx: MunicipalityContext, fed: FederationLink, answerJws: string, b: Batch, requestId: string): Promise<AnswerClaims | null> {
  try {
    if (peekJwt(answerJws).claims.iss !== b.source) return null;
    const { key } = await fed.peers.signingKey(b.source);
    const answer = await verifyMessage(answerJws, answerClaimsSchema, { key, issuer: b.source, audience: ctx.config.MUNICIPALITY_CODE, typ: Typ.ANSWER });
    if (answer.queryJti !== b.jti || answer.rid !== requestId) throw new Error('answer to another query');
    return answer;
  } catch (err) {
    ctx.logger.warn({ err: (err as Error).message }, 'answer refused');
    return null;
  }
}

/** Decrypts with our key and verifies A's signature over the records, bound to this query and subject. */
async function openRecords(ctx: MunicipalityContext, fed: FederationLink, jwe: string, answer: AnswerClaims, purpose: Purpose): Promise<Map<string, Released>> {
  const released = new Map<string, Released>();
  let claims;
  try {
    const { key } = await fed.peers.signingKey(answer.iss);
    claims = await openMessage(jwe, fed.decryptionKey, recordsClaimsSchema, {
      key, issuer: answer.iss, audience: ctx.config.MUNICIPALITY_CODE, typ: Typ.RECORDS,
    });
    if (claims.queryJti !== answer.queryJti || claims.rid !== answer.rid || claims.purpose !== purpose) throw new Error('records bound to another query');
  } catch (err) {
    ctx.logger.warn({ err: (err as Error).message, source: answer.iss }, 'records refused');
    return released;
  }
  for (const subject of claims.subjects) {
    try {
      // The purpose's allow-list applies here too: a source that over-shares does not fill our copy.
      released.set(subject.ref, { sub: subject.sub, records: (subject.bundle.entry ?? []).map((e) => fromImmunization(discloseImmunization(e.resource, purpose))) });
    } catch (err) {
      // The message names the element and the rule, never the value (it is scrubbed besides).
      ctx.logger.warn({ err: (err as Error).message, ref: subject.ref }, 'records refused');
      if (err instanceof AppError && err.code === 'invalid-immunization') {
        released.set(subject.ref, { sub: subject.sub, records: [], refused: true });
      }
    }
  }
  return released;
}
