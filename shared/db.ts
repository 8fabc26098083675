import { Sequelize, type Transaction } from 'sequelize';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface DatabaseOptions {
  /** SQLite file path, or ':memory:'. Ignored when `url` is set. */
  storage?: string;
  /** postgres://… for a hosted deployment. */
  url?: string;
}

/**
 * Opens a member's own database. On SQLite, every connection gets WAL, foreign keys and a busy
 * timeout in the connection hook: Sequelize opens a connection per transaction, so a PRAGMA
 * sent once with `query` would reach only one of them.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Sequelize> {
  let sequelize: Sequelize;
  if (options.url) {
    sequelize = new Sequelize(options.url, { logging: false, dialect: 'postgres' });
  } else {
    const storage = options.storage ?? ':memory:';
    if (storage !== ':memory:') mkdirSync(dirname(storage), { recursive: true });
    sequelize = new Sequelize({
      dialect: 'sqlite',
      storage,
      logging: false,
      // One writer at a time is SQLite's nature; a small pool keeps readers concurrent under WAL.
      pool: { max: storage === ':memory:' ? 1 : 5, min: 0, idle: 10_000 },
      transactionType: 'IMMEDIATE' as never,
      hooks: {
        afterConnect: async (connection: unknown) => {
          const db = connection as { run(sql: string, cb: (err: Error | null) => void): void };
          const run = (sql: string) => new Promise<void>((resolve, reject) => db.run(sql, (err) => (err ? reject(err) : resolve())));
          await run('PRAGMA journal_mode = WAL');
          await run('PRAGMA synchronous = NORMAL');
          await run('PRAGMA foreign_keys = ON');
          await run('PRAGMA busy_timeout = 10000');
        },
      },
    });
  }
  await sequelize.authenticate();
  return sequelize;
}

export const isSqlite = (sequelize: Sequelize): boolean => sequelize.getDialect() === 'sqlite';

/** Runs `fn` in one transaction; the access-log append and the access it records share it. */
export function inTransaction<T>(sequelize: Sequelize, fn: (t: Transaction) => Promise<T>): Promise<T> {
  return sequelize.transaction((t) => fn(t));
}
