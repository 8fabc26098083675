/**
 * The SQLite driver Sequelize is given (docs/DESIGN.md §10): better-sqlite3 behind the part of
 * node-sqlite3's interface that Sequelize's SQLite dialect and `db.ts` call (`Database(file,
 * mode, cb)`, `serialize`, `run`, `all`, `exec`, `close`, `configure('busyTimeout')`).
 *
 * Why: node-sqlite3 sends every statement to libuv's pool and back, and Sequelize's dialect runs
 * a `PRAGMA table_info` before every model SELECT; better-sqlite3 runs a prepared statement on
 * the calling thread in microseconds (docs/BENCHMARKS.md, "Where a single query's 60 ms go").
 *
 * What must not change: a writer never blocks the event loop waiting for SQLite's lock. A
 * synchronous busy timeout would hold the only thread while the transaction that holds the lock
 * waits for that very thread, so the lock is never waited on inside SQLite (`timeout: 0`): a
 * statement refused with SQLITE_BUSY is tried again from a timer, with growing pauses, until the
 * busy timeout has passed — the same wait node-sqlite3's busy handler gave, asynchronously. A
 * statement refused with SQLITE_BUSY has changed nothing (transactions here begin IMMEDIATE, so
 * a lock is never upgraded halfway through one), which is what makes trying it again safe.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);
const Driver = require('better-sqlite3') as typeof BetterSqlite3;

type Params = unknown[] | Record<string, unknown>;
type Callback = (this: Statement, err: Error | null, rows?: unknown[]) => void;

/** What Sequelize reads after a statement: node-sqlite3 passes it as `this` to the callback (and checks its class name). */
export class Statement {
  constructor(public lastID: number, public changes: number) {}
}
// Sequelize tells a statement's metadata by its class name, which a bundler may rename.
Object.defineProperty(Statement, 'name', { value: 'Statement' });

/** Pauses between tries of a statement refused with SQLITE_BUSY: 1, 2, 4 … 50 ms. */
const BUSY_PAUSE_MAX_MS = 50;
/** Prepared statements kept per connection (a member's statements are a few hundred shapes). */
const STATEMENT_CACHE_SIZE = 500;

/**
 * A value as better-sqlite3 binds it, the way node-sqlite3 did: booleans as 1/0, dates as
 * milliseconds since the epoch, undefined as NULL.
 */
function bindable(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  return value;
}

/**
 * Where each `$1` / `$name` parameter of a statement stands, in order, with the statement
 * rewritten to SQLite's anonymous `?`: bound by position, a batch's statement of thousands of
 * values is prepared and bound in linear time. Named (`$1` kept as is, bound from an object),
 * SQLite looks every name up in a list, so preparing and binding grow with the square of the
 * parameters: 4,000 of them took 0.7 s here, against 3 ms by position (docs/BENCHMARKS.md, "Bound
 * parameters by position"). Quoted strings and names and comments are skipped; null when the
 * statement has no `$` parameter.
 */
interface Placement {
  sql: string;
  /** Each parameter's name, in order of appearance, without its sigil. */
  names: string[];
  /** Each parameter's index in a list of values (`$3` → 2), or -1 for a name. */
  indexes: number[];
}
const placements = new Map<string, Placement | null>();
const PLACEMENT_CACHE_SIZE = 1000;
/** A `$` parameter, or something to step over whole: a quoted string or name, a comment. */
const PARAMETER_OR_SKIPPED = /\$([A-Za-z0-9_]+)|'[^']*'|"[^"]*"|`[^`]*`|\[[^\]]*\]|--[^\n]*|\/\*[\s\S]*?\*\//g;

function placeParameters(sql: string): Placement | null {
  const known = placements.get(sql);
  if (known !== undefined) return known;
  const names: string[] = [];
  // A doubled quote inside a string ('it''s') reads as two strings back to back: the scan stays in step.
  const rewritten = sql.replace(PARAMETER_OR_SKIPPED, (whole, name: string | undefined) => {
    if (name === undefined) return whole;
    names.push(name);
    return '?';
  });
  const placed = names.length === 0 ? null : { sql: rewritten, names, indexes: names.map((n) => (/^\d+$/.test(n) ? Number(n) - 1 : -1)) };
  if (placements.size >= PLACEMENT_CACHE_SIZE) placements.delete(placements.keys().next().value!);
  placements.set(sql, placed);
  return placed;
}

/** The values of a placed statement in order: from a list by number, from an object by name (`$name` or `name`). */
function placedValues(placed: Placement, params: Params): unknown[] {
  const values = new Array<unknown>(placed.names.length);
  if (Array.isArray(params)) {
    for (let i = 0; i < values.length; i++) {
      const index = placed.indexes[i]!;
      if (index < 0 || index >= params.length) throw new RangeError(`Missing bound parameter $${placed.names[i]}`);
      values[i] = bindable(params[index]);
    }
    return values;
  }
  const byName = new Map<string, unknown>();
  for (const key of Object.keys(params)) byName.set(key.charCodeAt(0) === 36 /* $ */ ? key.slice(1) : key, params[key]);
  for (let i = 0; i < values.length; i++) {
    const name = placed.names[i]!;
    if (!byName.has(name)) throw new RangeError(`Missing bound parameter $${name}`);
    values[i] = bindable(byName.get(name));
  }
  return values;
}

/**
 * A statement and its values as better-sqlite3 takes them: `$` parameters by position (see
 * `placeParameters`); otherwise a list by position, or an object by name without its sigil.
 */
function bindParams(sql: string, params: Params | undefined): { sql: string; values: unknown[] | [Record<string, unknown>] } {
  if (params === undefined) return { sql, values: [] };
  const placed = placeParameters(sql);
  if (placed) return { sql: placed.sql, values: placedValues(placed, params) };
  if (Array.isArray(params)) return { sql, values: params.map(bindable) };
  const named: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) named[/^[$:@]/.test(k) ? k.slice(1) : k] = bindable(v);
  return { sql, values: Object.keys(named).length === 0 ? [] : [named] };
}

/**
 * Sequelize's SQLite dialect asks `PRAGMA table_info` of a table before every model SELECT, to
 * read the declared types of its columns (docs/BENCHMARKS.md, "The SQLite driver"). The answer
 * changes only with the schema, so it is kept per database file and table, and thrown away as
 * soon as the file's schema version (`PRAGMA schema_version`, bumped by SQLite on every schema
 * change, from any connection) differs from the one it was read under.
 */
const TABLE_INFO = /^PRAGMA table_info\(`([^`]+)`\)$/;
const tableLayouts = new Map<string | Database, { schemaVersion: number; tables: Map<string, Record<string, unknown>[]> }>();

const isBusy = (err: unknown): boolean => typeof (err as { code?: unknown })?.code === 'string' && (err as { code: string }).code.startsWith('SQLITE_BUSY');

export class Database {
  static OPEN_READONLY = 0x00000001;
  static OPEN_READWRITE = 0x00000002;
  static OPEN_CREATE = 0x00000004;

  readonly filename: string;
  /** Set by Sequelize on a transaction's connection. */
  uuid?: string;
  private db: BetterSqlite3.Database | null = null;
  /** How long a statement refused with SQLITE_BUSY is tried again (`configure('busyTimeout', ms)`). */
  busyTimeoutMs = 0;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private schemaVersionStatement: BetterSqlite3.Statement | undefined;
  /** Statements wait their turn here while an earlier one waits out SQLITE_BUSY: order as asked. */
  private waiting: (() => void)[] = [];
  private pausedUntilDone = false;

  constructor(filename: string, mode?: number | ((err: Error | null) => void), callback?: (err: Error | null) => void) {
    const cb = typeof mode === 'function' ? mode : callback;
    const flags = typeof mode === 'number' ? mode : Database.OPEN_READWRITE | Database.OPEN_CREATE;
    this.filename = filename;
    try {
      // A file made anew at a path seen before starts with no table layouts (see `tableLayouts`).
      if (!existsSync(filename)) tableLayouts.delete(filename);
      this.db = new Driver(filename, { readonly: (flags & Database.OPEN_READWRITE) === 0, fileMustExist: (flags & Database.OPEN_CREATE) === 0, timeout: 0 });
      if (cb) queueMicrotask(() => cb.call(this as unknown as Statement, null));
    } catch (err) {
      if (cb) queueMicrotask(() => cb.call(this as unknown as Statement, err as Error));
    }
  }

  /**
   * node-sqlite3 runs the queued statements of `fn` one after the other; here they already do.
   *
   * Sequelize's dialect calls this once per statement, makes an `Error` first thing inside `fn` and
   * reads its `stack` when the statement is done, for every statement, to give a failed one a
   * trace. Formatting that trace cost 10–20 % of a statement's CPU here (docs/BENCHMARKS.md,
   * "Statement traces"), and what it holds is Sequelize's own frames and at most one caller. So
   * the trace is taken without frames: a database error keeps its name, message, `sql` and
   * cause, and the request id in the log says which request it was.
   */
  serialize(fn?: () => unknown): void {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      fn?.();
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  configure(option: string, value: number): void {
    if (option === 'busyTimeout') this.busyTimeoutMs = value;
  }

  run(sql: string, params?: Params | Callback, callback?: Callback): this {
    return this.statement('run', sql, params, callback);
  }

  all(sql: string, params?: Params | Callback, callback?: Callback): this {
    return this.statement('all', sql, params, callback);
  }

  /** The first row, or undefined. */
  get(sql: string, params?: Params | ((err: Error | null, row?: unknown) => void), callback?: (err: Error | null, row?: unknown) => void): this {
    const cb = typeof params === 'function' ? params : callback;
    return this.statement('all', sql, typeof params === 'function' ? undefined : params, (err, rows) => cb?.(err, rows?.[0]));
  }

  /**
   * Runs a script of statements once. Not tried again on SQLITE_BUSY: the statements before the
   * refused one have taken effect. Sequelize never calls it; tests and tools editing a file do.
   */
  exec(sql: string, callback?: (err: Error | null) => void): this {
    this.whenFree(() => this.attempt(() => { this.open().exec(sql); return { rows: [], meta: new Statement(0, 0) }; },
      (err) => callback?.call(this as unknown as Statement, err), { retryBusy: false }));
    return this;
  }

  close(callback?: (err: Error | null) => void): void {
    try {
      this.statements.clear();
      this.schemaVersionStatement = undefined;
      tableLayouts.delete(this);
      this.db?.close();
      this.db = null;
      if (callback) queueMicrotask(() => callback(null));
    } catch (err) {
      if (callback) queueMicrotask(() => callback(err as Error));
    }
  }

  private open(): BetterSqlite3.Database {
    if (!this.db) throw Object.assign(new Error('SQLITE_MISUSE: Database is closed'), { code: 'SQLITE_MISUSE' });
    return this.db;
  }

  private prepared(sql: string): BetterSqlite3.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.open().prepare(sql);
      if (this.statements.size >= STATEMENT_CACHE_SIZE) this.statements.delete(this.statements.keys().next().value!);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  private statement(method: 'run' | 'all', sql: string, params: Params | Callback | undefined, callback: Callback | undefined): this {
    const cb = typeof params === 'function' ? params : callback;
    let bound: ReturnType<typeof bindParams> | undefined;
    let unbindable: Error | undefined;
    try {
      bound = bindParams(sql, typeof params === 'function' ? undefined : params);
    } catch (err) {
      unbindable = err as Error;
    }
    const table = method === 'all' && bound?.values.length === 0 ? TABLE_INFO.exec(sql)?.[1] : undefined;
    this.whenFree(() => this.attempt(() => {
      if (unbindable) throw unbindable;
      if (table !== undefined) return { rows: this.tableLayout(table), meta: new Statement(0, 0) };
      const stmt = this.prepared(bound!.sql);
      if (method === 'all' && stmt.reader) return { rows: stmt.all(...bound!.values), meta: new Statement(0, 0) };
      const info = stmt.run(...bound!.values);
      return { rows: [], meta: new Statement(Number(info.lastInsertRowid), info.changes) };
    }, (err, rows, meta) => cb?.call(meta ?? new Statement(0, 0), err, rows)));
    return this;
  }

  /** `PRAGMA table_info` of a table, read again only when the schema has changed (see `tableLayouts`). */
  private tableLayout(table: string): Record<string, unknown>[] {
    this.schemaVersionStatement ??= this.open().prepare('PRAGMA schema_version').pluck();
    const schemaVersion = this.schemaVersionStatement.get() as number;
    // A database in memory is this connection's alone.
    const scope = this.filename === '' || this.filename === ':memory:' ? this : this.filename;
    let known = tableLayouts.get(scope);
    if (!known || known.schemaVersion !== schemaVersion) tableLayouts.set(scope, known = { schemaVersion, tables: new Map() });
    let rows = known.tables.get(table);
    if (!rows) known.tables.set(table, rows = this.prepared(`PRAGMA table_info(\`${table}\`)`).all() as Record<string, unknown>[]);
    return rows.map((row) => ({ ...row }));
  }

  /** Runs `next` now, or after the statement that is waiting out SQLITE_BUSY on this connection. */
  private whenFree(next: () => void): void {
    if (this.pausedUntilDone) this.waiting.push(next);
    else next();
  }

  /**
   * One statement, tried until it is not refused with SQLITE_BUSY or the busy timeout has passed.
   * The answer arrives as a microtask, never inside the call: a flow's statements then follow one
   * another without a turn of the event loop each, which measured cheaper (docs/BENCHMARKS.md,
   * "The SQLite driver").
   */
  private attempt(
    work: () => { rows: unknown[]; meta: Statement },
    done: (err: Error | null, rows?: unknown[], meta?: Statement) => void,
    { retryBusy = true, started = Date.now(), pause = 1 } = {},
  ): void {
    let result: { rows: unknown[]; meta: Statement } | undefined;
    let error: Error | null = null;
    try {
      result = work();
    } catch (err) {
      error = err as Error;
    }
    if (error && retryBusy && isBusy(error) && Date.now() - started < this.busyTimeoutMs) {
      this.pausedUntilDone = true;
      setTimeout(() => this.attempt(work, done, { started, pause: Math.min(pause * 2, BUSY_PAUSE_MAX_MS) }), pause);
      return;
    }
    const resume = this.pausedUntilDone;
    this.pausedUntilDone = false;
    queueMicrotask(() => {
      if (error) done(error);
      else done(null, result!.rows, result!.meta);
    });
    if (resume) {
      const queued = this.waiting.splice(0);
      for (const next of queued) this.whenFree(next);
    }
  }
}

export default { Database, OPEN_READONLY: Database.OPEN_READONLY, OPEN_READWRITE: Database.OPEN_READWRITE, OPEN_CREATE: Database.OPEN_CREATE };
