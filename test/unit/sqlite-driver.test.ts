import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { DataTypes, QueryTypes } from 'sequelize';
import { openDatabase } from '../../shared/platform/db.ts';
import { Database, type Statement } from '../../shared/platform/sqlite-driver.ts';

const Raw = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

/** One call of the node-sqlite3-shaped interface, as a promise of its rows (or its error). */
function all(db: Database, sql: string, params?: unknown[] | Record<string, unknown>): Promise<unknown[]> {
  return new Promise((resolve, reject) => db.all(sql, params ?? [], (err, rows) => (err ? reject(err) : resolve(rows ?? []))));
}
function run(db: Database, sql: string, params?: unknown[] | Record<string, unknown>): Promise<Statement> {
  return new Promise((resolve, reject) => db.run(sql, params ?? [], function (this: Statement, err) { if (err) reject(err); else resolve(this); }));
}
function opened(file: string): Promise<Database> {
  return new Promise((resolve, reject) => {
    const db = new Database(file, Database.OPEN_READWRITE | Database.OPEN_CREATE, (err) => (err ? reject(err) : resolve(db)));
  });
}

describe('the SQLite driver under Sequelize (better-sqlite3 shaped as node-sqlite3)', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'hikitsugi-driver-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('when another connection holds the write lock, then a write waits for it off the event loop (the timer that releases the lock keeps running) and then succeeds', async () => {
    const file = join(dir, 'wait.sqlite');
    const db = await opened(file);
    db.configure('busyTimeout', 15_000);
    await run(db, 'PRAGMA journal_mode = WAL');
    await run(db, 'CREATE TABLE t (n INTEGER)');
    const holder = new Raw(file, { timeout: 0 });
    holder.exec('BEGIN IMMEDIATE');
    holder.prepare('INSERT INTO t (n) VALUES (1)').run();
    // Released by a timer after five ticks: if the waiting write held the thread, the timer could never fire.
    let ticks = 0;
    const timer = setInterval(() => { if (++ticks === 5) holder.exec('COMMIT'); }, 5);
    try {
      const wrote = await run(db, 'INSERT INTO t (n) VALUES (2)');
      expect(ticks, 'timer ticks before the write went through').to.be.at.least(5);
      expect(wrote.changes).to.equal(1);
      expect(await all(db, 'SELECT n FROM t ORDER BY n')).to.deep.equal([{ n: 1 }, { n: 2 }]);
    } finally {
      clearInterval(timer);
      holder.close();
      db.close();
    }
  });

  it('when the lock is held past the busy timeout, then the statement fails with SQLITE_BUSY and changes nothing, and the statements queued behind it still run in the order asked', async () => {
    const file = join(dir, 'timeout.sqlite');
    const db = await opened(file);
    await run(db, 'PRAGMA journal_mode = WAL');
    await run(db, 'CREATE TABLE t (n INTEGER)');
    db.configure('busyTimeout', 40);
    const holder = new Raw(file, { timeout: 0 });
    holder.exec('BEGIN IMMEDIATE');
    try {
      const order: string[] = [];
      const first = run(db, 'INSERT INTO t (n) VALUES (1)').then(() => order.push('first'), (err: { code?: string }) => { order.push(`first:${err.code}`); });
      const second = all(db, 'SELECT COUNT(*) AS c FROM t').then((rows) => order.push(`second:${(rows[0] as { c: number }).c}`));
      await Promise.all([first, second]);
      expect(order).to.deep.equal(['first:SQLITE_BUSY', 'second:0']);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
      db.close();
    }
  });

  it('when values are bound by position or by name, then booleans, dates, null and undefined are stored as node-sqlite3 stored them, and a write reports its row id and changes', async () => {
    const db = await opened(join(dir, 'bind.sqlite'));
    try {
      await run(db, 'CREATE TABLE v (id INTEGER PRIMARY KEY AUTOINCREMENT, b INTEGER, d INTEGER, x TEXT, y TEXT)');
      const at = new Date('2026-12-07T10:00:00.000Z');
      const first = await run(db, 'INSERT INTO v (b, d, x, y) VALUES ($1, $2, $3, $4)', { $1: true, $2: at, $3: null, $4: undefined });
      const second = await run(db, 'INSERT INTO v (b, d, x, y) VALUES (?, ?, ?, ?)', [false, at, 'a', 'b']);
      expect([first.lastID, first.changes, second.lastID, second.changes]).to.deep.equal([1, 1, 2, 1]);
      expect(first.constructor.name).to.equal('Statement');
      expect(await all(db, 'SELECT b, d, x, y FROM v ORDER BY id')).to.deep.equal([
        { b: 1, d: at.getTime(), x: null, y: null }, { b: 0, d: at.getTime(), x: 'a', y: 'b' },
      ]);
      // `all` on a statement that returns nothing runs it (node-sqlite3 did): no "use run()" refusal.
      expect(await all(db, 'UPDATE v SET x = $1 WHERE id = $2', ['c', 1])).to.deep.equal([]);
      expect(await all(db, 'SELECT x FROM v WHERE id = 1')).to.deep.equal([{ x: 'c' }]);
    } finally {
      db.close();
    }
  });

  it('when a statement names its parameters $1 … or $name, then each is bound where it stands (repeated, out of order, never inside quotes or comments), and a missing one is refused', async () => {
    const db = await opened(join(dir, 'params.sqlite'));
    try {
      expect(await all(db, `SELECT $2 AS b, $1 AS a, $2 AS again, '$1' AS quoted, '[$1]' AS "$2" /* $3 */ -- $4
        , $2 || '''$1''' AS mixed`, [10, 'two'])).to.deep.equal([{ b: 'two', a: 10, again: 'two', quoted: '$1', $2: '[$1]', mixed: "two'$1'" }]);
      expect(await all(db, 'SELECT $who AS who, $n + 1 AS next', { $who: 'clerk', $n: 41 })).to.deep.equal([{ who: 'clerk', next: 42 }]);
      expect(await all(db, 'SELECT $who AS who', { who: 'named without its sigil' })).to.deep.equal([{ who: 'named without its sigil' }]);
      const missing = await all(db, 'SELECT $1 AS a, $2 AS b', [1]).then(() => null, (e: Error) => e.message);
      expect(missing).to.equal('Missing bound parameter $2');
      // A batch's statement: 6,000 values bound by position (by name, SQLite would look each one up in a list).
      await run(db, 'CREATE TABLE wide (a INTEGER, b TEXT, c INTEGER)');
      let n = 0;
      const values = Array.from({ length: 2000 }, () => `($${++n}, $${++n}, $${++n})`).join(', ');
      const bound = Array.from({ length: 2000 }, (_, i) => [i, `row ${i}`, i * 2]).flat();
      expect((await run(db, `INSERT INTO wide (a, b, c) VALUES ${values}`, bound)).changes).to.equal(2000);
      expect(await all(db, 'SELECT a, b, c FROM wide WHERE a IN ($1, $2) ORDER BY a', [0, 1999])).to.deep.equal([{ a: 0, b: 'row 0', c: 0 }, { a: 1999, b: 'row 1999', c: 3998 }]);
    } finally {
      db.close();
    }
  });

  it('when Sequelize asks a table\'s layout before a SELECT, then it gets what SQLite says now: after another connection alters the table, and when the file is made anew with another layout', async () => {
    const file = join(dir, 'layout.sqlite');
    const sqliteSays = (table: string) => {
      const raw = new Raw(file);
      try { return raw.prepare(`PRAGMA table_info(\`${table}\`)`).all(); } finally { raw.close(); }
    };
    const db = await opened(file);
    await run(db, 'CREATE TABLE t (n INTEGER, at DATETIME)');
    const first = await all(db, 'PRAGMA table_info(`t`)');
    expect(first).to.deep.equal(sqliteSays('t'));
    expect(first.map((c) => (c as { name: string }).name)).to.deep.equal(['n', 'at']);
    // Asked again: the same answer, and a copy (what a caller does with it changes nothing kept).
    const again = await all(db, 'PRAGMA table_info(`t`)') as { name: string }[];
    again[0]!.name = 'changed';
    expect(await all(db, 'PRAGMA table_info(`t`)')).to.deep.equal(sqliteSays('t'));

    const other = new Raw(file);
    other.exec('ALTER TABLE t ADD COLUMN flag BOOLEAN');
    other.close();
    expect((await all(db, 'PRAGMA table_info(`t`)')).map((c) => (c as { name: string }).name)).to.deep.equal(['n', 'at', 'flag']);
    db.close();

    rmSync(file);
    const remade = await opened(file);
    await run(remade, 'CREATE TABLE t (label TEXT, n INTEGER)');
    await run(remade, 'CREATE INDEX t_n ON t (n)');
    // The same schema version as the file it replaced: only the file being new tells them apart.
    expect(await all(remade, 'PRAGMA schema_version')).to.deep.equal([{ schema_version: 2 }]);
    expect(await all(remade, 'PRAGMA table_info(`t`)')).to.deep.equal(sqliteSays('t'));
    // A table that does not exist has no columns, as in SQLite.
    expect(await all(remade, 'PRAGMA table_info(`none`)')).to.deep.equal([]);
    remade.close();
  });

  it('when a statement breaks a constraint, then Sequelize gets the error it knows (a unique violation naming the column)', async () => {
    const sequelize = await openDatabase({ storage: join(dir, 'unique.sqlite') });
    try {
      const Thing = sequelize.define('Thing', { key: { type: DataTypes.STRING, unique: true } }, { tableName: 'things', timestamps: false });
      await Thing.sync();
      await Thing.create({ key: 'a' });
      const err = await Thing.create({ key: 'a' }).then(() => null, (e: Error & { fields?: unknown }) => e);
      expect(err?.name).to.equal('SequelizeUniqueConstraintError');
      expect(err?.fields).to.deep.equal(['key']);
      // Its trace was taken without frames (`serialize`); what identifies it stays, and the limit is back.
      const bad = await sequelize.query('SELECT missing FROM things').then(() => null, (e: Error & { sql?: string; original?: Error }) => e);
      expect(bad?.name).to.equal('SequelizeDatabaseError');
      expect(bad?.message).to.equal('no such column: missing');
      expect(bad?.sql).to.equal('SELECT missing FROM things');
      expect(Error.stackTraceLimit).to.be.greaterThan(0);
      expect(new Error('here').stack).to.match(/\n\s+at /);
      // Bulk inserts get their generated ids from the statement's last row id and changes.
      const made = await Thing.bulkCreate([{ key: 'b' }, { key: 'c' }]);
      expect(made.map((m) => m.get('id'))).to.deep.equal([2, 3]);
      const rows = await sequelize.query<{ key: string }>('SELECT key FROM things WHERE id > $1 ORDER BY id', { bind: [1], type: QueryTypes.SELECT });
      expect(rows.map((r) => r.key)).to.deep.equal(['b', 'c']);
    } finally {
      await sequelize.close();
    }
  });
});
