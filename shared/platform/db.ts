import { Sequelize, Transaction } from 'sequelize';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import sqliteDriver from './sqlite-driver.ts';

export interface DatabaseOptions {
  /** SQLite file path, or ':memory:'. Ignored when `url` is set. */
  storage?: string;
  /** postgres://… for a hosted deployment. */
  url?: string;
  /** Sees every statement's SQL text (tests that check what reaches SQL); off otherwise. */
  logging?: (sql: string) => void;
}

/** The part of the driver's Database the connection setup uses (shared/platform/sqlite-driver.ts). */
interface SqliteConnection {
  run(sql: string, cb: (err: Error | null) => void): void;
  configure(option: 'busyTimeout', ms: number): void;
}

/**
 * Opens a member's own database. On SQLite, Sequelize opens a new connection per transaction and
 * runs no connection hooks for this dialect, so a PRAGMA sent once with `query` reaches only one
 * connection. We wrap the connection manager: every new connection gets a busy timeout (writers
 * wait instead of failing with SQLITE_BUSY, off the event loop: the driver tries again from a
 * timer) and synchronous=NORMAL (safe under WAL); WAL itself
 * is a property of the file, set once. Transactions are IMMEDIATE: they take the write lock at
 * BEGIN, so two writers queue instead of deadlocking on a lock upgrade.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Sequelize> {
  let sequelize: Sequelize;
  if (options.url) {
    sequelize = new Sequelize(options.url, { logging: options.logging ?? false, dialect: 'postgres' });
  } else {
    const storage = options.storage ?? ':memory:';
    if (storage !== ':memory:') mkdirSync(dirname(storage), { recursive: true });
    sequelize = new Sequelize({
      dialect: 'sqlite',
      storage,
      logging: options.logging ?? false,
      dialectModule: sqliteDriver,
      transactionType: Transaction.TYPES.IMMEDIATE,
    });
    prepareSqliteConnections(sequelize);
    // ':memory:' has one shared connection already; only files open one per transaction.
    if (storage !== ':memory:') reuseTransactionConnections(sequelize);
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

/** Idle transaction connections kept open: one for the queued transactions, one for Sequelize's own unmanaged ones. */
const IDLE_TRANSACTION_CONNECTIONS = 2;

/**
 * Keeps a finished transaction's connection open for the next transaction. Sequelize's SQLite
 * dialect opens a connection per transaction and closes it at the end; each new connection costs
 * an open, the PRAGMAs and a parse of the whole schema on its first statement — a transaction
 * with one SELECT cost ~2.0–3.0 ms of CPU that way against ~1.2–1.7 ms reusing (BENCHMARKS.md).
 * A connection is reused only after its COMMIT or ROLLBACK succeeded (a failed rollback destroys
 * it, as before) and serves one transaction at a time; idle ones close with the database.
 */
function reuseTransactionConnections(sequelize: Sequelize): void {
  interface Connection { uuid?: string; close(cb?: (err: Error | null) => void): void }
  const manager = sequelize.connectionManager as unknown as {
    connections: Record<string, Connection>;
    getConnection(options?: { uuid?: string }): Promise<Connection>;
    releaseConnection(connection: Connection, force?: boolean): void;
    _onProcessExit(): Promise<void>;
  };
  const idle: Connection[] = [];
  const get = manager.getConnection.bind(manager);
  const release = manager.releaseConnection.bind(manager);
  const exit = manager._onProcessExit.bind(manager);
  manager.getConnection = async (options) => {
    const uuid = options?.uuid;
    if (uuid && uuid !== 'default' && !manager.connections[uuid]) {
      const reused = idle.pop();
      if (reused) {
        manager.connections[uuid] = reused;
        return reused;
      }
    }
    return get(options);
  };
  manager.releaseConnection = (connection, force) => {
    if (!force && connection.uuid && connection.uuid !== 'default' && idle.length < IDLE_TRANSACTION_CONNECTIONS) {
      delete manager.connections[connection.uuid];
      idle.push(connection);
      return;
    }
    release(connection, force);
  };
  manager._onProcessExit = async () => {
    await Promise.all(idle.splice(0).map((c) => new Promise<void>((resolve) => c.close(() => resolve()))));
    return exit();
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

/** Rows per statement in `updateRows`. */
const UPDATE_ROWS_CHUNK = 250;

/** Table and column names written into raw SQL are plain identifiers, never data. */
export function requirePlainNames(what: string, names: string[]): void {
  if (!names.every((n) => /^[A-Za-z_]+$/.test(n))) throw new Error(`${what} takes plain table and column names`);
}

/** `($k+1, $k+2 …), (…)`: one tuple of `width` bound parameters per row, numbered after `k`. */
function valueTuples(rows: number, width: number, k = 0): string {
  let n = k;
  return Array.from({ length: rows }, () => `(${Array.from({ length: width }, () => `$${++n}`).join(', ')})`).join(', ');
}

/**
 * Gives many rows each their own values in one statement per few hundred rows (one UPDATE per row
 * through a model costs more than the rest of a batch's database work): `UPDATE t AS r SET c = v.columnN
 * FROM (VALUES …) AS v WHERE r.key = v.column1`, which SQLite and PostgreSQL both run, naming VALUES
 * columns column1…n. `set` gives each column's SQL type, cast because PostgreSQL infers a VALUES
 * column's type from its literals (an all-NULL column would be text); `fixed` is the same for every row.
 */
export async function updateRows(
  sequelize: Sequelize, table: string,
  spec: { keys: string[]; set: Record<string, 'TEXT' | 'INTEGER'>; fixed?: Record<string, unknown> },
  rows: Record<string, unknown>[], transaction?: Transaction,
): Promise<void> {
  requirePlainNames('updateRows', [table, ...spec.keys, ...Object.keys(spec.set), ...Object.keys(spec.fixed ?? {})]);
  const columns = [...spec.keys, ...Object.keys(spec.set)];
  const fixed = Object.entries(spec.fixed ?? {});
  const assignments = [
    ...Object.entries(spec.set).map(([c, type], i) => `"${c}" = CAST(v.column${spec.keys.length + i + 1} AS ${type})`),
    ...fixed.map(([c], i) => `"${c}" = $${i + 1}`),
  ].join(', ');
  const match = spec.keys.map((k, i) => `r."${k}" = v.column${i + 1}`).join(' AND ');
  const value = (v: unknown) => bindValue(sequelize, v);
  for (let i = 0; i < rows.length; i += UPDATE_ROWS_CHUNK) {
    const chunk = rows.slice(i, i + UPDATE_ROWS_CHUNK);
    const values = valueTuples(chunk.length, columns.length, fixed.length);
    // Every value is a bound parameter: nothing a row holds is ever part of the SQL text.
    await sequelize.query(`UPDATE "${table}" AS r SET ${assignments} FROM (VALUES ${values}) AS v WHERE ${match}`, {
      transaction, bind: [...fixed.map(([, v]) => value(v)), ...chunk.flatMap((row) => columns.map((c) => value(row[c] ?? null)))],
    });
  }
}

/** Bound parameters per statement in `insertRows`: under SQLite's limit (32,766) and PostgreSQL's (65,535). */
const INSERT_PARAMETERS_MAX = 30_000;

/**
 * Inserts many rows in one statement per few thousand values, every value a bound parameter:
 * `INSERT INTO t (c1, c2 …) VALUES ($1, $2 …), (…)`. For the hot paths whose rows are complete
 * as given (every column named, no model default to fill in): a model's `bulkCreate` builds an
 * instance of every row and writes its values into the SQL text, which cost more than the
 * statement itself (docs/BENCHMARKS.md, "Rows written without model instances"). Every row has
 * the columns of the first; dates are bound as `bindValue` binds them.
 */
export async function insertRows(sequelize: Sequelize, table: string, rows: Record<string, unknown>[], transaction?: Transaction): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  requirePlainNames('insertRows', [table, ...columns]);
  const perStatement = Math.max(1, Math.floor(INSERT_PARAMETERS_MAX / columns.length));
  const names = columns.map((c) => `"${c}"`).join(', ');
  for (let i = 0; i < rows.length; i += perStatement) {
    const chunk = rows.slice(i, i + perStatement);
    await sequelize.query(`INSERT INTO "${table}" (${names}) VALUES ${valueTuples(chunk.length, columns.length)}`, {
      transaction, bind: chunk.flatMap((row) => columns.map((c) => bindValue(sequelize, row[c] ?? null))),
    });
  }
}

/**
 * A value as a bound parameter of a raw query. Dates take the form Sequelize stores on SQLite
 * (`YYYY-MM-DD HH:mm:ss.SSS +00:00`, so they compare and sort with the rows it wrote); the
 * PostgreSQL driver sends a Date as a timestamp itself.
 */
export function bindValue(sequelize: Sequelize, value: unknown): unknown {
  if (value instanceof Date && isSqlite(sequelize)) return value.toISOString().replace('T', ' ').replace('Z', ' +00:00');
  return value;
}
