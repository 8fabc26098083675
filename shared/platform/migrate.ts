import type { ModelAttributes, QueryInterface, Sequelize, Transaction } from 'sequelize';
import { SequelizeStorage, Umzug } from 'umzug';

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
 * runs in its own transaction (PostgreSQL and SQLite both roll DDL back), then is recorded.
 * A crash between the two re-runs the migration on the next start, which is why table creation
 * adopts what exists. One process migrates a database at a time: each member starts its own.
 */
export async function migrate(sequelize: Sequelize, migrations: Migration[]): Promise<string[]> {
  const umzug = new Umzug({
    migrations: migrations.map((m) => ({
      name: m.name,
      up: () => sequelize.transaction(async (transaction) => m.up(schemaChange(sequelize, transaction))),
    })),
    storage: new SequelizeStorage({ sequelize, tableName: MIGRATIONS_TABLE }),
    logger: undefined,
  });
  const applied = await umzug.up();
  return applied.map((m) => m.name);
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
