import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

export class IdempotencyKeyRow extends Model<InferAttributes<IdempotencyKeyRow>, InferCreationAttributes<IdempotencyKeyRow>> {
  declare id: CreationOptional<number>;
  /** Keys are scoped to the staff member who sent them: two clerks may pick the same key. */
  declare actorId: string;
  declare key: string;
  declare method: string;
  declare path: string;
  /** SHA-256 of method, path and canonical body: the same key with another request is refused. */
  declare requestHash: string;
  declare status: number;
  declare responseBody: string;
  /** For the access-log entry of a replay (the replayed body is a read of the same resident). */
  declare subject: string | null;
  declare action: string;
  declare createdAt: CreationOptional<Date>;
}

export function defineIdempotencyModel(sequelize: Sequelize) {
  class IdempotencyKey extends IdempotencyKeyRow {}
  IdempotencyKey.init(
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      actorId: { type: DataTypes.STRING(64), allowNull: false },
      key: { type: DataTypes.STRING(128), allowNull: false },
      method: { type: DataTypes.STRING(8), allowNull: false },
      path: { type: DataTypes.STRING(300), allowNull: false },
      requestHash: { type: DataTypes.STRING(64), allowNull: false },
      status: { type: DataTypes.INTEGER, allowNull: false },
      responseBody: { type: DataTypes.TEXT, allowNull: false },
      subject: { type: DataTypes.STRING(64), allowNull: true },
      action: { type: DataTypes.STRING(64), allowNull: false },
      createdAt: DataTypes.DATE,
    },
    { sequelize, tableName: 'idempotency_keys', updatedAt: false, indexes: [{ unique: true, fields: ['actorId', 'key'] }] },
  );
  return { IdempotencyKey };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineIdempotencyModel> {}
}

export type IdempotencyKeyModel = ReturnType<typeof defineIdempotencyModel>['IdempotencyKey'];

export interface StoredResponse {
  requestHash: string;
  status: number;
  body: unknown;
  subject: string | null;
  action: string;
}

export async function findStoredResponse(IdempotencyKey: IdempotencyKeyModel, actorId: string, key: string, transaction: Transaction): Promise<StoredResponse | null> {
  const row = await IdempotencyKey.findOne({ where: { actorId, key }, raw: true, transaction });
  return row ? { requestHash: row.requestHash, status: row.status, body: JSON.parse(row.responseBody), subject: row.subject, action: row.action } : null;
}

export async function storeResponse(
  IdempotencyKey: IdempotencyKeyModel,
  values: { actorId: string; key: string; method: string; path: string; requestHash: string; status: number; body: unknown; subject: string | null; action: string },
  transaction: Transaction,
): Promise<void> {
  const { body, ...rest } = values;
  await IdempotencyKey.create({ ...rest, responseBody: JSON.stringify(body) }, { transaction });
}

/**
 * On PostgreSQL, writers run in parallel: waits for a request with the same key to commit, so
 * that the next statement finds its response (READ COMMITTED sees the committed row). SQLite
 * runs one writer at a time, so there is nothing to wait for.
 */
export async function lockKey(IdempotencyKey: IdempotencyKeyModel, staffId: string, key: string, transaction: Transaction): Promise<void> {
  const sequelize = IdempotencyKey.sequelize!;
  if (sequelize.getDialect() !== 'postgres') return;
  await sequelize.query(`SELECT pg_advisory_xact_lock(hashtext('idempotency_keys'), hashtext($1))`, {
    bind: [`${staffId}\n${key}`], transaction,
  });
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Deletes the stored replies about one subject (they repeat the resident's data as answered); returns the rows deleted. */
export const deleteResponsesAbout = (IdempotencyKey: IdempotencyKeyModel, subject: string, t: Transaction): Promise<number> =>
  IdempotencyKey.destroy({ where: { subject }, transaction: t });
