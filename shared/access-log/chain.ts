/**
 * The one access-log append of the project, used by every member. Entries are hash-chained:
 * hash = SHA-256(previous hash ‖ canonical entry). The table refuses UPDATE and DELETE (triggers),
 * and the append runs in the caller's transaction, so an access and its log entry commit together.
 */
import { DataTypes, Model, QueryTypes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';
import { sha256Hex } from '../crypto.ts';
import { currentRequestId } from '../platform/context.ts';
import { AppError } from '../platform/errors.ts';
import { insertRows } from '../platform/db.ts';

export const GENESIS_HASH = '0'.repeat(64);

/** What an access-log entry says. Subjects are local addressee numbers or codes, never a My Number. */
export interface AccessEntry {
  requestId: string;
  actorType: 'staff' | 'member' | 'system' | 'resident';
  actorId: string;
  actorRole: string | null;
  actingMunicipality: string | null;
  subject: string | null;
  action: string;
  purpose: string | null;
  legalBasis: string | null;
  consentId: string | null;
  outcome: 'allowed' | 'denied';
  reason: string | null;
  recordIds: string[];
  requestHash: string | null;
  flags: string[];
  /** Extra metadata (source/target municipality, counts); never personal data. */
  details: Record<string, unknown>;
}

export type AccessInput = Partial<AccessEntry> & Pick<AccessEntry, 'actorType' | 'actorId' | 'action' | 'outcome'>;

export class AccessLogRow extends Model<InferAttributes<AccessLogRow>, InferCreationAttributes<AccessLogRow>> {
  declare seq: number;
  declare at: string;
  declare requestId: string;
  declare actorType: string;
  declare actorId: string;
  declare actorRole: string | null;
  declare actingMunicipality: string | null;
  declare subject: string | null;
  declare action: string;
  declare purpose: string | null;
  declare legalBasis: string | null;
  declare consentId: string | null;
  declare outcome: string;
  declare reason: string | null;
  declare recordIds: string;
  declare requestHash: string | null;
  declare flags: string;
  declare details: string;
  declare prevHash: string;
  declare hash: string;
  declare createdAt: CreationOptional<Date>;
}

export type AccessLogModel = typeof AccessLogRow;
export const ACCESS_LOG_TABLE = 'access_log';

/** Defines the access log on one member's database (a fresh class per database: no shared state). */
export function defineAccessLog(sequelize: Sequelize): AccessLogModel {
  class AccessLog extends AccessLogRow {}
  AccessLog.init(
    {
      seq: { type: DataTypes.INTEGER, primaryKey: true, allowNull: false },
      at: { type: DataTypes.STRING(30), allowNull: false },
      requestId: { type: DataTypes.STRING(128), allowNull: false },
      actorType: { type: DataTypes.STRING(16), allowNull: false },
      actorId: { type: DataTypes.STRING(64), allowNull: false },
      actorRole: { type: DataTypes.STRING(64), allowNull: true },
      actingMunicipality: { type: DataTypes.STRING(32), allowNull: true },
      subject: { type: DataTypes.STRING(64), allowNull: true },
      action: { type: DataTypes.STRING(64), allowNull: false },
      purpose: { type: DataTypes.STRING(64), allowNull: true },
      legalBasis: { type: DataTypes.STRING(64), allowNull: true },
      consentId: { type: DataTypes.STRING(64), allowNull: true },
      outcome: { type: DataTypes.STRING(16), allowNull: false },
      reason: { type: DataTypes.STRING(200), allowNull: true },
      recordIds: { type: DataTypes.TEXT, allowNull: false },
      requestHash: { type: DataTypes.STRING(64), allowNull: true },
      flags: { type: DataTypes.TEXT, allowNull: false },
      details: { type: DataTypes.TEXT, allowNull: false },
      prevHash: { type: DataTypes.STRING(64), allowNull: false, unique: true },
      hash: { type: DataTypes.STRING(64), allowNull: false, unique: true },
      createdAt: DataTypes.DATE,
    },
    {
      sequelize, tableName: ACCESS_LOG_TABLE, updatedAt: false,
      indexes: [{ fields: ['subject'] }, { fields: ['requestId'] }, { fields: ['actorId'] }, { fields: ['at'] }],
    },
  );
  return AccessLog;
}

/**
 * Refuses UPDATE and DELETE on an append-only table (the access log, held checkpoints) at the
 * database itself, so not even the application's own code can rewrite history. Run after the
 * table exists; idempotent.
 */
export async function protectAppendOnly(sequelize: Sequelize, table: string, transaction?: Transaction): Promise<void> {
  if (!/^[a-z_]+$/.test(table)) throw new Error(`not a table name: ${table}`);
  if (sequelize.getDialect() === 'sqlite') {
    for (const op of ['UPDATE', 'DELETE']) {
      await sequelize.query(
        `CREATE TRIGGER IF NOT EXISTS ${table}_no_${op.toLowerCase()} BEFORE ${op} ON ${table}
         BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`,
        { transaction },
      );
    }
  } else {
    await sequelize.query(`CREATE OR REPLACE FUNCTION ${table}_append_only() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION '${table} is append-only'; END; $$ LANGUAGE plpgsql`, { transaction });
    await sequelize.query(`DROP TRIGGER IF EXISTS ${table}_no_change ON ${table}`, { transaction });
    await sequelize.query(`CREATE TRIGGER ${table}_no_change BEFORE UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION ${table}_append_only()`, { transaction });
  }
}

/** The access log's protection (every member's schema preparation calls this). */
export const protectAccessLog = (sequelize: Sequelize): Promise<void> => protectAppendOnly(sequelize, ACCESS_LOG_TABLE);

/** The fields a hash covers, in a fixed order; the stored JSON columns are hashed as stored. */
export const CHAINED_FIELDS = [
  'seq', 'at', 'requestId', 'actorType', 'actorId', 'actorRole', 'actingMunicipality', 'subject', 'action', 'purpose',
  'legalBasis', 'consentId', 'outcome', 'reason', 'recordIds', 'requestHash', 'flags', 'details',
] as const;

export type ChainedRow = { [K in (typeof CHAINED_FIELDS)[number]]: unknown } & { prevHash: string; hash: string };

/** Canonical serialization: a JSON array of the chained fields in the fixed order. */
export function canonicalEntry(row: Omit<ChainedRow, 'hash' | 'prevHash'>): string {
  return JSON.stringify(CHAINED_FIELDS.map((f) => row[f] ?? null));
}

export function entryHash(prevHash: string, row: Omit<ChainedRow, 'hash' | 'prevHash'>): string {
  return sha256Hex(prevHash + canonicalEntry(row));
}

/**
 * Appends one entry after the current head, inside `transaction`. SQLite transactions here are
 * IMMEDIATE (one writer), and `prevHash` is unique, so two entries can never share a predecessor.
 */
export async function appendAccess(log: AccessLogModel, transaction: Transaction, input: AccessInput): Promise<ChainedRow> {
  return (await appendAccessBatch(log, transaction, [input]))[0]!;
}

/** The stable problem code of an access that did not happen because its log entry could not be written. */
export const ACCESS_LOG_UNAVAILABLE = 'access-log-unavailable';

/**
 * Appends several entries in one statement (bulk queries log one entry per subject). Fails
 * closed (DESIGN.md §5): when the entries cannot be written, this throws a 503
 * `access-log-unavailable`, the caller's transaction rolls back with it, and the access it was to
 * record does not happen. No caller catches it: an unlogged access is no access.
 */
export async function appendAccessBatch(log: AccessLogModel, transaction: Transaction, inputs: AccessInput[]): Promise<ChainedRow[]> {
  if (inputs.length === 0) return [];
  try {
    return await appendChained(log, transaction, inputs);
  } catch (err) {
    if (err instanceof AppError) throw err;
    const refused = new AppError(503, ACCESS_LOG_UNAVAILABLE, 'The access log could not be written, so the operation was not carried out', {
      field: ACCESS_LOG_TABLE, rule: 'every access is logged before it takes effect; retry when the log is writable', retryAfter: 30,
    });
    // The database's own words go to the server log with the error, never into the problem.
    refused.cause = err;
    throw refused;
  }
}

async function appendChained(log: AccessLogModel, transaction: Transaction, inputs: AccessInput[]): Promise<ChainedRow[]> {
  const sequelize = log.sequelize!;
  if (sequelize.getDialect() === 'postgres') {
    // Serialize appenders on PostgreSQL the way IMMEDIATE does on SQLite.
    await sequelize.query(`SELECT pg_advisory_xact_lock(hashtext('${ACCESS_LOG_TABLE}'))`, { transaction });
  }
  const [head] = await sequelize.query<{ seq: number; hash: string }>(
    `SELECT seq, hash FROM ${ACCESS_LOG_TABLE} ORDER BY seq DESC LIMIT 1`, { type: QueryTypes.SELECT, transaction },
  );
  let seq = head?.seq ?? 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  const at = new Date().toISOString();
  const rows: ChainedRow[] = inputs.map((input) => {
    seq += 1;
    const row = {
      seq,
      at,
      requestId: input.requestId ?? currentRequestId() ?? 'none',
      actorType: input.actorType,
      actorId: input.actorId,
      actorRole: input.actorRole ?? null,
      actingMunicipality: input.actingMunicipality ?? null,
      subject: input.subject ?? null,
      action: input.action,
      purpose: input.purpose ?? null,
      legalBasis: input.legalBasis ?? null,
      consentId: input.consentId ?? null,
      outcome: input.outcome,
      reason: input.reason ?? null,
      recordIds: JSON.stringify(input.recordIds ?? []),
      requestHash: input.requestHash ?? null,
      flags: JSON.stringify(input.flags ?? []),
      details: JSON.stringify(input.details ?? {}),
    };
    const hash = entryHash(prevHash, row);
    const chained = { ...row, prevHash, hash };
    prevHash = hash;
    return chained;
  });
  const createdAt = new Date();
  await insertRows(sequelize, ACCESS_LOG_TABLE, rows.map((row) => ({ ...row, createdAt })), transaction);
  return rows;
}
