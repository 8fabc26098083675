/**
 * Cost of one SQLite statement on the members' path (docs/BENCHMARKS.md, "Where a single query's
 * 60 ms go"): through Sequelize as the flows use it (a model read, a bound raw query, a
 * transaction), through the driver Sequelize is given alone, and through better-sqlite3's own
 * prepared statements. Same file settings as a member (WAL, synchronous=NORMAL, source maps off).
 *
 *   npx tsx scripts/bench/statements.ts [--ops 2000]
 *
 * Each statement runs `--ops` times one after the other (awaited), after 200 warm-up rounds, on a
 * table of 1,000 rows in a scratch folder that is removed afterwards; the figure is process CPU
 * (all threads) and wall time per statement.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { DataTypes, QueryTypes } from 'sequelize';
import BetterSqlite3 from 'better-sqlite3';
import sqlite from '../../shared/platform/sqlite-driver.ts';
import { openDatabase } from '../../shared/platform/db.ts';
import { memberProcessStackTraces } from '../../shared/platform/server.ts';

const options = new Command('statements').option('--ops <n>', 'statements of each kind', '2000').parse().opts<{ ops: string }>();
const OPS = Number(options.ops);
memberProcessStackTraces();

async function time(name: string, op: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 200; i++) await op(i);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) await op(i);
  const wallUs = Number(process.hrtime.bigint() - start) / 1000 / OPS;
  const used = process.cpuUsage(cpu);
  console.log(`  ${name.padEnd(52)} ${((used.user + used.system) / OPS).toFixed(0).padStart(6)} µs CPU  ${wallUs.toFixed(0).padStart(6)} µs wall`);
}

const dir = mkdtempSync(join(tmpdir(), 'bench-statements-'));
try {
  const sequelize = await openDatabase({ storage: join(dir, 'member.sqlite') });
  const Thing = sequelize.define('Thing', { key: { type: DataTypes.STRING(32), unique: true }, value: DataTypes.TEXT }, { tableName: 'things', timestamps: false });
  await sequelize.getQueryInterface().createTable('things', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, key: { type: DataTypes.STRING(32), unique: true }, value: DataTypes.TEXT,
  });
  await Thing.bulkCreate(Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}`, value: 'x'.repeat(100) })));
  const key = (i: number) => `k${i % 1000}`;

  console.log(`SQLite statements, ${OPS} of each; Node ${process.version}`);
  console.log(' Sequelize:');
  await time('Model.findOne({ raw: true }) by a unique key', (i) => Thing.findOne({ where: { key: key(i) }, raw: true }));
  await time('Model.findAll (instances) by the same key', (i) => Thing.findAll({ where: { key: key(i) } }));
  await time('sequelize.query with a bound parameter', (i) => sequelize.query('SELECT key, value FROM things WHERE key = $1', { bind: [key(i)], type: QueryTypes.SELECT }));
  await time('empty transaction (BEGIN IMMEDIATE … COMMIT)', () => sequelize.transaction(async () => undefined));
  await time('transaction with one Model.create', (i) => sequelize.transaction((t) => Thing.create({ key: `t${i}-${process.hrtime.bigint()}`, value: 'y' }, { transaction: t })));
  await sequelize.close();

  console.log(' the driver Sequelize is given (shared/platform/sqlite-driver.ts), alone:');
  const db = new sqlite.Database(join(dir, 'member.sqlite'));
  const all = (sql: string, params: unknown[]) => new Promise<unknown[]>((resolve, reject) => db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows ?? []))));
  const exec = (sql: string) => new Promise<void>((resolve, reject) => db.exec(sql, (err) => (err ? reject(err) : resolve())));
  const run = (sql: string, params: unknown[]) => new Promise<void>((resolve, reject) => db.run(sql, params, (err) => (err ? reject(err) : resolve())));
  await exec('PRAGMA synchronous = NORMAL');
  await time('db.all with a bound parameter', (i) => all('SELECT key, value FROM things WHERE key = ?', [key(i)]));
  await time('BEGIN IMMEDIATE; INSERT; COMMIT', async (i) => {
    await exec('BEGIN IMMEDIATE');
    await run('INSERT INTO things (key, value) VALUES (?, ?)', [`d${i}-${process.hrtime.bigint()}`, 'y']);
    await exec('COMMIT');
  });
  await new Promise<void>((resolve) => db.close(() => resolve()));

  console.log(' better-sqlite3 alone:');
  const raw = new BetterSqlite3(join(dir, 'member.sqlite'));
  const prepared = raw.prepare('SELECT key, value FROM things WHERE key = ?');
  await time('prepared statement', async (i) => prepared.all(key(i)));
  const insert = raw.prepare('INSERT INTO things (key, value) VALUES (?, ?)');
  await time('transaction with one INSERT', async (i) => raw.transaction(() => insert.run(`r${i}-${process.hrtime.bigint()}`, 'y')).immediate());
  raw.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
