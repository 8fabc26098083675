import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueryTypes } from 'sequelize';
import { openDatabase, SQLITE_BUSY_TIMEOUT_MS } from '../../shared/platform/db.ts';

describe('SQLite connection settings', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'hikitsugi-db-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('when a transaction runs (its own connection), then WAL, foreign keys, the driver\'s busy wait and synchronous=NORMAL hold on it, and SQLite itself never waits on the thread', async () => {
    const sequelize = await openDatabase({ storage: join(dir, 'a.sqlite') });
    try {
      const pragma = (name: string, transaction: never) => sequelize.query<Record<string, unknown>>(`PRAGMA ${name}`, { type: QueryTypes.SELECT, transaction });
      const seen = await sequelize.transaction(async (t) => ({
        driverWait: (t as unknown as { connection: { busyTimeoutMs: number } }).connection.busyTimeoutMs,
        journal: (await pragma('journal_mode', t as never))[0]?.journal_mode,
        fk: (await pragma('foreign_keys', t as never))[0]?.foreign_keys,
        busy: (await pragma('busy_timeout', t as never))[0]?.timeout,
        sync: (await pragma('synchronous', t as never))[0]?.synchronous,
      }));
      expect(seen).to.deep.equal({ driverWait: SQLITE_BUSY_TIMEOUT_MS, journal: 'wal', fk: 1, busy: 0, sync: 1 });
    } finally {
      await sequelize.close();
    }
  });

  it('when many transactions write at once, then none fails with SQLITE_BUSY', async () => {
    const sequelize = await openDatabase({ storage: join(dir, 'b.sqlite') });
    try {
      await sequelize.query('CREATE TABLE counter (n INTEGER)');
      await Promise.all(Array.from({ length: 40 }, () => sequelize.transaction(async (t) => {
        await sequelize.query('SELECT COUNT(*) FROM counter', { transaction: t });
        await sequelize.query('INSERT INTO counter (n) VALUES (1)', { transaction: t });
      })));
      const [row] = await sequelize.query<{ c: number }>('SELECT COUNT(*) AS c FROM counter', { type: QueryTypes.SELECT });
      expect(row?.c).to.equal(40);
    } finally {
      await sequelize.close();
    }
  });

  it('when transactions reuse a connection, then a rolled-back one leaves nothing behind, the next sees only committed rows, and few connections stay open', async () => {
    const sequelize = await openDatabase({ storage: join(dir, 'c.sqlite') });
    try {
      await sequelize.query('CREATE TABLE entries (n INTEGER)');
      const failures: string[] = [];
      for (let i = 0; i < 30; i++) {
        await sequelize.transaction(async (t) => {
          await sequelize.query('INSERT INTO entries (n) VALUES (:i)', { transaction: t, replacements: { i } });
          if (i % 3 === 0) throw new Error(`refused ${i}`);
        }).catch((err: Error) => failures.push(err.message));
      }
      // After a failure the reused connection must not still be inside the failed transaction.
      const inTransaction = await sequelize.transaction(async (t) => {
        await sequelize.query('INSERT INTO entries (n) VALUES (100)', { transaction: t });
        return sequelize.query<{ c: number }>('SELECT COUNT(*) AS c FROM entries', { type: QueryTypes.SELECT, transaction: t });
      });
      expect(failures).to.have.length(10);
      expect(inTransaction[0]?.c).to.equal(21);
      const [row] = await sequelize.query<{ c: number }>('SELECT COUNT(*) AS c FROM entries WHERE n % 3 = 0 AND n < 30', { type: QueryTypes.SELECT });
      expect(row?.c, 'rolled-back rows').to.equal(0);
      const open = Object.keys((sequelize.connectionManager as unknown as { connections: Record<string, unknown> }).connections);
      expect(open.length, open.join(',')).to.be.at.most(1);
    } finally {
      await sequelize.close();
    }
  });
});
