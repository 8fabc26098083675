/**
 * Bulk move-in queries (DESIGN.md flow 5, B's part) as resumable jobs. A job is its subject rows;
 * the runner takes the next due chunk, asks through `runQuery` (one signed query per source,
 * idempotent imports), and writes every subject's outcome and the job's status in one
 * transaction. Subjects that came back `source_unavailable` (or are waiting for their code) are
 * retried with backoff, honouring the gateway's retry-after; nothing is all-or-nothing.
 *
 * Exactly-once imports do not depend on this bookkeeping: if the process dies after `runQuery`
 * committed its imports but before the chunk's outcome is written, the chunk runs again and the
 * provenance index (resident, source, source record, source version) makes the import a no-op.
 */
import { backoffSeconds } from '../../../../shared/platform/backoff.ts';
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { runWithContext } from '../../../../shared/platform/context.ts';
import { AppError, badRequest, conflict, notFound, unprocessable } from '../../../../shared/platform/errors.ts';
import { PURPOSES, SUBJECT_STATUSES, type Purpose, type SubjectStatus } from '../../../../shared/federation/protocol.ts';
import { Actions } from '../../access-log/actions.ts';
import { logStaffAccess } from '../../access-log/service.ts';
import { isRole, type Actor } from '../../staff/roles.ts';
import { consentDecisionFor } from '../../consents/service.ts';
import type { MunicipalityContext } from '../../context.ts';
import { heldImportedCounts } from '../../vaccinations/model.ts';
import { residentsByAddressees, residentsMovedInSince } from '../../residents/model.ts';
import type { FederationLink } from '../../federation/link.ts';
import { runQuery, type QueryOutcome } from '../service.ts';
import {
  bulkBacklogCounts, findJob, insertJob, listJobs, listJobSubjects, nextDueChunk, reopenSubjects, settleJobStatus, subjectsOfJob,
  tallySubjects, updateSubject, type JobRecord, type JobSubjectRecord, type SubjectUpdate,
} from './model.ts';
import type { BulkQueryInput, ListSubjectsInput } from './schemas.ts';

/** Local refusals that clear up by themselves: the resident's code is still being registered. */
const RETRYABLE_DENIALS = new Set(['code_pending']);

/** True when asking again later may give another answer. */
export const isRetryable = (status: string | null, reason: string | null): boolean =>
  status === 'source_unavailable' || (status === 'denied' && reason !== null && RETRYABLE_DENIALS.has(reason));

/**
 * Seconds until a subject's next attempt: the shared schedule starting at 1 s (a bulk job is
 * watched by a clerk), never sooner than the source's retry-after, never later than `capSeconds`
 * (so an operator bounds how long a job can idle).
 */
export const retryDelaySeconds = (attempts: number, retryAfter: number | null | undefined, capSeconds: number): number =>
  backoffSeconds(attempts, capSeconds, { firstSeconds: 1, retryAfter });

/* ---------- views ---------- */

export interface JobProgress {
  id: string;
  purpose: string;
  status: 'running' | 'completed';
  selection: Record<string, unknown>;
  total: number;
  /** Subjects with a final status. */
  done: number;
  /** Never tried yet. */
  pending: number;
  /** Waiting for an automatic retry (`source_unavailable`, or a code still pending). */
  pendingRetries: number;
  nextRetryAt: string | null;
  /** Last known status per subject, final or not. */
  byStatus: Record<SubjectStatus, number>;
  /** Imported records the `ok` subjects now hold from their sources. */
  imported: number;
  /** Record versions this job wrote (a repeated import writes none). */
  created: number;
  createdAt: string;
  completedAt: string | null;
}

export interface JobSubjectView {
  seq: number;
  addresseeNumber: string;
  source: string;
  state: JobSubjectRecord['state'];
  status: string | null;
  reason: string | null;
  attempts: number;
  nextAttemptAt: string | null;
  retryAfter: number | null;
  recordCount: number;
  imported: number;
  resolvedAt: string | null;
  requestId: string | null;
}

const subjectView = (s: JobSubjectRecord): JobSubjectView => ({
  seq: s.seq, addresseeNumber: s.addresseeNumber, source: s.source, state: s.state, status: s.status, reason: s.reason,
  attempts: s.attempts, nextAttemptAt: s.nextAttemptAt, retryAfter: s.retryAfter, recordCount: s.recordCount,
  imported: s.heldCount, resolvedAt: s.resolvedAt, requestId: s.requestId,
});

async function progressOf(ctx: MunicipalityContext, job: JobRecord, t?: Transaction): Promise<JobProgress> {
  const tallies = await tallySubjects(ctx.models, job.id, t);
  const byStatus = Object.fromEntries(SUBJECT_STATUSES.map((s) => [s, 0])) as Record<SubjectStatus, number>;
  let done = 0;
  let pending = 0;
  let retrying = 0;
  let imported = 0;
  let created = 0;
  let nextRetryAt: string | null = null;
  for (const tally of tallies) {
    if (tally.status && tally.status in byStatus) byStatus[tally.status as SubjectStatus] += tally.count;
    if (tally.state === 'done') done += tally.count;
    else if (tally.state === 'pending') pending += tally.count;
    else {
      retrying += tally.count;
      if (tally.nextAttemptAt && (!nextRetryAt || tally.nextAttemptAt < nextRetryAt)) nextRetryAt = tally.nextAttemptAt;
    }
    if (tally.status === 'ok') imported += tally.held;
    created += tally.created;
  }
  return {
    id: job.id, purpose: job.purpose, status: job.status, selection: job.selection, total: job.total, done, pending,
    pendingRetries: retrying, nextRetryAt, byStatus, imported, created, createdAt: job.createdAt, completedAt: job.completedAt,
  };
}

async function requireJob(ctx: MunicipalityContext, id: string, t?: Transaction): Promise<JobRecord> {
  const job = await findJob(ctx.models, id, t);
  if (!job) throw notFound('Bulk query');
  return job;
}

/* ---------- staff actions ---------- */

interface ChosenSubject {
  residentId: string;
  addresseeNumber: string;
  source: string;
}

/** The subjects named in the request: each must be one of our residents, asked of another municipality. */
async function namedSubjects(ctx: MunicipalityContext, t: Transaction, subjects: NonNullable<BulkQueryInput['subjects']>): Promise<ChosenSubject[]> {
  const addressees = [...new Set(subjects.map((s) => s.addresseeNumber))];
  const residents = await residentsByAddressees(ctx.models.Resident, addressees, t);
  const byAddressee = new Map(residents.map((r) => [r.addresseeNumber, r.id]));
  return subjects.map((s, i) => {
    const residentId = byAddressee.get(s.addresseeNumber);
    if (!residentId) throw new AppError(404, 'not-found', 'Resident not found', { field: `subjects.${i}.addresseeNumber`, rule: 'must be a resident of this municipality' });
    if (s.source === ctx.config.MUNICIPALITY_CODE) throw badRequest(`subjects.${i}.source`, 'must be another municipality than this one');
    return { residentId, addresseeNumber: s.addresseeNumber, source: s.source };
  });
}

/** Every current resident who moved in since the date (from `source`, if given) and consented to this purpose. */
async function movedInSubjects(ctx: MunicipalityContext, t: Transaction, input: BulkQueryInput): Promise<ChosenSubject[]> {
  const residents = await residentsMovedInSince(ctx.models.Resident, input.movedInSince!, input.source, t);
  const chosen: ChosenSubject[] = [];
  for (const r of residents) {
    const source = r.previousMunicipality!;
    if (source === ctx.config.MUNICIPALITY_CODE) continue;
    const decision = await consentDecisionFor(ctx, r.id, source, input.purpose, t);
    if (decision.status === 'ok') chosen.push({ residentId: r.id, addresseeNumber: r.addresseeNumber, source });
  }
  if (chosen.length === 0) {
    throw unprocessable('no-subjects', 'No resident matches the selection', {
      field: 'movedInSince', rule: 'must select at least one current resident who moved in since this date and consented to this purpose',
    });
  }
  return chosen;
}


/**
 * Creates a job (clerk or operator) in the caller's transaction; the runner picks it up. Call
 * `requireKnownSources` first. A selected resident whose recorded previous municipality has left
 * the federation ends as that subject's `denied`, never as the job's failure.
 */
export async function createBulkJob(ctx: MunicipalityContext, t: Transaction, input: BulkQueryInput, actor: Actor): Promise<JobProgress> {
  const subjects = input.subjects ? await namedSubjects(ctx, t, input.subjects) : await movedInSubjects(ctx, t, input);
  const selection = input.subjects
    ? { kind: 'subjects' }
    : { kind: 'movedInSince', movedInSince: input.movedInSince, source: input.source ?? null };
  const job = await insertJob(ctx.models, {
    id: randomUUID(), purpose: input.purpose, selection: JSON.stringify(selection), createdBy: actor.staffId, createdByRole: actor.role, total: subjects.length,
  }, subjects.map((s, seq) => ({ seq, residentId: s.residentId, addresseeNumber: s.addresseeNumber, source: s.source })), t);
  const sources: Record<string, number> = {};
  for (const s of subjects) sources[s.source] = (sources[s.source] ?? 0) + 1;
  // One entry for the job; each subject's own entries follow when it is actually asked (runQuery).
  await logStaffAccess(ctx, t, actor, {
    action: Actions.BULK_CREATE, purpose: input.purpose, outcome: 'allowed', details: { jobId: job.id, total: subjects.length, selection, sources },
  });
  return progressOf(ctx, job, t);
}

export async function bulkJobProgress(ctx: MunicipalityContext, id: string): Promise<JobProgress> {
  return progressOf(ctx, await requireJob(ctx, id));
}

export async function recentBulkJobs(ctx: MunicipalityContext, limit = 50) {
  return (await listJobs(ctx.models, limit)).map((j) => ({
    id: j.id, purpose: j.purpose, status: j.status, total: j.total, createdAt: j.createdAt, completedAt: j.completedAt,
  }));
}

/** One page of a job's subjects; each resident listed gets its own access-log entry. */
export async function readJobSubjects(ctx: MunicipalityContext, t: Transaction, id: string, query: ListSubjectsInput, actor: Actor) {
  const job = await requireJob(ctx, id, t);
  const { rows, total } = await listJobSubjects(ctx.models, job.id, { state: query.state, offset: (query.page - 1) * query.pageSize, limit: query.pageSize }, t);
  for (const s of rows) {
    await logStaffAccess(ctx, t, actor, {
      action: Actions.BULK_READ, subject: s.addresseeNumber, purpose: job.purpose, outcome: 'allowed', details: { jobId: job.id, source: s.source },
    });
  }
  return { id: job.id, items: rows.map(subjectView), page: query.page, pageSize: query.pageSize, total };
}

/**
 * On-demand retry: every subject that is not final (source unavailable, code pending) becomes due
 * now, with a fresh allowance of automatic attempts (its attempts so far stay counted).
 * @throws 409 `nothing-to-retry` when every subject already has a final answer.
 */
export async function retryBulkJob(ctx: MunicipalityContext, t: Transaction, id: string, actor: Actor): Promise<JobProgress & { retried: number }> {
  const job = await requireJob(ctx, id, t);
  const open = (await subjectsOfJob(ctx.models, job.id, t)).filter((s) => s.state === 'retrying' || (s.state === 'done' && isRetryable(s.status, s.reason)));
  if (open.length === 0) {
    throw conflict('nothing-to-retry', 'Every subject of this bulk query has a final answer', { field: 'id', rule: 'must have subjects that are source_unavailable or waiting for a code' });
  }
  const now = new Date();
  const retried = await reopenSubjects(ctx.models, open, ctx.config.BULK_MAX_ATTEMPTS, now, t);
  await settleJobStatus(ctx.models, job.id, t, now);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.BULK_RETRY, purpose: job.purpose, outcome: 'allowed', details: { jobId: job.id, retried },
  });
  return { ...(await progressOf(ctx, (await findJob(ctx.models, job.id, t))!, t)), retried };
}

/* ---------- the runner's step ---------- */

const actorOfJob = (ctx: MunicipalityContext, job: JobRecord): Actor => ({
  staffId: job.createdBy, role: isRole(job.createdByRole) ? job.createdByRole : 'operator', municipality: ctx.config.MUNICIPALITY_CODE,
});

/** A 4xx naming one subject (`subjects.N.…`) is that subject's problem, not the chunk's. */
function subjectAtFault(err: unknown): { index: number; code: string } | null {
  if (!(err instanceof AppError) || err.status >= 500) return null;
  const match = /^subjects\.(\d+)\./.exec(String(err.extra.field ?? ''));
  return match ? { index: Number(match[1]), code: err.code } : null;
}

/**
 * Runs the next due chunk of the oldest job that has one. Returns how many subjects it handled
 * (0 = nothing due). Never throws for a subject's refusal or an unreachable peer.
 */
export async function runNextChunk(ctx: MunicipalityContext, fed: FederationLink, now = new Date()): Promise<number> {
  const chunk = await nextDueChunk(ctx.models, now, ctx.config.BULK_CHUNK_SIZE);
  if (!chunk) return 0;
  const { job, subjects } = chunk;
  if (!(PURPOSES as readonly string[]).includes(job.purpose)) throw new Error(`bulk job ${job.id} has an unknown purpose`);
  const requestId = randomUUID();
  let outcome: QueryOutcome | null = null;
  let failure: unknown;
  try {
    // The chunk's own trace id: one request id across B's, the gateway's and A's logs.
    outcome = await runWithContext({ requestId }, () => runQuery(ctx, fed, {
      purpose: job.purpose as Purpose,
      subjects: subjects.map((s) => ({ addresseeNumber: s.addresseeNumber, source: s.source })),
    }, actorOfJob(ctx, job)));
  } catch (err) {
    failure = err;
  }

  const finished = new Date();
  await ctx.sequelize.transaction(async (t) => {
    const faulty = outcome ? null : subjectAtFault(failure);
    if (!outcome && faulty && subjects[faulty.index]) {
      // Settle the one bad subject; its chunk-mates stay due and go again at once.
      const s = subjects[faulty.index]!;
      ctx.logger.warn({ jobId: job.id, seq: s.seq, code: faulty.code }, 'bulk subject refused as bad input');
      await updateSubject(ctx.models, s.id, {
        ...carry(s), state: 'done', status: 'denied', reason: faulty.code.slice(0, 100), attempts: s.attempts + 1,
        nextAttemptAt: null, retryAfter: null, requestId, resolvedAt: finished.toISOString(),
      }, t);
    } else {
      if (!outcome) ctx.logger.error({ err: failure, jobId: job.id }, 'bulk chunk failed; its subjects will be retried');
      const results = new Map((outcome?.results ?? []).map((r) => [r.ref, r]));
      const held = await heldImportedCounts(ctx.models.VaccinationRecord, subjects, t);
      for (const [i, s] of subjects.entries()) {
        const r = results.get(String(i));
        const status: SubjectStatus = r?.status ?? 'source_unavailable';
        const reason = r ? (r.reason ?? null) : 'requester_error';
        const attempts = s.attempts + 1;
        const retry = isRetryable(status, reason) && attempts < (s.attemptLimit ?? ctx.config.BULK_MAX_ATTEMPTS);
        const delay = retryDelaySeconds(attempts, r?.retryAfter, ctx.config.BULK_RETRY_MAX_SECONDS);
        await updateSubject(ctx.models, s.id, {
          state: retry ? 'retrying' : 'done', status, reason: reason?.slice(0, 100) ?? null, attempts,
          nextAttemptAt: retry ? new Date(finished.getTime() + delay * 1000).toISOString() : null,
          retryAfter: r?.retryAfter ?? null,
          recordCount: status === 'ok' ? (r?.recordCount ?? 0) : s.recordCount,
          createdCount: s.createdCount + (r?.imported ?? 0),
          heldCount: held.get(`${s.residentId}|${s.source}`) ?? 0,
          requestId: outcome?.requestId ?? requestId,
          resolvedAt: retry ? null : finished.toISOString(),
        }, t);
      }
    }
    await settleJobStatus(ctx.models, job.id, t, finished);
  });
  return subjects.length;
}

const carry = (s: JobSubjectRecord): Pick<SubjectUpdate, 'recordCount' | 'createdCount' | 'heldCount'> =>
  ({ recordCount: s.recordCount, createdCount: s.createdCount, heldCount: s.heldCount });

/** Subjects still waiting (never tried or retrying), over all jobs: the readiness report's backlog. */
export async function bulkBacklog(ctx: MunicipalityContext): Promise<{ jobsRunning: number; subjectsWaiting: number }> {
  return bulkBacklogCounts(ctx.models);
}
