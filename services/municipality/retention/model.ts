/**
 * The retention job's own table and its database housekeeping (docs/DESIGN.md §4.13).
 * `retention_permits` holds, only while a removal's transaction is open, the one resident being
 * removed: the append-only triggers of `resident_notices` and `correction_notices` let a DELETE
 * through for that resident alone (migrations/0006-retention.ts), and never an UPDATE.
 */
import { DataTypes, Model, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

export class RetentionPermitRow extends Model<InferAttributes<RetentionPermitRow>, InferCreationAttributes<RetentionPermitRow>> {
  declare residentId: string;
}

/** Defines the retention table on one municipality's database. */
export function defineRetentionModels(sequelize: Sequelize) {
  class RetentionPermit extends RetentionPermitRow {}
  RetentionPermit.init(
    { residentId: { type: DataTypes.STRING(36), primaryKey: true } },
    { sequelize, tableName: 'retention_permits', timestamps: false },
  );
  return { RetentionPermit };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineRetentionModels> {}
}

export type RetentionPermitModel = ReturnType<typeof defineRetentionModels>['RetentionPermit'];

/** Lets the append-only tables' rows about this resident be deleted, inside `t` only. */
export async function grantPermit(RetentionPermit: RetentionPermitModel, residentId: string, t: Transaction): Promise<void> {
  await RetentionPermit.create({ residentId }, { transaction: t });
}

/** Takes the permit away before the removal commits, so nothing after it may delete. */
export async function withdrawPermit(RetentionPermit: RetentionPermitModel, residentId: string, t: Transaction): Promise<void> {
  await RetentionPermit.destroy({ where: { residentId }, transaction: t });
}

/**
 * SQLite keeps deleted rows' bytes in free pages unless `secure_delete` is on: set on this
 * transaction's connection, so what the removal frees is overwritten with zeros. PostgreSQL's
 * dead tuples are reclaimed by its own (auto)vacuum.
 */
export async function zeroFreedSpace(sequelize: Sequelize, t: Transaction): Promise<void> {
  if (sequelize.getDialect() === 'sqlite') await sequelize.query('PRAGMA secure_delete = ON', { transaction: t });
}

/**
 * After a run on SQLite: copies the write-ahead log into the file and truncates it, so earlier
 * frames that still held removed rows leave the disk too. Busy readers make it a no-op; the next
 * run tries again.
 */
export async function truncateWriteAheadLog(sequelize: Sequelize): Promise<void> {
  if (sequelize.getDialect() === 'sqlite') await sequelize.query('PRAGMA wal_checkpoint(TRUNCATE)');
}
