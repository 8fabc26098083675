import { duePending, updatePending } from '../../shared/platform/outbox.ts';
import {
  DataTypes, Model, Op, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction,
} from 'sequelize';

export const REVOKED_CONSENTS_TABLE = 'revoked_consents';
export const REVOCATION_RELAY_STATUSES = ['pending', 'delivered', 'refused', 'expired'] as const;
export type RevocationRelayStatus = (typeof REVOCATION_RELAY_STATUSES)[number];

/**
 * A consent its requester revoked, as the gateway holds it from the requester's signed message
 * (docs/DESIGN.md §4.4). One row per (requester, consent id); append-only at the database: a
 * revocation is never undone, so a query carrying these terms is refused from now on.
 */
export class RevokedConsentRow extends Model<InferAttributes<RevokedConsentRow>, InferCreationAttributes<RevokedConsentRow>> {
  declare id: CreationOptional<number>;
  declare requester: string;
  declare consentId: string;
  /** JSON array of the sources the revocation named (each gets it relayed). */
  declare sources: string;
  declare revokedAt: string;
  declare messageJti: string;
  /** SHA-256 of the signed message: the requester's own copy settles a dispute. */
  declare messageHash: string;
  declare receivedAt: string;
  declare createdAt: CreationOptional<Date>;
}

/** The signed revocation on its way to one source, retried with backoff until it expires (as the correction relay). */
export class RevocationRelayRow extends Model<InferAttributes<RevocationRelayRow>, InferCreationAttributes<RevocationRelayRow>> {
  declare id: string;
  declare requester: string;
  declare consentId: string;
  declare recipient: string;
  declare messageJti: string;
  /** The requester's compact JWS, relayed unchanged; cleared once delivery is final. */
  declare message: string | null;
  /** The message's exp (seconds since the epoch). */
  declare expiresAt: number;
  declare status: CreationOptional<RevocationRelayStatus>;
  declare attempts: CreationOptional<number>;
  declare nextAttemptAt: string;
  declare lastError: CreationOptional<string | null>;
  declare deliveredAt: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineConsentRevocationModels(sequelize: Sequelize) {
  class RevokedConsent extends RevokedConsentRow {}
  RevokedConsent.init({
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    requester: { type: DataTypes.STRING(6), allowNull: false },
    consentId: { type: DataTypes.STRING(64), allowNull: false },
    sources: { type: DataTypes.TEXT, allowNull: false },
    revokedAt: { type: DataTypes.STRING(30), allowNull: false },
    messageJti: { type: DataTypes.STRING(128), allowNull: false },
    messageHash: { type: DataTypes.STRING(64), allowNull: false },
    receivedAt: { type: DataTypes.STRING(30), allowNull: false },
    createdAt: DataTypes.DATE,
  }, {
    sequelize, tableName: REVOKED_CONSENTS_TABLE, updatedAt: false,
    indexes: [{ unique: true, fields: ['requester', 'consentId'], name: 'revoked_consents_once' }],
  });

  class RevocationRelay extends RevocationRelayRow {}
  RevocationRelay.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    requester: { type: DataTypes.STRING(6), allowNull: false },
    consentId: { type: DataTypes.STRING(64), allowNull: false },
    recipient: { type: DataTypes.STRING(6), allowNull: false },
    messageJti: { type: DataTypes.STRING(128), allowNull: false },
    message: { type: DataTypes.TEXT, allowNull: true },
    expiresAt: { type: DataTypes.INTEGER, allowNull: false },
    status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
    attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
    lastError: { type: DataTypes.STRING(200), allowNull: true },
    deliveredAt: { type: DataTypes.STRING(30), allowNull: true },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, {
    sequelize, tableName: 'revocation_relay',
    indexes: [
      { unique: true, fields: ['requester', 'consentId', 'recipient'], name: 'revocation_relay_once' },
      { fields: ['status', 'nextAttemptAt'], name: 'revocation_relay_status_next_attempt_at' },
    ],
  });
  return { RevokedConsent, RevocationRelay };
}

export type ConsentRevocationModels = ReturnType<typeof defineConsentRevocationModels>;

/** The owning folder adds its tables to the gateway's models (see context.ts). */
declare module '../context.ts' {
  interface GatewayModels extends ConsentRevocationModels {}
}

export interface RevokedConsent {
  requester: string;
  consentId: string;
  sources: string[];
  revokedAt: string;
  messageJti: string;
  receivedAt: string;
}

export async function findRevokedConsent(M: ConsentRevocationModels['RevokedConsent'], requester: string, consentId: string, transaction?: Transaction): Promise<RevokedConsent | null> {
  const row = await M.findOne({ where: { requester, consentId }, raw: true, transaction });
  return row ? {
    requester: row.requester, consentId: row.consentId, sources: JSON.parse(row.sources) as string[], revokedAt: row.revokedAt,
    messageJti: row.messageJti, receivedAt: row.receivedAt,
  } : null;
}

/** Which of `consentIds` the requester revoked (one indexed read per query). */
export async function revokedAmong(M: ConsentRevocationModels['RevokedConsent'], requester: string, consentIds: string[], transaction?: Transaction): Promise<Set<string>> {
  if (consentIds.length === 0) return new Set();
  const rows = await M.findAll({ where: { requester, consentId: { [Op.in]: [...new Set(consentIds)] } }, attributes: ['consentId'], raw: true, transaction });
  return new Set(rows.map((r) => r.consentId));
}

export async function insertRevokedConsent(
  M: ConsentRevocationModels['RevokedConsent'], row: Omit<InferCreationAttributes<RevokedConsentRow>, 'id' | 'createdAt' | 'sources'> & { sources: string[] }, transaction: Transaction,
): Promise<void> {
  await M.create({ ...row, sources: JSON.stringify(row.sources) }, { transaction });
}

export interface RevocationRelayItem {
  id: string;
  requester: string;
  consentId: string;
  recipient: string;
  messageJti: string;
  message: string | null;
  expiresAt: number;
  status: RevocationRelayStatus;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  deliveredAt: string | null;
}

const toItem = (r: InferAttributes<RevocationRelayRow>): RevocationRelayItem => ({
  id: r.id, requester: r.requester, consentId: r.consentId, recipient: r.recipient, messageJti: r.messageJti, message: r.message ?? null,
  expiresAt: Number(r.expiresAt), status: (r.status ?? 'pending') as RevocationRelayStatus, attempts: Number(r.attempts ?? 0),
  nextAttemptAt: r.nextAttemptAt, lastError: r.lastError ?? null, deliveredAt: r.deliveredAt ?? null,
});

export type NewRevocationRelayItem = Pick<RevocationRelayItem, 'id' | 'requester' | 'consentId' | 'recipient' | 'messageJti' | 'message' | 'expiresAt' | 'nextAttemptAt'>;

export async function insertRevocationRelayItems(M: ConsentRevocationModels['RevocationRelay'], items: NewRevocationRelayItem[], transaction: Transaction): Promise<void> {
  if (items.length > 0) await M.bulkCreate(items, { transaction });
}

export async function dueRevocationRelayItems(M: ConsentRevocationModels['RevocationRelay'], now: Date, limit: number): Promise<RevocationRelayItem[]> {
  return (await duePending<InferAttributes<RevocationRelayRow>>(M, now, limit)).map(toItem);
}

/** The relay items of one revocation (its delivery state per source). */
export async function relayItemsOf(M: ConsentRevocationModels['RevocationRelay'], requester: string, consentId: string): Promise<RevocationRelayItem[]> {
  return (await M.findAll({ where: { requester, consentId }, order: [['recipient', 'ASC']], raw: true })).map(toItem);
}

/** Changes a pending item only: a state once final stays final. */
export async function updateRevocationRelayItem(
  M: ConsentRevocationModels['RevocationRelay'], id: string,
  values: Partial<Pick<RevocationRelayItem, 'status' | 'attempts' | 'nextAttemptAt' | 'lastError' | 'deliveredAt' | 'message'>>, transaction?: Transaction,
): Promise<void> {
  await updatePending(M, id, values, transaction);
}
