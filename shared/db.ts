import { Sequelize, Transaction } from 'sequelize';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface DatabaseOptions {
  /** SQLite file path, or ':memory:'. Ignored when `url` is set. */
  storage?: string;
  /** postgres://… for a hosted deployment. */
  url?: string;
}

/** The part of node-sqlite3's Database the connection setup uses. */
interface SqliteConnection {
  run(sql: string, cb: (err: Error | null) => void): void;
  configure(option: 'busyTimeout', ms: number): void;
}

/**
 * Opens a member's own database. On SQLite, Sequelize opens a new connection per transaction and
 * runs no connection hooks for this dialect, so a PRAGMA sent once with `query` reaches only one
 * connection. We wrap the connection manager: every new connection gets a busy timeout (writers
 * wait instead of failing with SQLITE_BUSY) and synchronous=NORMAL (safe under WAL); WAL itself
 * is a property of the file, set once. Transactions are IMMEDIATE: they take the write lock at
 * BEGIN, so two writers queue instead of deadlocking on a lock upgrade.
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
      transactionType: Transaction.TYPES.IMMEDIATE,
    });
    prepareSqliteConnections(sequelize);
    serializeSqliteTransactions(sequelize);
    await sequelize.query('PRAGMA journal_mode = WAL');
  }
  await sequelize.authenticate();
  return sequelize;
}

export const SQLITE_BUSY_TIMEOUT_MS = 15_000;

function prepareSqliteConnections(sequelize: Sequelize): void {
  const manager = sequelize.connectionManager as unknown as { getConnection(options?: unknown): Promise<SqliteConnection> };
  const getConnection = manager.getConnection.bind(manager);
  const prepared = new WeakSet<object>();
  manager.getConnection = async (connectionOptions?: unknown) => {
    const connection = await getConnection(connectionOptions);
    if (!prepared.has(connection)) {
      prepared.add(connection);
      connection.configure('busyTimeout', SQLITE_BUSY_TIMEOUT_MS);
      await new Promise<void>((resolve, reject) => connection.run('PRAGMA synchronous = NORMAL', (err) => (err ? reject(err) : resolve())));
    }
    return connection;
  };
}

/**
 * Runs this database's transactions one at a time, in the order asked. SQLite has one writer
 * anyway; without this queue, a transaction waiting on the busy timeout holds one of libuv's four
 * threads, and a handful of them starve the transaction that holds the lock (a deadlock until the
 * timeout fires). Queued in JavaScript, waiting costs no thread. Only top-level managed
 * transactions queue: Sequelize's own savepoints inside a transaction (findOrCreate) and its
 * unmanaged ones pass straight through. Our code never nests: inside a transaction it passes `t`.
 */
function serializeSqliteTransactions(sequelize: Sequelize): void {
  const begin = sequelize.transaction.bind(sequelize) as (...args: unknown[]) => Promise<unknown>;
  let tail: Promise<unknown> = Promise.resolve();
  (sequelize as unknown as { transaction: (...args: unknown[]) => Promise<unknown> }).transaction = (...args: unknown[]) => {
    const options = args[0] as { transaction?: unknown } | undefined;
    if (typeof args[args.length - 1] !== 'function' || (typeof options === 'object' && options?.transaction)) return begin(...args);
    const run = () => begin(...args);
    const result = tail.then(run, run);
    tail = result.catch(() => undefined);
    return result;
  };
}

export const isSqlite = (sequelize: Sequelize): boolean => sequelize.getDialect() === 'sqlite';

/** Runs `fn` in one transaction; the access-log append and the access it records share it. */
export function inTransaction<T>(sequelize: Sequelize, fn: (t: Transaction) => Promise<T>): Promise<T> {
  return sequelize.transaction((t) => fn(t));
}
