import {
  DataTypes, Model, Op, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction,
} from 'sequelize';
import { type NOTICE_CHANNELS } from '../config.ts';
import { insertRows } from '../../../shared/platform/db.ts';

export const NOTICE_KINDS = ['records-released', 'query-refused', 'records-imported', 'correction-sent', 'correction-received'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];
export type NoticeChannel = (typeof NOTICE_CHANNELS)[number];
export const DELIVERY_STATUSES = ['pending', 'delivered'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/**
 * A notice to a resident of one cross-municipality access to their data, made from one
 * access-log entry (its seq is unique here: one entry, one notice). Append-only.
 */
export class ResidentNoticeRow extends Model<InferAttributes<ResidentNoticeRow>, InferCreationAttributes<ResidentNoticeRow>> {
  declare id: string;
  declare accessSeq: number;
  declare residentId: string;
  declare kind: NoticeKind;
  declare otherMunicipality: string | null;
  declare purpose: string | null;
  declare legalBasis: string | null;
  declare outcome: string;
  declare requestId: string;
  declare recordCount: number;
  declare occurredAt: string;
  declare createdAt: CreationOptional<Date>;
}

/** Delivery of one notice (mail or the resident portal): the outbox the delivery worker drains. */
export class NoticeOutboxRow extends Model<InferAttributes<NoticeOutboxRow>, InferCreationAttributes<NoticeOutboxRow>> {
  declare id: string;
  declare noticeId: string;
  declare channel: NoticeChannel;
  declare status: CreationOptional<DeliveryStatus>;
  declare attempts: CreationOptional<number>;
  declare nextAttemptAt: string;
  declare deliveredAt: CreationOptional<string | null>;
  declare lastError: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** How far the access log has been turned into notices (one row, name `access_log`). */
export class NoticeCursorRow extends Model<InferAttributes<NoticeCursorRow>, InferCreationAttributes<NoticeCursorRow>> {
  declare name: string;
  declare lastSeq: number;
}

export const RESIDENT_NOTICE_TABLE = 'resident_notices';
const NOTICE_OUTBOX_TABLE = 'notice_outbox';

export function defineNoticeModels(sequelize: Sequelize) {
  class ResidentNotice extends ResidentNoticeRow {}
  ResidentNotice.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    accessSeq: { type: DataTypes.INTEGER, allowNull: false, unique: true },
    residentId: { type: DataTypes.STRING(36), allowNull: false },
    kind: { type: DataTypes.STRING(32), allowNull: false },
    otherMunicipality: { type: DataTypes.STRING(32), allowNull: true },
    purpose: { type: DataTypes.STRING(64), allowNull: true },
    legalBasis: { type: DataTypes.STRING(64), allowNull: true },
    outcome: { type: DataTypes.STRING(16), allowNull: false },
    requestId: { type: DataTypes.STRING(128), allowNull: false },
    recordCount: { type: DataTypes.INTEGER, allowNull: false },
    occurredAt: { type: DataTypes.STRING(30), allowNull: false },
    createdAt: DataTypes.DATE,
  }, { sequelize, tableName: RESIDENT_NOTICE_TABLE, updatedAt: false, indexes: [{ fields: ['residentId'] }] });

  class NoticeOutbox extends NoticeOutboxRow {}
  NoticeOutbox.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    noticeId: { type: DataTypes.STRING(36), allowNull: false, unique: true },
    channel: { type: DataTypes.STRING(16), allowNull: false },
    status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
    attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
    deliveredAt: { type: DataTypes.STRING(30), allowNull: true },
    lastError: { type: DataTypes.STRING(200), allowNull: true },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, { sequelize, tableName: NOTICE_OUTBOX_TABLE, indexes: [{ fields: ['status', 'nextAttemptAt'] }] });

  class NoticeCursor extends NoticeCursorRow {}
  NoticeCursor.init({
    name: { type: DataTypes.STRING(32), primaryKey: true },
    lastSeq: { type: DataTypes.INTEGER, allowNull: false },
  }, { sequelize, tableName: 'notice_cursor', timestamps: false });

  return { ResidentNotice, NoticeOutbox, NoticeCursor };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineNoticeModels> {}
}

export type NoticeModels = ReturnType<typeof defineNoticeModels>;

/* ---------- repository ---------- */

export interface ResidentNotice {
  id: string;
  accessSeq: number;
  residentId: string;
  kind: NoticeKind;
  otherMunicipality: string | null;
  purpose: string | null;
  legalBasis: string | null;
  outcome: string;
  requestId: string;
  recordCount: number;
  occurredAt: string;
}

export interface NoticeDeliveryState {
  noticeId: string;
  channel: NoticeChannel;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: string;
  deliveredAt: string | null;
  lastError: string | null;
}

const toNotice = (r: InferAttributes<ResidentNoticeRow>): ResidentNotice => ({
  id: r.id, accessSeq: Number(r.accessSeq), residentId: r.residentId, kind: r.kind, otherMunicipality: r.otherMunicipality ?? null,
  purpose: r.purpose ?? null, legalBasis: r.legalBasis ?? null, outcome: r.outcome, requestId: r.requestId, recordCount: Number(r.recordCount),
  occurredAt: r.occurredAt,
});

const toDelivery = (r: InferAttributes<NoticeOutboxRow> & { id: string }): NoticeDeliveryState & { id: string } => ({
  id: r.id, noticeId: r.noticeId, channel: r.channel, status: (r.status ?? 'pending') as DeliveryStatus, attempts: Number(r.attempts ?? 0),
  nextAttemptAt: r.nextAttemptAt, deliveredAt: r.deliveredAt ?? null, lastError: r.lastError ?? null,
});

export const CURSOR_NAME = 'access_log';

export async function readCursor(M: NoticeModels['NoticeCursor'], transaction: Transaction): Promise<number> {
  const row = await M.findByPk(CURSOR_NAME, { raw: true, transaction });
  return row ? Number(row.lastSeq) : 0;
}

export async function writeCursor(M: NoticeModels['NoticeCursor'], lastSeq: number, transaction: Transaction): Promise<void> {
  await M.upsert({ name: CURSOR_NAME, lastSeq }, { transaction });
}

export async function insertNotices(m: Pick<NoticeModels, 'ResidentNotice' | 'NoticeOutbox'>, notices: ResidentNotice[], channel: NoticeChannel, at: string, newId: () => string, transaction: Transaction): Promise<void> {
  if (notices.length === 0) return;
  // Complete rows in bound multi-row statements: a notice per access-log entry is on every query's path.
  const sequelize = m.ResidentNotice.sequelize!;
  const createdAt = new Date();
  await insertRows(sequelize, RESIDENT_NOTICE_TABLE, notices.map((n) => ({
    id: n.id, accessSeq: n.accessSeq, residentId: n.residentId, kind: n.kind, otherMunicipality: n.otherMunicipality, purpose: n.purpose,
    legalBasis: n.legalBasis, outcome: n.outcome, requestId: n.requestId, recordCount: n.recordCount, occurredAt: n.occurredAt, createdAt,
  })), transaction);
  await insertRows(sequelize, NOTICE_OUTBOX_TABLE, notices.map((n) => ({
    id: newId(), noticeId: n.id, channel, status: 'pending', attempts: 0, nextAttemptAt: at, deliveredAt: null, lastError: null, createdAt, updatedAt: createdAt,
  })), transaction);
}

export async function noticesOfResident(m: Pick<NoticeModels, 'ResidentNotice' | 'NoticeOutbox'>, residentId: string, transaction?: Transaction): Promise<(ResidentNotice & { delivery: NoticeDeliveryState | null })[]> {
  const notices = (await m.ResidentNotice.findAll({ where: { residentId }, order: [['accessSeq', 'ASC']], raw: true, transaction })).map(toNotice);
  const deliveries = notices.length
    ? await m.NoticeOutbox.findAll({ where: { noticeId: { [Op.in]: notices.map((n) => n.id) } }, raw: true, transaction })
    : [];
  const byNotice = new Map(deliveries.map((d) => [d.noticeId, toDelivery(d)]));
  return notices.map((n) => ({ ...n, delivery: byNotice.get(n.id) ?? null }));
}

export async function dueDeliveries(m: Pick<NoticeModels, 'ResidentNotice' | 'NoticeOutbox'>, now: Date, limit: number) {
  const rows = (await m.NoticeOutbox.findAll({
    where: { status: 'pending', nextAttemptAt: { [Op.lte]: now.toISOString() } }, order: [['nextAttemptAt', 'ASC'], ['createdAt', 'ASC']], limit, raw: true,
  })).map(toDelivery);
  const notices = rows.length ? await m.ResidentNotice.findAll({ where: { id: { [Op.in]: rows.map((r) => r.noticeId) } }, raw: true }) : [];
  const byId = new Map(notices.map((n) => [n.id, toNotice(n)]));
  return rows.flatMap((r) => (byId.has(r.noticeId) ? [{ delivery: r, notice: byId.get(r.noticeId)! }] : []));
}

export async function updateDelivery(M: NoticeModels['NoticeOutbox'], id: string, values: Partial<Pick<NoticeDeliveryState, 'status' | 'attempts' | 'nextAttemptAt' | 'deliveredAt' | 'lastError'>>): Promise<void> {
  await M.update(values, { where: { id, status: 'pending' } });
}

/** Marks the notices a delivery round handed over, in one statement (one UPDATE per notice cost more than the sending). */
export async function markDelivered(M: NoticeModels['NoticeOutbox'], ids: string[], deliveredAt: string): Promise<void> {
  if (ids.length === 0) return;
  await M.update(
    { status: 'delivered', deliveredAt, lastError: null, attempts: M.sequelize!.literal('"attempts" + 1') as unknown as number },
    { where: { id: ids, status: 'pending' } },
  );
}

export async function deliveryCounts(M: NoticeModels['NoticeOutbox']): Promise<Record<string, number>> {
  const grouped = await M.count({ group: ['status', 'channel'] }) as unknown as { status: string; channel: string; count: number }[];
  const counts: Record<string, number> = { pending: 0, delivered: 0 };
  for (const g of grouped) counts[g.status] = (counts[g.status] ?? 0) + Number(g.count);
  return counts;
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/**
 * Deletes a resident's notices and their deliveries. `resident_notices` is append-only at the
 * database: its trigger lets a DELETE through only for a resident holding a retention permit
 * (migrations/0006-retention.ts), which the retention job writes in this same transaction.
 */
export async function deleteNoticesOf(
  m: Pick<NoticeModels, 'ResidentNotice' | 'NoticeOutbox'>, residentId: string, t: Transaction,
): Promise<{ resident_notices: number; notice_outbox: number }> {
  const ids = (await m.ResidentNotice.findAll({ attributes: ['id'], where: { residentId }, raw: true, transaction: t })).map((r) => r.id);
  const outbox = ids.length === 0 ? 0 : await m.NoticeOutbox.destroy({ where: { noticeId: { [Op.in]: ids } }, transaction: t });
  const notices = await m.ResidentNotice.destroy({ where: { residentId }, transaction: t });
  return { resident_notices: notices, notice_outbox: outbox };
}
