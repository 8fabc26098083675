/**
 * Registration of residents' codes (flow 1): the only place a My Number leaves this municipality,
 * to the issuer. Every resident with codeStatus `pending` is due (the residents table is the
 * outbox), so a resident is saved even when the issuer or gateway is down, and gets its code when
 * they return. Due residents go in batches (one call, one gateway call and one log transaction per
 * batch at each hop, not per resident); failures back off per resident.
 */
import { z } from 'zod';
import { backoffSeconds } from '../../../shared/platform/backoff.ts';
import { mapWithLimit } from '../../../shared/platform/concurrency.ts';
import { isValidMyNumber } from '../../../shared/identifiers.ts';
import { codeSchema, ISSUER_ID, logHeadSchema } from '../../../shared/federation/protocol.ts';
import { currentHead, keepHeads } from '../../../shared/access-log/heads.ts';
import { classifyPeerReply } from '../../../shared/federation/peer-reply.ts';
import type { MunicipalityContext } from '../context.ts';
import { readMyNumber } from '../residents/service.ts';
import { codeBacklog, residentsByIds, residentsDueForCode, storeCodes } from '../residents/model.ts';
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

/** Residents still waiting for a code, and how many of them have failed at least once. */
export async function registrationBacklog(ctx: MunicipalityContext): Promise<{ pending: number; retrying: number }> {
  return codeBacklog(ctx.models.Resident);
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
    run: { issued, failed: due.length - issued, pending: (await registrationBacklog(ctx)).pending },
    full: due.length >= limit,
  };
}

/** Registers one batch; the number of codes stored. */
async function registerBatch(ctx: MunicipalityContext, fed: FederationLink, batch: Due[]): Promise<number> {
  const residents = await residentsByIds(ctx.models.Resident, batch.map((d) => d.id));
  const byId = new Map(residents.map((r) => [r.id, r]));
  const outcomes = new Map<string, Outcome>();
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
    // The issuer's own rule, checked here too: one bad My Number would otherwise refuse its whole batch.
    if (!isValidMyNumber(myNumber)) outcomes.set(id, { error: 'my number invalid' });
    else send.push({ id, myNumber });
  }
  for (const [id, outcome] of await sendBatch(ctx, fed, send, true)) outcomes.set(id, outcome);
  return settleBatch(ctx, batch, outcomes);
}

/** What the issuer answers for a batch: one entry per My Number, in order. Only codes and stable words are kept. */
const issuerBatchAnswerSchema = z.object({
  codes: z.array(z.object({
    code: z.unknown().optional(),
    reason: z.unknown().optional(),
  })),
  head: logHeadSchema.optional(),
});
const stableWord = z.string().regex(/^[a-z][a-z_-]{0,39}$/);

const everyone = (items: { id: string }[], outcome: Outcome) => new Map(items.map((item) => [item.id, outcome]));

/**
 * One call to the issuer for a batch. The only message that carries My Numbers: they are never
 * logged, and nothing of an issuer's error body is kept but its status and stable words.
 */
async function sendBatch(ctx: MunicipalityContext, fed: FederationLink, items: { id: string; myNumber: string }[], mayResend: boolean): Promise<Map<string, Outcome>> {
  if (items.length === 0) return new Map();
  let res: { status: number; body: any };
  try {
    // My Numbers go to the issuer and nobody else: the server must prove it is the issuer (its certificate's CN).
    // Our log head rides along, as in every message between members (docs/PROTOCOL.md §3.0).
    const body = { myNumbers: items.map((item) => item.myNumber), head: await currentHead(ctx.sequelize) };
    res = await fed.http.postJson(`${fed.issuerUrl}/codes/batch`, body, { timeoutMs: fed.timeoutMs, expectPeer: ISSUER_ID });
  } catch (err) {
    return everyone(items, { error: `issuer unreachable: ${(err as { code?: string }).code ?? 'error'}` });
  }
  if (res.status === 400 && mayResend) {
    // The issuer names My Numbers at fault by index: those fail alone, the rest go again once.
    const errors: unknown[] = Array.isArray(res.body?.errors) ? res.body.errors : [];
    const indexes = errors.map((e) => Number(/^myNumbers\.(\d+)$/.exec(String((e as { field?: unknown })?.field ?? ''))?.[1] ?? NaN));
    const blamed = new Set(indexes);
    if (indexes.length > 0 && indexes.every((i) => i < items.length)) {
      const outcomes = new Map<string, Outcome>();
      items.forEach((item, i) => { if (blamed.has(i)) outcomes.set(item.id, { error: 'issuer refused the my number' }); });
      for (const [id, outcome] of await sendBatch(ctx, fed, items.filter((_item, i) => !blamed.has(i)), false)) outcomes.set(id, outcome);
      return outcomes;
    }
  }
  const answer = issuerBatchAnswerSchema.safeParse(res.body);
  // Whatever the issuer's reply, a resident without a code stays due and backs off (DESIGN.md flow 1).
  const reply = classifyPeerReply(res);
  if (reply.outcome !== 'ok' || !answer.success || answer.data.codes.length !== items.length) {
    return everyone(items, { error: `issuer answered ${res.status}`, retryAfter: reply.outcome === 'retry' ? reply.retryAfter : null });
  }
  // The issuer's head, as it answered: kept like any head a member sends us.
  if (answer.data.head) await keepHeads(ctx.models.WitnessedHead, undefined, [{ member: ISSUER_ID, head: answer.data.head, exchange: 'registration' }]);
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
      .then(({ run, full }) => { if (full && run.issued > 0) again = true; })
      .catch((err) => ctx.logger.error({ err }, 'registration round failed'))
      .finally(() => {
        running = undefined;
        if (again) { again = false; round(); }
      });
  };
  const timer = setInterval(round, intervalMs);
  timer.unref();
  return {
    kick: round,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
