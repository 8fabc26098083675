/**
 * Bulk query jobs: one row per job, one row per subject. The subject rows are the job's whole
 * state (what is left, what came back, when to retry), so a job resumes after a restart from
 * the database alone; the runner keeps nothing in memory that is not also here.
 */
import {
  DataTypes, Model, Op, fn, col, type CreationAttributes, type CreationOptional, type InferAttributes, type InferCreationAttributes,
  type Sequelize, type Transaction,
} from 'sequelize';
import type { SubjectState } from './schemas.ts';

export class BulkJobRow extends Model<InferAttributes<BulkJobRow>, InferCreationAttributes<BulkJobRow>> {
  declare id: string;
  declare purpose: string;
  /** JSON: how the subjects were chosen ({ kind: 'subjects' } or { kind: 'movedInSince', since, source }). */
  declare selection: string;
  declare createdBy: string;
  declare createdByRole: string;
  declare status: CreationOptional<'running' | 'completed'>;
  declare total: number;
  declare completedAt: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class BulkJobSubjectRow extends Model<InferAttributes<BulkJobSubjectRow>, InferCreationAttributes<BulkJobSubjectRow>> {
  declare id: CreationOptional<number>;
  declare jobId: string;
  /** Position in the job: chunks go in this order. */
  declare seq: number;
  declare residentId: string;
  declare addresseeNumber: string;
  declare source: string;
  declare state: CreationOptional<SubjectState>;
  /** The last status the query returned (SubjectStatus), null before the first attempt. */
  declare status: CreationOptional<string | null>;
  declare reason: CreationOptional<string | null>;
  declare attempts: CreationOptional<number>;
  /** Automatic attempts allowed in all; null = the configured limit. An on-demand retry raises it. */
  declare attemptLimit: CreationOptional<number | null>;
  declare nextAttemptAt: CreationOptional<string | null>;
  declare retryAfter: CreationOptional<number | null>;
  /** Records the source released at the last `ok`. */
  declare recordCount: CreationOptional<number>;
  /** Versions written by this job's attempts (0 on a repeat: imports are idempotent). */
  declare createdCount: CreationOptional<number>;
  /** Current imported records from this source the resident holds now (counted, not summed). */
  declare heldCount: CreationOptional<number>;
  declare requestId: CreationOptional<string | null>;
  declare resolvedAt: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineBulkJobModels(sequelize: Sequelize) {
  class BulkJob extends BulkJobRow {}
  BulkJob.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    purpose: { type: DataTypes.STRING(64), allowNull: false },
    selection: { type: DataTypes.TEXT, allowNull: false },
    createdBy: { type: DataTypes.STRING(64), allowNull: false },
    createdByRole: { type: DataTypes.STRING(32), allowNull: false },
    status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'running' },
    total: { type: DataTypes.INTEGER, allowNull: false },
    completedAt: { type: DataTypes.STRING(30), allowNull: true },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, { sequelize, tableName: 'bulk_jobs', indexes: [{ fields: ['status'] }] });

  class BulkJobSubject extends BulkJobSubjectRow {}
  BulkJobSubject.init({
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    jobId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'bulk_jobs', key: 'id' } },
    seq: { type: DataTypes.INTEGER, allowNull: false },
    residentId: { type: DataTypes.STRING(36), allowNull: false },
    addresseeNumber: { type: DataTypes.STRING(10), allowNull: false },
    source: { type: DataTypes.STRING(6), allowNull: false },
    state: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
    status: { type: DataTypes.STRING(32), allowNull: true },
    reason: { type: DataTypes.STRING(100), allowNull: true },
    attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    attemptLimit: { type: DataTypes.INTEGER, allowNull: true },
    nextAttemptAt: { type: DataTypes.STRING(30), allowNull: true },
    retryAfter: { type: DataTypes.INTEGER, allowNull: true },
    recordCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    createdCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    heldCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    requestId: { type: DataTypes.STRING(128), allowNull: true },
    resolvedAt: { type: DataTypes.STRING(30), allowNull: true },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, {
    sequelize, tableName: 'bulk_job_subjects',
    indexes: [
      { unique: true, fields: ['jobId', 'seq'] },
      { unique: true, fields: ['jobId', 'residentId', 'source'] },
      { fields: ['state', 'nextAttemptAt'] },
    ],
  });

  return { BulkJob, BulkJobSubject };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../../context.ts' {
  interface Models extends ReturnType<typeof defineBulkJobModels> {}
}

type BulkJobModels = ReturnType<typeof defineBulkJobModels>;

export interface JobRecord {
  id: string;
  purpose: string;
  selection: Record<string, unknown>;
  createdBy: string;
  createdByRole: string;
  status: 'running' | 'completed';
  total: number;
  completedAt: string | null;
  createdAt: string;
}

export interface JobSubjectRecord {
  id: number;
  jobId: string;
  seq: number;
  residentId: string;
  addresseeNumber: string;
  source: string;
  state: SubjectState;
  status: string | null;
  reason: string | null;
  attempts: number;
  attemptLimit: number | null;
  nextAttemptAt: string | null;
  retryAfter: number | null;
  recordCount: number;
  createdCount: number;
  heldCount: number;
  requestId: string | null;
  resolvedAt: string | null;
}

const iso = (value: unknown): string => new Date(value as string | Date).toISOString();

const toJob = (r: InferAttributes<BulkJobRow>): JobRecord => ({
  id: r.id, purpose: r.purpose, selection: JSON.parse(r.selection) as Record<string, unknown>, createdBy: r.createdBy,
  createdByRole: r.createdByRole, status: r.status, total: Number(r.total), completedAt: r.completedAt ?? null, createdAt: iso(r.createdAt),
});

const toSubject = (r: InferAttributes<BulkJobSubjectRow>): JobSubjectRecord => ({
  id: Number(r.id), jobId: r.jobId, seq: Number(r.seq), residentId: r.residentId, addresseeNumber: r.addresseeNumber, source: r.source,
  state: r.state, status: r.status ?? null, reason: r.reason ?? null, attempts: Number(r.attempts),
  attemptLimit: r.attemptLimit === null || r.attemptLimit === undefined ? null : Number(r.attemptLimit), nextAttemptAt: r.nextAttemptAt ?? null,
  retryAfter: r.retryAfter === null || r.retryAfter === undefined ? null : Number(r.retryAfter), recordCount: Number(r.recordCount),
  createdCount: Number(r.createdCount), heldCount: Number(r.heldCount), requestId: r.requestId ?? null, resolvedAt: r.resolvedAt ?? null,
});

export async function insertJob(
  models: BulkJobModels, job: CreationAttributes<BulkJobRow>, subjects: Omit<CreationAttributes<BulkJobSubjectRow>, 'jobId'>[], t: Transaction,
): Promise<JobRecord> {
  await models.BulkJob.create(job, { transaction: t });
  // Chunked inserts: SQLite caps the bound variables of one statement.
  for (let i = 0; i < subjects.length; i += 500) {
    await models.BulkJobSubject.bulkCreate(subjects.slice(i, i + 500).map((s) => ({ ...s, jobId: job.id })), { transaction: t });
  }
  return toJob((await models.BulkJob.findByPk(job.id, { raw: true, transaction: t }))!);
}

export async function findJob(models: BulkJobModels, id: string, t?: Transaction): Promise<JobRecord | null> {
  const row = await models.BulkJob.findByPk(id, { raw: true, transaction: t });
  return row ? toJob(row) : null;
}

export async function listJobs(models: BulkJobModels, limit: number): Promise<JobRecord[]> {
  const rows = await models.BulkJob.findAll({ order: [['createdAt', 'DESC'], ['id', 'ASC']], limit, raw: true });
  return rows.map(toJob);
}

export interface SubjectTally {
  state: SubjectState;
  status: string | null;
  count: number;
  held: number;
  created: number;
  nextAttemptAt: string | null;
}

/** Counts of a job's subjects per (state, status), with the records held and the earliest retry. */
export async function tallySubjects(models: BulkJobModels, jobId: string, t?: Transaction): Promise<SubjectTally[]> {
  const rows = await models.BulkJobSubject.findAll({
    attributes: ['state', 'status', [fn('COUNT', col('id')), 'count'], [fn('SUM', col('heldCount')), 'held'],
      [fn('SUM', col('createdCount')), 'created'], [fn('MIN', col('nextAttemptAt')), 'nextAttemptAt']],
    where: { jobId }, group: ['state', 'status'], raw: true, transaction: t,
  }) as unknown as { state: SubjectState; status: string | null; count: number; held: number | null; created: number | null; nextAttemptAt: string | null }[];
  return rows.map((r) => ({
    state: r.state, status: r.status ?? null, count: Number(r.count), held: Number(r.held ?? 0), created: Number(r.created ?? 0), nextAttemptAt: r.nextAttemptAt ?? null,
  }));
}

export async function listJobSubjects(
  models: BulkJobModels, jobId: string, options: { state?: SubjectState; offset: number; limit: number }, t?: Transaction,
): Promise<{ rows: JobSubjectRecord[]; total: number }> {
  const where = { jobId, ...(options.state ? { state: options.state } : {}) };
  const { rows, count } = await models.BulkJobSubject.findAndCountAll({
    where, order: [['seq', 'ASC']], offset: options.offset, limit: options.limit, raw: true, transaction: t,
  });
  return { rows: rows.map(toSubject), total: count };
}

/**
 * The next chunk of due subjects: from the oldest running job that has any, in job order. A
 * subject is due when it was never tried (`pending`) or its retry time has come (`retrying`).
 */
export async function nextDueChunk(models: BulkJobModels, now: Date, size: number): Promise<{ job: JobRecord; subjects: JobSubjectRecord[] } | null> {
  const due = {
    [Op.or]: [{ state: 'pending' }, { state: 'retrying', nextAttemptAt: { [Op.lte]: now.toISOString() } }],
  };
  const first = await models.BulkJobSubject.findOne({
    where: due, order: [['createdAt', 'ASC'], ['jobId', 'ASC'], ['seq', 'ASC']], raw: true,
  });
  if (!first) return null;
  const job = await findJob(models, first.jobId);
  if (!job) return null;
  const rows = await models.BulkJobSubject.findAll({ where: { jobId: job.id, ...due }, order: [['seq', 'ASC']], limit: size, raw: true });
  return { job, subjects: rows.map(toSubject) };
}

export type SubjectUpdate = Pick<JobSubjectRecord,
  'state' | 'status' | 'reason' | 'attempts' | 'nextAttemptAt' | 'retryAfter' | 'recordCount' | 'createdCount' | 'heldCount' | 'requestId' | 'resolvedAt'>;

export async function updateSubject(models: BulkJobModels, id: number, update: SubjectUpdate, t: Transaction): Promise<void> {
  await models.BulkJobSubject.update(update, { where: { id }, transaction: t });
}

/** Marks the job completed once no subject is left to try; reopens it when some are. */
export async function settleJobStatus(models: BulkJobModels, jobId: string, t: Transaction, now: Date): Promise<'running' | 'completed'> {
  const open = await models.BulkJobSubject.count({ where: { jobId, state: { [Op.in]: ['pending', 'retrying'] } }, transaction: t });
  const status = open > 0 ? 'running' : 'completed';
  await models.BulkJob.update({ status, completedAt: status === 'completed' ? now.toISOString() : null }, { where: { id: jobId }, transaction: t });
  return status;
}

/** Makes the given subjects due now, each with `extra` more automatic attempts than it has made. */
export async function reopenSubjects(models: BulkJobModels, subjects: Pick<JobSubjectRecord, 'id' | 'attempts'>[], extra: number, now: Date, t: Transaction): Promise<number> {
  for (const s of subjects) {
    await models.BulkJobSubject.update(
      { state: 'retrying', attemptLimit: s.attempts + extra, nextAttemptAt: now.toISOString(), resolvedAt: null },
      { where: { id: s.id }, transaction: t },
    );
  }
  return subjects.length;
}

export async function subjectsOfJob(models: BulkJobModels, jobId: string, t?: Transaction): Promise<JobSubjectRecord[]> {
  const rows = await models.BulkJobSubject.findAll({ where: { jobId }, order: [['seq', 'ASC']], raw: true, transaction: t });
  return rows.map(toSubject);
}

/** Jobs running and subjects still waiting (never tried or retrying), over all jobs. */
export async function bulkBacklogCounts(models: BulkJobModels): Promise<{ jobsRunning: number; subjectsWaiting: number }> {
  const [jobsRunning, subjectsWaiting] = await Promise.all([
    models.BulkJob.count({ where: { status: 'running' } }),
    models.BulkJobSubject.count({ where: { state: { [Op.in]: ['pending', 'retrying'] } } }),
  ]);
  return { jobsRunning, subjectsWaiting };
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Deletes a resident's subject rows from every bulk job (the job keeps its other subjects); returns the rows deleted. */
export const deleteBulkSubjectsOf = (models: Pick<BulkJobModels, 'BulkJobSubject'>, residentId: string, t: Transaction): Promise<number> =>
  models.BulkJobSubject.destroy({ where: { residentId }, transaction: t });
