import { duePending, listQueue, updatePending } from '../../../shared/platform/outbox.ts';
import { DataTypes, Model, Op, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

export class ConsentRow extends Model<InferAttributes<ConsentRow>, InferCreationAttributes<ConsentRow>> {
  declare id: string;
  declare residentId: string;
  declare scope: string;
  declare purpose: string;
  /** JSON array of municipality codes the resident allowed us to ask. */
  declare sources: string;
  declare givenAt: string;
  declare expiresAt: string;
  declare method: string;
  declare recordedBy: string;
  /** For method `resident-signed`: the resident's compact JWS over the consent. */
  declare residentSignature: string | null;
  /** For method `resident-signed`: the resident's personal certificate (PEM) the signature verifies with. */
  declare residentCertificate: CreationOptional<string | null>;
  declare revokedAt: CreationOptional<string | null>;
  declare revokedBy: CreationOptional<string | null>;
  declare revocationReason: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineConsentModels(sequelize: Sequelize) {
  class Consent extends ConsentRow {}
  Consent.init(
    {
      id: { type: DataTypes.STRING(36), primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'residents', key: 'id' } },
      scope: { type: DataTypes.STRING(32), allowNull: false },
      purpose: { type: DataTypes.STRING(64), allowNull: false },
      sources: { type: DataTypes.TEXT, allowNull: false },
      givenAt: { type: DataTypes.STRING(30), allowNull: false },
      expiresAt: { type: DataTypes.STRING(30), allowNull: false },
      method: { type: DataTypes.STRING(32), allowNull: false },
      recordedBy: { type: DataTypes.STRING(64), allowNull: false },
      residentSignature: { type: DataTypes.TEXT, allowNull: true },
      residentCertificate: { type: DataTypes.TEXT, allowNull: true },
      revokedAt: { type: DataTypes.STRING(30), allowNull: true },
      revokedBy: { type: DataTypes.STRING(64), allowNull: true },
      revocationReason: { type: DataTypes.STRING(500), allowNull: true },
      createdAt: DataTypes.DATE,
      updatedAt: DataTypes.DATE,
    },
    { sequelize, tableName: 'consents', indexes: [{ fields: ['residentId'] }] },
  );
  return { Consent };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineConsentModels> {}
}

export type ConsentModel = ReturnType<typeof defineConsentModels>['Consent'];

/** A consent as the rest of the service sees it. */
export interface ConsentView {
  id: string;
  residentId: string;
  scope: string;
  purpose: string;
  sources: string[];
  givenAt: string;
  expiresAt: string;
  method: string;
  recordedBy: string;
  residentSignature: string | null;
  residentCertificate: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
  revocationReason: string | null;
}

const toView = (row: InferAttributes<ConsentRow>): ConsentView => ({
  id: row.id,
  residentId: row.residentId,
  scope: row.scope,
  purpose: row.purpose,
  sources: JSON.parse(row.sources) as string[],
  givenAt: row.givenAt,
  expiresAt: row.expiresAt,
  method: row.method,
  recordedBy: row.recordedBy,
  residentSignature: row.residentSignature ?? null,
  residentCertificate: row.residentCertificate ?? null,
  revokedAt: row.revokedAt ?? null,
  revokedBy: row.revokedBy ?? null,
  revocationReason: row.revocationReason ?? null,
});

export async function insertConsent(Consent: ConsentModel, consent: Omit<ConsentView, 'revokedAt' | 'revokedBy' | 'revocationReason'>, transaction: Transaction): Promise<ConsentView> {
  const row = await Consent.create({ ...consent, sources: JSON.stringify(consent.sources) }, { transaction });
  return toView(row.get({ plain: true }));
}

export async function findConsent(Consent: ConsentModel, id: string, transaction?: Transaction): Promise<ConsentView | null> {
  const row = await Consent.findByPk(id, { raw: true, transaction });
  return row ? toView(row) : null;
}

export async function listConsentsOf(Consent: ConsentModel, residentId: string, transaction?: Transaction): Promise<ConsentView[]> {
  return (await listConsentsOfMany(Consent, [residentId], transaction)).get(residentId) ?? [];
}

/** Every consent of several residents in one read (a bulk query decides a batch at once), newest first per resident. */
export async function listConsentsOfMany(Consent: ConsentModel, residentIds: string[], transaction?: Transaction): Promise<Map<string, ConsentView[]>> {
  const byResident = new Map<string, ConsentView[]>();
  if (residentIds.length === 0) return byResident;
  const rows = await Consent.findAll({ where: { residentId: residentIds }, order: [['givenAt', 'DESC']], raw: true, transaction });
  for (const row of rows) {
    const list = byResident.get(row.residentId) ?? [];
    list.push(toView(row));
    byResident.set(row.residentId, list);
  }
  return byResident;
}

/** Revocation is recorded on the consent (who, when, why); the consent itself is never removed. */
export async function markRevoked(Consent: ConsentModel, id: string, revokedBy: string, reason: string, transaction: Transaction): Promise<boolean> {
  const [count] = await Consent.update(
    { revokedAt: new Date().toISOString(), revokedBy, revocationReason: reason },
    { where: { id, revokedAt: { [Op.is]: null } }, transaction },
  );
  return count === 1;
}

/** The consent recorded from this resident-signed JWS, if any (a signed consent is recorded once). */
export async function findConsentBySignature(Consent: ConsentModel, residentSignature: string, transaction?: Transaction): Promise<{ id: string } | null> {
  return Consent.findOne({ where: { residentSignature }, attributes: ['id'], raw: true, transaction });
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Deletes every consent of one resident; returns the rows deleted. */
export const deleteConsentsOf = (Consent: ConsentModel, residentId: string, t: Transaction): Promise<number> =>
  Consent.destroy({ where: { residentId }, transaction: t });

/* ---------- consent revocations (docs/DESIGN.md §4.4, docs/PROTOCOL.md §3.9) ---------- */

export const REVOCATION_OUTBOX_STATUSES = ['pending', 'sent', 'refused'] as const;
export type RevocationOutboxStatus = (typeof REVOCATION_OUTBOX_STATUSES)[number];

/**
 * At the requester (B): one signed revocation to send to the gateway, written in the transaction
 * of the revocation itself (so no revocation commits without it), sent by the worker with backoff.
 * The row id is the message's jti and trace id: every retry is the same revocation on every log.
 * No personal data: the consent id, its sources and times.
 */
export class RevocationOutboxRow extends Model<InferAttributes<RevocationOutboxRow>, InferCreationAttributes<RevocationOutboxRow>> {
  declare id: string;
  declare consentId: string;
  /** JSON array of the consent's sources. */
  declare sources: string;
  declare revokedAt: string;
  /** When the consent would have expired: the message lives until then (and a day), no longer. */
  declare consentExpiresAt: string;
  declare status: CreationOptional<RevocationOutboxStatus>;
  declare attempts: CreationOptional<number>;
  declare nextAttemptAt: string;
  declare lastError: CreationOptional<string | null>;
  declare sentAt: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** At a source (A): a requester's consent it holds a signed revocation of. Append-only: never undone. */
export class ReceivedRevocationRow extends Model<InferAttributes<ReceivedRevocationRow>, InferCreationAttributes<ReceivedRevocationRow>> {
  declare id: CreationOptional<number>;
  declare requester: string;
  declare consentId: string;
  declare revokedAt: string;
  declare messageJti: string;
  declare messageHash: string;
  declare receivedAt: string;
  declare createdAt: CreationOptional<Date>;
}

export const RECEIVED_REVOCATIONS_TABLE = 'received_consent_revocations';

export function defineConsentRevocationModels(sequelize: Sequelize) {
  class RevocationOutbox extends RevocationOutboxRow {}
  RevocationOutbox.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    consentId: { type: DataTypes.STRING(36), allowNull: false },
    sources: { type: DataTypes.TEXT, allowNull: false },
    revokedAt: { type: DataTypes.STRING(30), allowNull: false },
    consentExpiresAt: { type: DataTypes.STRING(30), allowNull: false },
    status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
    attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
    lastError: { type: DataTypes.STRING(200), allowNull: true },
    sentAt: { type: DataTypes.STRING(30), allowNull: true },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, {
    sequelize, tableName: 'consent_revocation_outbox',
    indexes: [
      { unique: true, fields: ['consentId'], name: 'consent_revocation_outbox_once' },
      { fields: ['status', 'nextAttemptAt'], name: 'consent_revocation_outbox_status_next_attempt_at' },
    ],
  });

  class ReceivedRevocation extends ReceivedRevocationRow {}
  ReceivedRevocation.init({
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    requester: { type: DataTypes.STRING(6), allowNull: false },
    consentId: { type: DataTypes.STRING(64), allowNull: false },
    revokedAt: { type: DataTypes.STRING(30), allowNull: false },
    messageJti: { type: DataTypes.STRING(128), allowNull: false },
    messageHash: { type: DataTypes.STRING(64), allowNull: false },
    receivedAt: { type: DataTypes.STRING(30), allowNull: false },
    createdAt: DataTypes.DATE,
  }, {
    sequelize, tableName: RECEIVED_REVOCATIONS_TABLE, updatedAt: false,
    indexes: [{ unique: true, fields: ['requester', 'consentId'], name: 'received_consent_revocations_once' }],
  });
  return { RevocationOutbox, ReceivedRevocation };
}

export type ConsentRevocationModels = ReturnType<typeof defineConsentRevocationModels>;

declare module '../context.ts' {
  interface Models extends ConsentRevocationModels {}
}

export interface RevocationOutboxItem {
  id: string;
  consentId: string;
  sources: string[];
  revokedAt: string;
  consentExpiresAt: string;
  status: RevocationOutboxStatus;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  sentAt: string | null;
  createdAt: string;
}

const toOutboxItem = (r: InferAttributes<RevocationOutboxRow>): RevocationOutboxItem => ({
  id: r.id, consentId: r.consentId, sources: JSON.parse(r.sources) as string[], revokedAt: r.revokedAt, consentExpiresAt: r.consentExpiresAt,
  status: (r.status ?? 'pending') as RevocationOutboxStatus, attempts: Number(r.attempts ?? 0), nextAttemptAt: r.nextAttemptAt,
  lastError: r.lastError ?? null, sentAt: r.sentAt ?? null, createdAt: new Date(r.createdAt as unknown as string).toISOString(),
});

export async function insertRevocationOutboxItem(
  M: ConsentRevocationModels['RevocationOutbox'], item: Pick<RevocationOutboxItem, 'id' | 'consentId' | 'sources' | 'revokedAt' | 'consentExpiresAt' | 'nextAttemptAt'>, transaction: Transaction,
): Promise<void> {
  await M.create({ ...item, sources: JSON.stringify(item.sources) }, { transaction });
}

export async function dueRevocationOutboxItems(M: ConsentRevocationModels['RevocationOutbox'], now: Date, limit: number): Promise<RevocationOutboxItem[]> {
  return (await duePending<InferAttributes<RevocationOutboxRow>>(M, now, limit)).map(toOutboxItem);
}

/** Changes a pending item only: a state once final stays final. */
export async function updateRevocationOutboxItem(
  M: ConsentRevocationModels['RevocationOutbox'], id: string,
  values: Partial<Pick<RevocationOutboxItem, 'status' | 'attempts' | 'nextAttemptAt' | 'lastError' | 'sentAt'>>, transaction?: Transaction,
): Promise<void> {
  await updatePending(M, id, values, transaction);
}

/** The outbox as operators watch it: counts by status and the latest items (metadata only). */
export async function listRevocationOutbox(M: ConsentRevocationModels['RevocationOutbox'], status: RevocationOutboxStatus | undefined, limit: number): Promise<{ items: RevocationOutboxItem[]; counts: Record<string, number> }> {
  const { rows, counts } = await listQueue<InferAttributes<RevocationOutboxRow>>(M, REVOCATION_OUTBOX_STATUSES, status, limit);
  return { items: rows.map(toOutboxItem), counts };
}

export async function findReceivedRevocation(M: ConsentRevocationModels['ReceivedRevocation'], requester: string, consentId: string, transaction?: Transaction): Promise<{ revokedAt: string } | null> {
  return M.findOne({ where: { requester, consentId }, attributes: ['revokedAt'], raw: true, transaction });
}

export async function insertReceivedRevocation(
  M: ConsentRevocationModels['ReceivedRevocation'], row: Omit<InferCreationAttributes<ReceivedRevocationRow>, 'id' | 'createdAt'>, transaction: Transaction,
): Promise<void> {
  await M.create(row, { transaction });
}

/** Which of `consentIds` the requester revoked, as this source holds it (one indexed read per query). */
export async function receivedRevocationsAmong(M: ConsentRevocationModels['ReceivedRevocation'], requester: string, consentIds: string[], transaction?: Transaction): Promise<Set<string>> {
  if (consentIds.length === 0) return new Set();
  const rows = await M.findAll({ where: { requester, consentId: { [Op.in]: [...new Set(consentIds)] } }, attributes: ['consentId'], raw: true, transaction });
  return new Set(rows.map((r) => r.consentId));
}
