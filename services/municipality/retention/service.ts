/**
 * Retention by the national rule (docs/DESIGN.md §4.13). Vaccination records are kept for a
 * number of years after the resident's death, per record kind (made here; imported copies);
 * after it, this job removes them, and once every kind's period has passed, the resident's
 * personal data in every table that holds it, each table through its own folder's model. One
 * resident is one transaction, ending with ONE access-log entry, `retention.remove`, the
 * tombstone: a failed append rolls the whole removal back (fail closed, §5.1). These are the
 * only hard deletes of resident data in the municipality; the access log itself is never edited.
 */
import { removeCredentialsOf } from '../resident-page/model.ts';
import type { Transaction } from 'sequelize';
import { appendAccess } from '../../../shared/access-log/chain.ts';
import { listEntries, type AccessEntryView } from '../../../shared/access-log/query.ts';
import { runEvery, type PeriodicTask } from '../../../shared/access-log/witness.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { AppError } from '../../../shared/platform/errors.ts';
import { todayInJapan } from '../../../shared/platform/dates.ts';
import { Actions } from '../access-log/actions.ts';
import { logStaffAccess } from '../access-log/service.ts';
import { deleteResponsesAbout } from '../idempotency/model.ts';
import { deceasedOnOrBefore, removeResidentRows } from '../residents/model.ts';
import { deleteRecordsOfKind, deleteTicketsOf, countRecordsOfKind, type RecordKind } from '../vaccinations/model.ts';
import { deleteConsentsOf } from '../consents/model.ts';
import { deleteNoticesOf } from '../notices/model.ts';
import { deleteAttemptsOf } from '../codes/model.ts';
import { deleteExceptionsOf } from '../exceptions/model.ts';
import { deleteMoveInsOf } from '../moves/model.ts';
import { deleteCorrectionsOf } from '../corrections/model.ts';
import { deleteQuerySubjectsOf } from '../asking/model.ts';
import { deleteBulkSubjectsOf } from '../asking/bulk/model.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityConfig } from '../config.ts';
import type { MunicipalityContext } from '../context.ts';
import { grantPermit, truncateWriteAheadLog, withdrawPermit, zeroFreedSpace } from './model.ts';
import type { ListRemovalsInput, RemovalView, RunReport } from './schemas.ts';

/** The actor of the tombstones: the rule itself, whether the schedule or an officer started the run. */
export const RETENTION_ACTOR = 'system:retention';

/** One kind of record and how long it is kept after the resident's death. */
export interface RetentionRule {
  kind: RecordKind;
  setting: 'RETENTION_VACCINATION_YEARS_AFTER_DEATH' | 'RETENTION_IMPORTED_YEARS_AFTER_DEATH';
  yearsAfterDeath: number;
}

/** The rules of this municipality's configuration, one per record kind. */
export const retentionRules = (config: MunicipalityConfig): RetentionRule[] => [
  { kind: 'local', setting: 'RETENTION_VACCINATION_YEARS_AFTER_DEATH', yearsAfterDeath: config.RETENTION_VACCINATION_YEARS_AFTER_DEATH },
  { kind: 'imported', setting: 'RETENTION_IMPORTED_YEARS_AFTER_DEATH', yearsAfterDeath: config.RETENTION_IMPORTED_YEARS_AFTER_DEATH },
];

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * The last day of a period of `years` years counted from the day after `deceasedOn` (Civil Code
 * art. 140: the first day is not counted; art. 143: a period in years ends on the day before the
 * one corresponding to its start, so on the anniversary of the death; when that month has no such
 * day — 29 February — on the month's last day). Calendar dates in Japan, compared as text.
 */
export function periodEnd(deceasedOn: string, years: number): string {
  const [y, m, d] = deceasedOn.split('-').map(Number) as [number, number, number];
  const year = y + years;
  const lastOfMonth = new Date(Date.UTC(year, m, 0)).getUTCDate();
  return `${pad(year, 4)}-${pad(m)}-${pad(Math.min(d, lastOfMonth))}`;
}

/** True once the period has passed: today (in Japan) is after its last day. */
export const periodPassed = (deceasedOn: string, years: number, today: string): boolean => today > periodEnd(deceasedOn, years);

/** The latest death date whose shortest period could have passed by `today` (candidates; each is then checked exactly). */
function latestCandidate(today: string, shortest: number): string {
  const [y, m, d] = today.split('-').map(Number) as [number, number, number];
  return `${pad(y - shortest, 4)}-${pad(m)}-${pad(d)}`;
}

type Candidate = { id: string; addresseeNumber: string; deceasedOn: string };

/**
 * Removes what the rules say is due for one resident, in `t`. Returns null when nothing is due
 * or left (a second run is a no-op and writes nothing).
 */
async function removeOne(ctx: MunicipalityContext, t: Transaction, resident: Candidate, rules: RetentionRule[], today: string, requestedBy: Actor | undefined): Promise<RemovalView | null> {
  const m = ctx.models;
  const due = rules.filter((r) => periodPassed(resident.deceasedOn, r.yearsAfterDeath, today));
  if (due.length === 0) return null;
  const whole = due.length === rules.length;
  const tables: Record<string, number> = {};
  const add = (counts: Record<string, number>) => {
    for (const [table, n] of Object.entries(counts)) tables[table] = (tables[table] ?? 0) + n;
  };
  if (!whole) {
    // Only some kinds are due and the resident stays: nothing to do when none of those records is left.
    let left = 0;
    for (const rule of due) left += await countRecordsOfKind(m.VaccinationRecord, resident.id, rule.kind, t);
    if (left === 0) return null;
  }
  await zeroFreedSpace(ctx.sequelize, t);
  if (whole) await grantPermit(m.RetentionPermit, resident.id, t);
  const records: Partial<Record<RecordKind, number>> = {};
  for (const rule of due) records[rule.kind] = await deleteRecordsOfKind(m.VaccinationRecord, resident.id, rule.kind, t);
  add({ vaccination_records: Object.values(records).reduce((a, b) => a + b, 0) });
  if (whole) {
    add(await deleteTicketsOf(m, resident.id, t));
    add({ consents: await deleteConsentsOf(m.Consent, resident.id, t) });
    add(await deleteNoticesOf(m, resident.id, t));
    add(await deleteCorrectionsOf(m, resident.id, t));
    add({ registration_attempts: await deleteAttemptsOf(m.RegistrationAttempt, resident.id, t) });
    add({ move_ins: await deleteMoveInsOf(m.MoveIn, resident.id, t) });
    add({ query_subjects: await deleteQuerySubjectsOf(m.QuerySubject, resident.id, t) });
    add({ bulk_job_subjects: await deleteBulkSubjectsOf(m, resident.id, t) });
    add({ exception_requests: await deleteExceptionsOf(m.ExceptionRequest, resident.id, t) });
    add({ idempotency_keys: await deleteResponsesAbout(m.IdempotencyKey, resident.addresseeNumber, t) });
    add({ resident_credentials: await removeCredentialsOf(m, resident.id, t) });
    add(await removeResidentRows(m, resident, today, t));
    await withdrawPermit(m.RetentionPermit, resident.id, t);
  }
  const applied = due.map((r) => ({ kind: r.kind, setting: r.setting, yearsAfterDeath: r.yearsAfterDeath, periodEndedOn: periodEnd(resident.deceasedOn, r.yearsAfterDeath) }));
  // The tombstone, last: if it cannot be written, everything above rolls back with it.
  const entry = await appendAccess(m.AccessLog, t, {
    actorType: 'system', actorId: RETENTION_ACTOR, actingMunicipality: ctx.config.MUNICIPALITY_CODE,
    action: Actions.RETENTION_REMOVE, subject: resident.addresseeNumber, outcome: 'allowed',
    details: { resident: whole ? 'removed' : 'kept', rules: applied, records, tables, ...(requestedBy ? { requestedBy: requestedBy.staffId } : {}) },
  });
  return toRemoval({ seq: entry.seq as number, at: entry.at as string, requestId: entry.requestId as string, subject: resident.addresseeNumber, details: JSON.parse(entry.details as string) });
}

function toRemoval(e: Pick<AccessEntryView, 'seq' | 'at' | 'requestId' | 'subject' | 'details'>): RemovalView {
  const d = e.details as { resident?: 'removed' | 'kept'; rules?: RemovalView['rules']; tables?: Record<string, number> };
  return { seq: e.seq, at: e.at, requestId: e.requestId, addresseeNumber: e.subject ?? '', resident: d.resident ?? 'removed', rules: d.rules ?? [], tables: d.tables ?? {} };
}

/**
 * One run of the job: every deceased resident whose shortest period has passed, each in its own
 * transaction. A resident whose removal fails (the log cannot be written, a database error) is
 * left whole and reported; the others go on.
 */
export async function runRetention(ctx: MunicipalityContext, options: { today?: string; requestedBy?: Actor } = {}): Promise<RunReport> {
  const today = options.today ?? todayInJapan();
  const rules = retentionRules(ctx.config);
  const shortest = Math.min(...rules.map((r) => r.yearsAfterDeath));
  const candidates = await deceasedOnOrBefore(ctx.models.Resident, latestCandidate(today, shortest));
  const report: RunReport = { today, checked: candidates.length, removals: [], failed: [] };
  for (const resident of candidates) {
    try {
      const removal = await inTransaction(ctx.sequelize, (t) => removeOne(ctx, t, resident, rules, today, options.requestedBy));
      if (removal) report.removals.push(removal);
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'retention-failed';
      ctx.logger.warn({ err: (err as Error).message, subject: resident.addresseeNumber, code }, 'retention: resident left whole');
      report.failed.push({ addresseeNumber: resident.addresseeNumber, code });
    }
  }
  if (report.removals.length > 0) {
    await truncateWriteAheadLog(ctx.sequelize).catch((err: Error) => ctx.logger.warn({ err: err.message }, 'retention: write-ahead log not truncated'));
    ctx.logger.info({ removed: report.removals.length, failed: report.failed.length }, 'retention: removals done');
  }
  return report;
}

/**
 * On demand, for a privacy officer: the run is logged first (fail closed: no entry, no run),
 * then each removal writes its own tombstone.
 */
export async function runRetentionFor(ctx: MunicipalityContext, actor: Actor): Promise<RunReport> {
  await inTransaction(ctx.sequelize, (t) => logStaffAccess(ctx, t, actor, { action: Actions.RETENTION_RUN, subject: null, outcome: 'allowed' }));
  return runRetention(ctx, { requestedBy: actor });
}

/** The removals, read back from their tombstones, newest first; the reading is logged. */
export async function listRemovals(ctx: MunicipalityContext, t: Transaction, input: ListRemovalsInput, actor: Actor): Promise<{ removals: RemovalView[]; nextCursor: number | null }> {
  const page = await listEntries(ctx.models.AccessLog, { action: Actions.RETENTION_REMOVE, limit: input.limit, cursor: input.cursor }, t);
  await logStaffAccess(ctx, t, actor, { action: Actions.RETENTION_READ, subject: null, outcome: 'allowed', details: { count: page.entries.length } });
  return { removals: page.entries.map(toRemoval), nextCursor: page.nextCursor };
}

/** The periodic run (RETENTION_INTERVAL_SECONDS; 0 = on demand only). */
export function startRetentionSchedule(ctx: MunicipalityContext): PeriodicTask {
  return runEvery(ctx.config.RETENTION_INTERVAL_SECONDS, async () => {
    await runRetention(ctx);
  }, ctx.logger, 'retention run');
}
