import { DataTypes, QueryTypes, type ModelAttributes, type QueryInterface, type Sequelize, type Transaction } from 'sequelize';

/**
 * A schema change, applied once per database, in name order. Migrations are frozen: a later
 * change to a model gets a new migration, never an edit of an applied one
 * (test/integration/database-engines.test.ts fails when models and migrations disagree).
 */
export interface Migration {
  name: string;
  up(schema: SchemaChange): Promise<void>;
}

/** What a migration may do, inside the one transaction that applies it. */
export interface SchemaChange {
  sequelize: Sequelize;
  transaction: Transaction;
  /** Creates a table; a table that already exists is adopted as it is (databases made before migrations). */
  createTable(table: string, attributes: ModelAttributes): Promise<void>;
  /** Adds an index to a table this migration created (adopted tables keep theirs). */
  addIndex(table: string, fields: string[], options: { name: string; unique?: boolean; where?: Record<string, unknown> }): Promise<void>;
  queryInterface: QueryInterface;
}

export const MIGRATIONS_TABLE = 'schema_migrations';

/**
 * Brings a member's database up to date: every migration not yet recorded in `schema_migrations`
 * runs, in order, in one transaction with its record (PostgreSQL and SQLite both roll DDL back),
 * so a crash leaves a migration either applied and recorded or neither. Table creation still
 * adopts what exists (databases made before migrations). One process migrates a database at a
 * time: each member starts its own.
 *
 * The table has the shape umzug's SequelizeStorage gave it (one `name` column, the primary key),
 * which ran this loop until it was found to cost a third of a second of CPU at every member start
 * for what is these few lines (docs/BENCHMARKS.md, "Member processes from a bundle").
 */
export async function migrate(sequelize: Sequelize, migrations: Migration[]): Promise<string[]> {
  const names = migrations.map((m) => m.name);
  if (new Set(names).size !== names.length) throw new Error(`migration names must be unique: ${names.join(', ')}`);
  // CREATE TABLE IF NOT EXISTS on both engines, the shape umzug's storage made.
  await sequelize.getQueryInterface().createTable(MIGRATIONS_TABLE, {
    name: { type: DataTypes.STRING, allowNull: false, unique: true, primaryKey: true },
  });
  const recorded = await sequelize.query<{ name: string }>(`SELECT "name" FROM "${MIGRATIONS_TABLE}"`, { type: QueryTypes.SELECT });
  const done = new Set(recorded.map((r) => r.name));
  const applied: string[] = [];
  for (const m of migrations) {
    if (done.has(m.name)) continue;
    await sequelize.transaction(async (transaction) => {
      await m.up(schemaChange(sequelize, transaction));
      await sequelize.query(`INSERT INTO "${MIGRATIONS_TABLE}" ("name") VALUES ($1)`, { bind: [m.name], transaction });
    });
    applied.push(m.name);
  }
  return applied;
}

function schemaChange(sequelize: Sequelize, transaction: Transaction): SchemaChange {
  const queryInterface = sequelize.getQueryInterface();
  const adopted = new Set<string>();
  let existing: Set<string> | undefined;
  return {
    sequelize,
    transaction,
    queryInterface,
    async createTable(table, attributes) {
      existing ??= new Set((await queryInterface.showAllTables({ transaction })).map(String));
      if (existing.has(table)) {
        adopted.add(table);
        return;
      }
      await queryInterface.createTable(table, attributes, { transaction });
    },
    async addIndex(table, fields, options) {
      if (adopted.has(table)) return;
      await queryInterface.addIndex(table, fields, { ...options, transaction });
    },
  };
}
