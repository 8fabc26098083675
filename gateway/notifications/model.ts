import { duePending, updatePending } from '../../shared/platform/outbox.ts';
import {
  DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction,
} from 'sequelize';

export const RELAY_STATUSES = ['pending', 'delivered', 'refused', 'expired'] as const;
export type RelayStatus = (typeof RELAY_STATUSES)[number];

/**
 * A correction notice waiting for (or past) delivery to its recipient. The notice is the source's
 * signed message; the record inside is encrypted for the recipient, so the gateway stores a blob
 * it cannot read, and clears even that once the notice reached a final state. One row per
 * (source, recipient, record, version, purpose): a notice submitted twice is relayed once.
 */
export class CorrectionRelayRow extends Model<InferAttributes<CorrectionRelayRow>, InferCreationAttributes<CorrectionRelayRow>> {
  declare id: string;
  declare issuer: string;
  declare recipient: string;
  declare noticeJti: string;
  declare requestId: string;
  /** The source's code of the resident (what the gateway's log names as subject). */
  declare sourceCode: string;
  declare sourceRecordId: string;
  declare sourceVersion: number;
  declare change: string;
  declare purpose: string;
  declare notice: string | null;
  /** The notice's exp (seconds since the epoch): undelivered past it, the notice expires. */
  declare expiresAt: number;
  declare status: CreationOptional<RelayStatus>;
  declare attempts: CreationOptional<number>;
  declare nextAttemptAt: string;
  declare lastError: CreationOptional<string | null>;
  declare deliveredAt: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineCorrectionRelayModel(sequelize: Sequelize) {
  class CorrectionRelay extends CorrectionRelayRow {}
  CorrectionRelay.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    issuer: { type: DataTypes.STRING(6), allowNull: false },
    recipient: { type: DataTypes.STRING(6), allowNull: false },
    noticeJti: { type: DataTypes.STRING(128), allowNull: false },
    requestId: { type: DataTypes.STRING(128), allowNull: false },
    sourceCode: { type: DataTypes.STRING(26), allowNull: false },
    sourceRecordId: { type: DataTypes.STRING(64), allowNull: false },
    sourceVersion: { type: DataTypes.INTEGER, allowNull: false },
    change: { type: DataTypes.STRING(16), allowNull: false },
    purpose: { type: DataTypes.STRING(64), allowNull: false },
    notice: { type: DataTypes.TEXT, allowNull: true },
    expiresAt: { type: DataTypes.INTEGER, allowNull: false },
    status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
    attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
    lastError: { type: DataTypes.STRING(200), allowNull: true },
    deliveredAt: { type: DataTypes.STRING(30), allowNull: true },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, {
    sequelize, tableName: 'correction_relay',
    indexes: [{ unique: true, fields: ['issuer', 'recipient', 'sourceRecordId', 'sourceVersion', 'purpose'], name: 'correction_relay_once' }, { fields: ['status', 'nextAttemptAt'] }],
  });
  return CorrectionRelay;
}

export type CorrectionRelayModel = ReturnType<typeof defineCorrectionRelayModel>;

/** The owning folder adds its tables to the gateway's models (see context.ts). */
declare module '../context.ts' {
  interface GatewayModels {
    CorrectionRelay: CorrectionRelayModel;
  }
}

export interface RelayItem {
  id: string;
  issuer: string;
  recipient: string;
  noticeJti: string;
  requestId: string;
  sourceCode: string;
  sourceRecordId: string;
  sourceVersion: number;
  change: string;
  purpose: string;
  notice: string | null;
  expiresAt: number;
  status: RelayStatus;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  deliveredAt: string | null;
}

const toItem = (r: InferAttributes<CorrectionRelayRow>): RelayItem => ({
  id: r.id, issuer: r.issuer, recipient: r.recipient, noticeJti: r.noticeJti, requestId: r.requestId, sourceCode: r.sourceCode,
  sourceRecordId: r.sourceRecordId, sourceVersion: Number(r.sourceVersion), change: r.change, purpose: r.purpose, notice: r.notice ?? null,
  expiresAt: Number(r.expiresAt), status: (r.status ?? 'pending') as RelayStatus, attempts: Number(r.attempts ?? 0), nextAttemptAt: r.nextAttemptAt,
  lastError: r.lastError ?? null, deliveredAt: r.deliveredAt ?? null,
});

export type NewRelayItem = Omit<RelayItem, 'status' | 'attempts' | 'lastError' | 'deliveredAt'>;

export async function findRelayItem(
  M: CorrectionRelayModel, where: Pick<RelayItem, 'issuer' | 'recipient' | 'sourceRecordId' | 'sourceVersion' | 'purpose'>, transaction?: Transaction,
): Promise<RelayItem | null> {
  const row = await M.findOne({ where, raw: true, transaction });
  return row ? toItem(row) : null;
}

export async function insertRelayItem(M: CorrectionRelayModel, item: NewRelayItem, transaction: Transaction): Promise<void> {
  await M.create(item, { transaction });
}

export async function dueRelayItems(M: CorrectionRelayModel, now: Date, limit: number): Promise<RelayItem[]> {
  return (await duePending<InferAttributes<CorrectionRelayRow>>(M, now, limit)).map(toItem);
}

/** Changes a pending item only: a state once final stays final. */
export async function updateRelayItem(
  M: CorrectionRelayModel, id: string, values: Partial<Pick<RelayItem, 'status' | 'attempts' | 'nextAttemptAt' | 'lastError' | 'deliveredAt' | 'notice'>>, transaction?: Transaction,
): Promise<void> {
  await updatePending(M, id, values, transaction);
}
