/**
 * Registration of residents' codes (flow 1, docs/DESIGN.md §4.2). No My Number leaves this
 * municipality: each is blinded here (B = r·H(My Number)), evaluated by the issuer (k_I) and then
 * by the gateway (k_G), unblinded and finalized here into a seed, and only the seed goes to the
 * issuer for the code. Every resident with codeStatus `pending` is due (the residents table is the
 * outbox), so a resident is saved even when the issuer or gateway is down, and gets its code when
 * they return. Due residents go in batches (three calls per batch: evaluate at the issuer, at the
 * gateway, then the seeds; one log transaction per batch at each hop); failures back off per
 * resident. Codes of the old derivation are rekeyed by the same worker (`processRekeys`).
 */
import { z } from 'zod';
import { backoffSeconds } from '../../../shared/platform/backoff.ts';
import { mapWithLimit } from '../../../shared/platform/concurrency.ts';
import { isValidMyNumber } from '../../../shared/identifiers.ts';
import { blindInput, finalizeSeed, isValidPoint } from '../../../shared/crypto.ts';
import { codeSchema, GATEWAY_ID, ISSUER_ID } from '../../../shared/federation/protocol.ts';
import { currentHead, keepHeads } from '../../../shared/access-log/heads.ts';
import { signHead, verifySignedHead, type SignedHead } from '../../../shared/federation/messages.ts';
import { classifyPeerReply } from '../../../shared/federation/peer-reply.ts';
import type { MunicipalityContext } from '../context.ts';
import { readMyNumber } from '../residents/service.ts';
import { codeBacklog, markRekeyed, rekeyBacklog, requeueForCode, residentsByIds, residentsDueForCode, residentsDueForRekey, storeCodes } from '../residents/model.ts';
import type { FederationLink } from '../federation/link.ts';
import { recordAttempts } from './model.ts';

/** Residents per call to the issuer (its own limit is 500). */
export const REGISTRATION_BATCH_SIZE = 100;
/** Calls to the issuer in flight at once, each a batch. */
export const REGISTRATION_CALLS_IN_FLIGHT = 4;
/** Residents taken per round; the worker starts the next round at once while rounds come back full. */
export const REGISTRATION_ROUND_LIMIT = 1000;

export interface RegistrationRun {
  issued: number;
  failed: number;
  pending: number;
}

/** Residents still waiting for a code, how many of them have failed at least once, and codes still of the old derivation (§4.2). */
export async function registrationBacklog(ctx: MunicipalityContext): Promise<{ pending: number; retrying: number; rekeyPending: number }> {
  return { ...(await codeBacklog(ctx.models.Resident)), rekeyPending: await rekeyBacklog(ctx.models.Resident) };
}

export interface RegistrationOptions {
  /** Residents taken in this round. */
  limit?: number;
  now?: Date;
  /** Calls to the issuer in flight at once. */
  concurrency?: number;
  /** Residents per call. */
  batchSize?: number;
}

/** Sends due registrations to the issuer in batches; stores each batch's codes as it comes back. */
export async function processRegistrations(ctx: MunicipalityContext, fed: FederationLink, options: RegistrationOptions = {}): Promise<RegistrationRun> {
  const { run } = await registrationRound(ctx, fed, options);
  return run;
}

interface Due {
  id: string;
  attempts: number;
}

/** A code, or why not; `retryAfter` is the issuer's Retry-After (seconds) when it asked us to wait. */
type Outcome = { code: string } | { error: string; retryAfter?: number | null };

/** One round, and whether it took as many residents as it could (more may be due). */
async function registrationRound(ctx: MunicipalityContext, fed: FederationLink, options: RegistrationOptions): Promise<{ run: RegistrationRun; full: boolean }> {
  const now = options.now ?? new Date();
  const limit = options.limit ?? REGISTRATION_ROUND_LIMIT;
  const due: Due[] = await residentsDueForCode(ctx.models.Resident, now, limit);
  const size = Math.max(1, options.batchSize ?? REGISTRATION_BATCH_SIZE);
  const batches: Due[][] = [];
  for (let i = 0; i < due.length; i += size) batches.push(due.slice(i, i + size));
  const issuedPerBatch = await mapWithLimit(batches, options.concurrency ?? REGISTRATION_CALLS_IN_FLIGHT, (batch) => registerBatch(ctx, fed, batch));
  const issued = issuedPerBatch.reduce((sum, n) => sum + n, 0);
  return {
    run: { issued, failed: due.length - issued, pending: (await codeBacklog(ctx.models.Resident)).pending },
    full: due.length >= limit,
  };
}

/** The My Numbers of a batch's residents, read here and never sent; an unreadable or invalid one fails alone. */
function myNumbersOf(ctx: MunicipalityContext, residents: Awaited<ReturnType<typeof residentsByIds>>, batch: { id: string }[], outcomes: Map<string, Outcome>) {
  const byId = new Map(residents.map((r) => [r.id, r]));
  const send: { id: string; myNumber: string }[] = [];
  for (const { id } of batch) {
    const resident = byId.get(id);
    if (!resident) continue;
    let myNumber: string;
    try {
      myNumber = readMyNumber(ctx, resident);
    } catch {
      outcomes.set(id, { error: 'my number unreadable' });
      continue;
    }
    // Only valid My Numbers are blinded: the seed of a typo would be a code for nobody.
    if (!isValidMyNumber(myNumber)) outcomes.set(id, { error: 'my number invalid' });
    else send.push({ id, myNumber });
  }
  return send;
}

/** Registers one batch; the number of codes stored. */
async function registerBatch(ctx: MunicipalityContext, fed: FederationLink, batch: Due[]): Promise<number> {
  const residents = await residentsByIds(ctx.models.Resident, batch.map((d) => d.id));
  const outcomes = new Map<string, Outcome>();
  const send = myNumbersOf(ctx, residents, batch, outcomes);
  const seeded = await deriveSeeds(ctx, fed, send);
  for (const [id, outcome] of seeded.failed) outcomes.set(id, outcome);
  for (const [id, outcome] of await sendBatch(ctx, fed, seeded.items, true)) outcomes.set(id, outcome);
  return settleBatch(ctx, batch, outcomes);
}

/** Our log head, signed for `member`, the one peer the call goes to (docs/PROTOCOL.md §3.0). */
const ownHead = async (ctx: MunicipalityContext, fed: FederationLink, member: string): Promise<string> => signHead(await currentHead(ctx.sequelize), fed.signer, member);

/** Verifies the peer's signed head in its answer and keeps it; false when it is missing or does not verify (the answer is then invalid). */
async function keepAnswerHead(ctx: MunicipalityContext, fed: FederationLink, member: string, statement: unknown): Promise<boolean> {
  let signed: SignedHead;
  try {
    signed = await verifySignedHead(statement, (id) => fed.peers.signingKey(id), member, fed.signer.id);
  } catch {
    return false;
  }
  await keepHeads(ctx.models.WitnessedHead, undefined, [{ member, head: signed.head, exchange: 'registration', message: signed.message }]);
  return true;
}

/** What the issuer and the gateway answer to POST /codes/evaluate: one point per point sent, each checked on the curve here too. */
const evaluatedSchema = z.object({ evaluated: z.array(z.unknown()), head: z.unknown() });

/** One evaluation hop: the points times the member's key share, in order, or why not. */
async function evaluateAt(ctx: MunicipalityContext, fed: FederationLink, member: typeof ISSUER_ID | typeof GATEWAY_ID, points: string[]): Promise<{ evaluated: string[] } | { error: string; retryAfter?: number | null }> {
  let res: { status: number; body: any };
  try {
    // Each member is pinned by its certificate: the points are blinded, but only these two may multiply them.
    res = await fed.http.postJson(`${member === ISSUER_ID ? fed.issuerUrl : fed.gatewayUrl}/codes/evaluate`, { blinded: points, head: await ownHead(ctx, fed, member) }, {
      timeoutMs: fed.timeoutMs, expectPeer: member,
    });
  } catch (err) {
    return { error: `${member} unreachable: ${(err as { code?: string }).code ?? 'error'}` };
  }
  const reply = classifyPeerReply(res);
  const answer = evaluatedSchema.safeParse(res.body);
  if (reply.outcome !== 'ok' || !answer.success || answer.data.evaluated.length !== points.length || !answer.data.evaluated.every(isValidPoint)
    || !await keepAnswerHead(ctx, fed, member, answer.data.head)) {
    return { error: `${member} evaluation answered ${res.status}`, retryAfter: reply.outcome === 'retry' ? reply.retryAfter : null };
  }
  return { evaluated: answer.data.evaluated as string[] };
}

/**
 * The seeds of a batch (docs/DESIGN.md §4.2): blind each My Number, have the issuer and then the
 * gateway evaluate the batch in one call each, unblind and finalize here. A hop that fails fails
 * the batch (every resident backs off); the blinds live only in this call.
 */
export async function deriveSeeds(ctx: MunicipalityContext, fed: FederationLink, items: { id: string; myNumber: string }[]): Promise<{ items: { id: string; seed: string }[]; failed: Map<string, Outcome> }> {
  if (items.length === 0) return { items: [], failed: new Map() };
  const blinded = items.map((item) => blindInput(item.myNumber));
  const atIssuer = await evaluateAt(ctx, fed, ISSUER_ID, blinded.map((b) => b.blinded));
  if ('error' in atIssuer) return { items: [], failed: everyone(items, atIssuer) };
  const atGateway = await evaluateAt(ctx, fed, GATEWAY_ID, atIssuer.evaluated);
  if ('error' in atGateway) return { items: [], failed: everyone(items, atGateway) };
  return { items: items.map((item, i) => ({ id: item.id, seed: finalizeSeed(item.myNumber, blinded[i]!.blind, atGateway.evaluated[i]!) })), failed: new Map() };
}

/** What the issuer answers for a batch: one entry per seed, in order. Only codes and stable words are kept. */
const issuerBatchAnswerSchema = z.object({
  codes: z.array(z.object({
    code: z.unknown().optional(),
    reason: z.unknown().optional(),
  })),
  head: z.unknown(),
});
const stableWord = z.string().regex(/^[a-z][a-z_-]{0,39}$/);

const everyone = (items: { id: string }[], outcome: Outcome) => new Map(items.map((item) => [item.id, outcome]));

/**
 * One call to the issuer for a batch of seeds. Nothing of an issuer's error body is kept but its
 * status and stable words.
 */
async function sendBatch(ctx: MunicipalityContext, fed: FederationLink, items: { id: string; seed: string }[], mayResend: boolean): Promise<Map<string, Outcome>> {
  if (items.length === 0) return new Map();
  let res: { status: number; body: any };
  try {
    // Seeds go to the issuer and nobody else: the server must prove it is the issuer (its certificate's CN).
    // Our log head, signed for the issuer, rides along, as in every message between members (docs/PROTOCOL.md §3.0).
    const body = { seeds: items.map((item) => item.seed), head: await ownHead(ctx, fed, ISSUER_ID) };
    res = await fed.http.postJson(`${fed.issuerUrl}/codes/batch`, body, { timeoutMs: fed.timeoutMs, expectPeer: ISSUER_ID });
  } catch (err) {
    return everyone(items, { error: `issuer unreachable: ${(err as { code?: string }).code ?? 'error'}` });
  }
  if (res.status === 400 && mayResend) {
    // The issuer names seeds at fault by index: those fail alone, the rest go again once.
    const errors: unknown[] = Array.isArray(res.body?.errors) ? res.body.errors : [];
    const indexes = errors.map((e) => Number(/^seeds\.(\d+)$/.exec(String((e as { field?: unknown })?.field ?? ''))?.[1] ?? NaN));
    const blamed = new Set(indexes);
    if (indexes.length > 0 && indexes.every((i) => i < items.length)) {
      const outcomes = new Map<string, Outcome>();
      items.forEach((item, i) => { if (blamed.has(i)) outcomes.set(item.id, { error: 'issuer refused the seed' }); });
      for (const [id, outcome] of await sendBatch(ctx, fed, items.filter((_item, i) => !blamed.has(i)), false)) outcomes.set(id, outcome);
      return outcomes;
    }
  }
  const answer = issuerBatchAnswerSchema.safeParse(res.body);
  // Whatever the issuer's reply, a resident without a code stays due and backs off (DESIGN.md flow 1).
  const reply = classifyPeerReply(res);
  // The issuer's signed head, as it answered, is part of a valid answer and kept like any head a member sends us.
  if (reply.outcome !== 'ok' || !answer.success || answer.data.codes.length !== items.length || !await keepAnswerHead(ctx, fed, ISSUER_ID, answer.data.head)) {
    return everyone(items, { error: `issuer answered ${res.status}`, retryAfter: reply.outcome === 'retry' ? reply.retryAfter : null });
  }
  return new Map(items.map((item, i): [string, Outcome] => {
    const entry = answer.data.codes[i]!;
    const code = codeSchema.safeParse(entry.code);
    if (code.success) return [item.id, { code: code.data }];
    const reason = stableWord.safeParse(entry.reason);
    return [item.id, { error: `issuer refused the code${reason.success ? `: ${reason.data}` : ''}` }];
  }));
}

/** Stores a batch's codes in one statement and its failures' backoff in another. */
async function settleBatch(ctx: MunicipalityContext, batch: Due[], outcomes: Map<string, Outcome>): Promise<number> {
  const issued: [string, string][] = [];
  const failed: { residentId: string; attempts: number; error: string; retryAfter?: number | null }[] = [];
  for (const { id, attempts } of batch) {
    const outcome = outcomes.get(id);
    if (!outcome) continue;
    if ('code' in outcome) issued.push([id, outcome.code]);
    else failed.push({ residentId: id, attempts: attempts + 1, error: outcome.error, retryAfter: outcome.retryAfter });
  }
  const at = new Date();
  await storeCodes(ctx.models.Resident, issued.map(([id, code]) => ({ id, code })), at);
  if (failed.length > 0) {
    await recordAttempts(ctx.models.RegistrationAttempt, failed.map((f) => ({
      residentId: f.residentId, attempts: f.attempts, lastError: f.error.slice(0, 200),
      nextAttemptAt: new Date(at.getTime() + backoffSeconds(f.attempts, undefined, { retryAfter: f.retryAfter }) * 1000).toISOString(),
    })));
    // One line per reason, not per resident: a batch the issuer could not take is one event.
    const byError = new Map<string, string[]>();
    for (const f of failed) {
      if (!byError.has(f.error)) byError.set(f.error, []);
      byError.get(f.error)!.push(f.residentId);
    }
    for (const [error, residentIds] of byError) ctx.logger.warn({ residentIds, error }, 'code registration deferred');
  }
  return issued.length;
}

/* ---------- migration of codes of the old derivation (docs/DESIGN.md §4.2) ---------- */

export interface RekeyRun {
  rekeyed: number;
  /** Residents whose code the gateway did not know: queued for a fresh (blind) registration. */
  requeued: number;
  failed: number;
  pending: number;
}

/** What the issuer answers to POST /codes/rekey: one result per item, in order. */
const rekeyAnswerSchema = z.object({
  results: z.array(z.object({ code: z.unknown(), status: z.unknown().optional(), reason: z.unknown().optional() })),
  head: z.unknown(),
});

/**
 * Moves residents whose code is of the old derivation (codeDerivation `legacy`) to their blind
 * link, code kept: their seeds are derived as for a registration, then one `POST /codes/rekey`
 * per batch proves each code (the gateway holds it under our certificate's name) with its seed.
 * The gateway moves every row of the person, so a query between a municipality that registered
 * before and one that registered after routes again. A code the gateway does not know is queued
 * for a fresh registration (nobody could route to it anyway); any other failure backs off.
 */
export async function processRekeys(ctx: MunicipalityContext, fed: FederationLink, options: RegistrationOptions = {}): Promise<RekeyRun> {
  const due = await residentsDueForRekey(ctx.models.Resident, options.now ?? new Date(), options.limit ?? REGISTRATION_ROUND_LIMIT);
  const size = Math.max(1, options.batchSize ?? REGISTRATION_BATCH_SIZE);
  const batches: typeof due[] = [];
  for (let i = 0; i < due.length; i += size) batches.push(due.slice(i, i + size));
  const runs = await mapWithLimit(batches, options.concurrency ?? REGISTRATION_CALLS_IN_FLIGHT, (batch) => rekeyBatch(ctx, fed, batch));
  const sum = (k: 'rekeyed' | 'requeued') => runs.reduce((n, r) => n + r[k], 0);
  return { rekeyed: sum('rekeyed'), requeued: sum('requeued'), failed: due.length - sum('rekeyed') - sum('requeued'), pending: await rekeyBacklog(ctx.models.Resident) };
}

async function rekeyBatch(ctx: MunicipalityContext, fed: FederationLink, batch: { id: string; code: string; attempts: number }[]): Promise<{ rekeyed: number; requeued: number }> {
  const residents = await residentsByIds(ctx.models.Resident, batch.map((d) => d.id));
  const outcomes = new Map<string, Outcome | { rekeyed: true } | { requeue: true }>();
  const seeded = await deriveSeeds(ctx, fed, myNumbersOf(ctx, residents, batch, outcomes as Map<string, Outcome>));
  for (const [id, outcome] of seeded.failed) outcomes.set(id, outcome);
  const codeOf = new Map(batch.map((d) => [d.id, d.code]));
  if (seeded.items.length > 0) {
    const body = { rekeys: seeded.items.map((item) => ({ code: codeOf.get(item.id)!, seed: item.seed })), head: await ownHead(ctx, fed, ISSUER_ID) };
    let res: { status: number; body: any } | undefined;
    try {
      res = await fed.http.postJson(`${fed.issuerUrl}/codes/rekey`, body, { timeoutMs: fed.timeoutMs, expectPeer: ISSUER_ID });
    } catch (err) {
      for (const item of seeded.items) outcomes.set(item.id, { error: `issuer unreachable: ${(err as { code?: string }).code ?? 'error'}` });
    }
    if (res) {
      const reply = classifyPeerReply(res);
      const answer = rekeyAnswerSchema.safeParse(res.body);
      if (reply.outcome !== 'ok' || !answer.success || answer.data.results.length !== seeded.items.length || !await keepAnswerHead(ctx, fed, ISSUER_ID, answer.data.head)) {
        const retryAfter = reply.outcome === 'retry' ? reply.retryAfter : null;
        for (const item of seeded.items) outcomes.set(item.id, { error: `issuer answered ${res.status}`, retryAfter });
      } else {
        seeded.items.forEach((item, i) => {
          const r = answer.data.results[i]!;
          if (r.code !== codeOf.get(item.id)) outcomes.set(item.id, { error: 'issuer answered another code' });
          else if (r.status === 'moved' || r.status === 'unchanged') outcomes.set(item.id, { rekeyed: true });
          else if (r.reason === 'unknown_code') outcomes.set(item.id, { requeue: true });
          else {
            const reason = stableWord.safeParse(r.reason);
            outcomes.set(item.id, { error: `rekey refused${reason.success ? `: ${reason.data}` : ''}` });
          }
        });
      }
    }
  }
  const at = new Date();
  const rekeyed = batch.filter((d) => { const o = outcomes.get(d.id); return o && 'rekeyed' in o; }).map((d) => d.id);
  const requeued = batch.filter((d) => { const o = outcomes.get(d.id); return o && 'requeue' in o; }).map((d) => d.id);
  await markRekeyed(ctx.models.Resident, rekeyed, at);
  await requeueForCode(ctx.models.Resident, requeued, at);
  const failed = batch.flatMap((d) => {
    const o = outcomes.get(d.id);
    return o && 'error' in o ? [{ residentId: d.id, attempts: d.attempts + 1, error: o.error, retryAfter: o.retryAfter }] : [];
  });
  if (failed.length > 0) {
    await recordAttempts(ctx.models.RegistrationAttempt, failed.map((f) => ({
      residentId: f.residentId, attempts: f.attempts, lastError: f.error.slice(0, 200),
      nextAttemptAt: new Date(at.getTime() + backoffSeconds(f.attempts, undefined, { retryAfter: f.retryAfter }) * 1000).toISOString(),
    })));
    ctx.logger.warn({ residentIds: failed.map((f) => f.residentId), error: failed[0]!.error }, 'code rekey deferred');
  }
  return { rekeyed: rekeyed.length, requeued: requeued.length };
}

/**
 * Runs registrations in the background until stopped; `kick()` runs a round now (after a new
 * resident) instead of waiting for the next tick. One round at a time.
 */
export function startRegistrationWorker(ctx: MunicipalityContext, fed: FederationLink, intervalMs = 2000, concurrency?: number) {
  let running: Promise<unknown> | undefined;
  let again = false;
  let stopped = false;
  const round = (): void => {
    if (stopped) return;
    if (running) { again = true; return; }
    running = registrationRound(ctx, fed, { concurrency })
      // A full round that stored codes leaves more due: the next one starts now, not at the next tick.
      .then(async ({ run, full }) => {
        if (full && run.issued > 0) again = true;
        // Then codes of the old derivation, moved to their blind links (docs/DESIGN.md §4.2).
        const rekeys = await processRekeys(ctx, fed, { concurrency });
        if (rekeys.rekeyed + rekeys.requeued >= REGISTRATION_ROUND_LIMIT) again = true;
        if (rekeys.requeued > 0) again = true;
      })
      .catch((err) => ctx.logger.error({ err }, 'registration round failed'))
      .finally(() => {
        running = undefined;
        if (again) { again = false; round(); }
      });
  };
  const timer = setInterval(round, intervalMs);
  timer.unref();
  // Residents left pending by the last run (or seeded while the member was down) go at once.
  setImmediate(round);
  return {
    kick: round,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
