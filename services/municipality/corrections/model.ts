import { duePending, listQueue, updatePending } from '../../../shared/platform/outbox.ts';
import {
  DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction,
} from 'sequelize';
import { isoTime } from '../residents/model.ts';

export const OUTBOX_STATUSES = ['pending', 'sent', 'refused', 'expired'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];
export type CorrectionChange = 'corrected' | 'voided';
export const NOTICE_OUTCOMES = ['applied', 'unchanged', 'stale'] as const;
export type NoticeOutcome = (typeof NOTICE_OUTCOMES)[number];

/**
 * At the source (A): one correction notice to send to one municipality that imported the record.
 * Written in the transaction of the correction itself, so a correction can never be committed
 * without its notices; sent later by the worker (the row id is the notice's jti).
 */
export class CorrectionOutboxRow extends Model<InferAttributes<CorrectionOutboxRow>, InferCreationAttributes<CorrectionOutboxRow>> {
  declare id: string;
  declare residentId: string;
  declare recordId: string;
  declare version: number;
  declare recipient: string;
  declare purpose: string;
  declare change: CorrectionChange;
  /** The request under which the recipient received the record (trace back to the release). */
  declare releaseRequestId: string;
  declare status: CreationOptional<OutboxStatus>;
  declare attempts: CreationOptional<number>;
  declare nextAttemptAt: string;
  declare lastError: CreationOptional<string | null>;
  declare sentAt: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/**
 * At the recipient (B): one correction notice received and applied to an imported copy, with the
 * fields before and after, so a clerk sees what changed. One row per source record version and
 * purpose: a notice delivered twice is applied once. Append-only.
 */
export class CorrectionNoticeRow extends Model<InferAttributes<CorrectionNoticeRow>, InferCreationAttributes<CorrectionNoticeRow>> {
  declare id: string;
  declare residentId: string;
  declare localRecordId: string;
  declare source: string;
  declare sourceRecordId: string;
  declare sourceVersion: number;
  declare change: CorrectionChange;
  declare purpose: string;
  declare requestId: string;
  declare noticeJti: string;
  declare outcome: NoticeOutcome;
  /** JSON of the copy's fields before the notice (null when the copy was already newer). */
  declare before: string | null;
  declare after: string;
  declare receivedAt: string;
  declare createdAt: CreationOptional<Date>;
}

export const CORRECTION_NOTICE_TABLE = 'correction_notices';

export function defineCorrectionModels(sequelize: Sequelize) {
  class CorrectionOutbox extends CorrectionOutboxRow {}
  CorrectionOutbox.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    residentId: { type: DataTypes.STRING(36), allowNull: false },
    recordId: { type: DataTypes.STRING(36), allowNull: false },
    version: { type: DataTypes.INTEGER, allowNull: false },
    recipient: { type: DataTypes.STRING(6), allowNull: false },
    purpose: { type: DataTypes.STRING(64), allowNull: false },
    change: { type: DataTypes.STRING(16), allowNull: false },
    releaseRequestId: { type: DataTypes.STRING(128), allowNull: false },
    status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
    attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
    lastError: { type: DataTypes.STRING(200), allowNull: true },
    sentAt: { type: DataTypes.STRING(30), allowNull: true },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, {
    sequelize, tableName: 'correction_outbox',
    indexes: [{ unique: true, fields: ['recordId', 'version', 'recipient', 'purpose'] }, { fields: ['status', 'nextAttemptAt'] }],
  });

  class CorrectionNotice extends CorrectionNoticeRow {}
  CorrectionNotice.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    residentId: { type: DataTypes.STRING(36), allowNull: false },
    localRecordId: { type: DataTypes.STRING(36), allowNull: false },
    source: { type: DataTypes.STRING(6), allowNull: false },
    sourceRecordId: { type: DataTypes.STRING(64), allowNull: false },
    sourceVersion: { type: DataTypes.INTEGER, allowNull: false },
    change: { type: DataTypes.STRING(16), allowNull: false },
    purpose: { type: DataTypes.STRING(64), allowNull: false },
    requestId: { type: DataTypes.STRING(128), allowNull: false },
    noticeJti: { type: DataTypes.STRING(128), allowNull: false },
    outcome: { type: DataTypes.STRING(16), allowNull: false },
    before: { type: DataTypes.TEXT, allowNull: true },
    after: { type: DataTypes.TEXT, allowNull: false },
    receivedAt: { type: DataTypes.STRING(30), allowNull: false },
    createdAt: DataTypes.DATE,
  }, {
    sequelize, tableName: CORRECTION_NOTICE_TABLE, updatedAt: false,
    indexes: [
      // Delivered once: a second delivery of the same source version finds this row and changes nothing.
      { unique: true, fields: ['residentId', 'source', 'sourceRecordId', 'sourceVersion', 'purpose'], name: 'correction_notices_once' },
      { fields: ['residentId'] },
    ],
  });

  return { CorrectionOutbox, CorrectionNotice };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineCorrectionModels> {}
}

export type CorrectionModels = ReturnType<typeof defineCorrectionModels>;

/* ---------- repository: outbox ---------- */

export interface OutboxItem {
  id: string;
  residentId: string;
  recordId: string;
  version: number;
  recipient: string;
  purpose: string;
  change: CorrectionChange;
  releaseRequestId: string;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  sentAt: string | null;
  createdAt: string;
}

const toOutbox = (r: InferAttributes<CorrectionOutboxRow>): OutboxItem => ({
  id: r.id, residentId: r.residentId, recordId: r.recordId, version: Number(r.version), recipient: r.recipient, purpose: r.purpose,
  change: r.change, releaseRequestId: r.releaseRequestId, status: (r.status ?? 'pending') as OutboxStatus, attempts: Number(r.attempts ?? 0),
  nextAttemptAt: r.nextAttemptAt, lastError: r.lastError ?? null, sentAt: r.sentAt ?? null, createdAt: isoTime(r.createdAt),
});

export type NewOutboxItem = Pick<OutboxItem, 'id' | 'residentId' | 'recordId' | 'version' | 'recipient' | 'purpose' | 'change' | 'releaseRequestId' | 'nextAttemptAt'>;

export async function insertOutboxItems(M: CorrectionModels['CorrectionOutbox'], items: NewOutboxItem[], transaction: Transaction): Promise<void> {
  if (items.length) await M.bulkCreate(items, { transaction });
}

export async function dueOutboxItems(M: CorrectionModels['CorrectionOutbox'], now: Date, limit: number): Promise<OutboxItem[]> {
  return (await duePending<InferAttributes<CorrectionOutboxRow>>(M, now, limit)).map(toOutbox);
}

export async function updateOutboxItem(
  M: CorrectionModels['CorrectionOutbox'], id: string,
  values: Partial<Pick<OutboxItem, 'status' | 'attempts' | 'nextAttemptAt' | 'lastError' | 'sentAt'>>, transaction?: Transaction,
): Promise<void> {
  await updatePending(M, id, values, transaction);
}

export async function listOutbox(M: CorrectionModels['CorrectionOutbox'], status: OutboxStatus | undefined, limit: number): Promise<{ items: OutboxItem[]; counts: Record<string, number> }> {
  const { rows, counts } = await listQueue<InferAttributes<CorrectionOutboxRow>>(M, OUTBOX_STATUSES, status, limit);
  return { items: rows.map(toOutbox), counts };
}

/* ---------- repository: notices received ---------- */

/** The fields of an imported copy a clerk compares before and after a correction. */
export interface CopyFields {
  recordId: string;
  version: number;
  occurrenceDate: string;
  vaccineCode: string;
  /** Null when the purpose of the release did not disclose it (minimal disclosure). */
  lotNumber: string | null;
  doseNumber: number;
  place: string | null;
  status: string;
  sourceVersion: number | null;
}

export interface ReceivedNotice {
  id: string;
  residentId: string;
  localRecordId: string;
  source: string;
  sourceRecordId: string;
  sourceVersion: number;
  change: CorrectionChange;
  purpose: string;
  requestId: string;
  noticeJti: string;
  outcome: NoticeOutcome;
  before: CopyFields | null;
  after: CopyFields;
  receivedAt: string;
}

const toNotice = (r: InferAttributes<CorrectionNoticeRow>): ReceivedNotice => ({
  id: r.id, residentId: r.residentId, localRecordId: r.localRecordId, source: r.source, sourceRecordId: r.sourceRecordId,
  sourceVersion: Number(r.sourceVersion), change: r.change, purpose: r.purpose, requestId: r.requestId, noticeJti: r.noticeJti,
  outcome: r.outcome, before: r.before ? JSON.parse(r.before) as CopyFields : null, after: JSON.parse(r.after) as CopyFields, receivedAt: r.receivedAt,
});

export async function findReceivedNotice(
  M: CorrectionModels['CorrectionNotice'], where: { residentId: string; source: string; sourceRecordId: string; sourceVersion: number; purpose: string }, transaction: Transaction,
): Promise<ReceivedNotice | null> {
  const row = await M.findOne({ where, raw: true, transaction });
  return row ? toNotice(row) : null;
}

export async function insertReceivedNotice(M: CorrectionModels['CorrectionNotice'], n: ReceivedNotice, transaction: Transaction): Promise<void> {
  await M.create({ ...n, before: n.before ? JSON.stringify(n.before) : null, after: JSON.stringify(n.after) }, { transaction });
}

export async function noticesOf(M: CorrectionModels['CorrectionNotice'], residentId: string, transaction?: Transaction): Promise<ReceivedNotice[]> {
  const rows = await M.findAll({ where: { residentId }, order: [['receivedAt', 'ASC'], ['sourceVersion', 'ASC']], raw: true, transaction });
  return rows.map(toNotice);
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/**
 * Deletes the correction notices received about a resident's copies and those waiting to be sent
 * about their records. `correction_notices` is append-only at the database; its trigger lets a
 * DELETE through only for a resident holding a retention permit (migrations/0006-retention.ts).
 */
export async function deleteCorrectionsOf(m: Pick<CorrectionModels, 'CorrectionOutbox' | 'CorrectionNotice'>, residentId: string, t: Transaction): Promise<{ correction_outbox: number; correction_notices: number }> {
  const outbox = await m.CorrectionOutbox.destroy({ where: { residentId }, transaction: t });
  const notices = await m.CorrectionNotice.destroy({ where: { residentId }, transaction: t });
  return { correction_outbox: outbox, correction_notices: notices };
}
