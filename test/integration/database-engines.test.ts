/**
 * The schema comes from migrations only, the same on SQLite and PostgreSQL: each member kind's
 * migrations make exactly the tables, columns and indexes its models use; an applied migration is
 * not applied twice; a database made before migrations is adopted with its rows. The engine-
 * dependent guarantees hold on whichever engine the suite runs (TEST_DATABASE_URL = PostgreSQL):
 * append-only tables refuse UPDATE and DELETE, and parallel writers never give two entries one
 * predecessor. On PostgreSQL, one member's role cannot read another member's database.
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataTypes, QueryTypes, type ModelStatic, type Model, type Sequelize } from 'sequelize';
import pg from 'pg';
import { defineModels } from '../../services/municipality/models.ts';
import { MUNICIPALITY_MIGRATIONS } from '../../services/municipality/migrations/index.ts';
import { defineGatewayModels } from '../../gateway/models.ts';
import { GATEWAY_MIGRATIONS } from '../../gateway/migrations/index.ts';
import { ISSUER_MIGRATIONS } from '../../services/issuer/migrations/index.ts';
import { ACCESS_LOG_TABLE, appendAccess, defineAccessLog } from '../../shared/access-log/chain.ts';
import { CHECKPOINT_TABLE, defineCheckpoints, verifyChain } from '../../shared/access-log/verify.ts';
import { WITNESSED_HEADS_TABLE, defineWitnessedHeads } from '../../shared/access-log/heads.ts';
import { migrate, MIGRATIONS_TABLE, type Migration } from '../../shared/platform/migrate.ts';
import { REVOCATION_LIST_TABLE } from '../../shared/federation/revocation.ts';
import { memberDatabase, onPostgres, openMemberDatabase } from '../fixtures/database.ts';

const root = mkdtempSync(join(tmpdir(), 'hikitsugi-engines-'));
let made = 0;
const freshDatabase = (member: string) => memberDatabase(member, join(root, `${member}-${++made}.sqlite`));

interface Kind {
  name: string;
  migrations: Migration[];
  models(sequelize: Sequelize): Record<string, ModelStatic<Model>>;
  appendOnly: string[];
}

const KINDS: Kind[] = [
  {
    name: 'municipality', migrations: MUNICIPALITY_MIGRATIONS, models: (s) => defineModels(s) as never,
    appendOnly: [ACCESS_LOG_TABLE, CHECKPOINT_TABLE, WITNESSED_HEADS_TABLE, 'alerts', 'correction_notices', 'resident_notices', 'received_consent_revocations'],
  },
  { name: 'gateway', migrations: GATEWAY_MIGRATIONS, models: (s) => defineGatewayModels(s) as never, appendOnly: [ACCESS_LOG_TABLE, CHECKPOINT_TABLE, WITNESSED_HEADS_TABLE, 'alerts', 'revoked_consents'] },
  {
    name: 'issuer', migrations: ISSUER_MIGRATIONS, models: (s) => ({ AccessLog: defineAccessLog(s), Checkpoint: defineCheckpoints(s), WitnessedHead: defineWitnessedHeads(s) }) as never,
    appendOnly: [ACCESS_LOG_TABLE, CHECKPOINT_TABLE, WITNESSED_HEADS_TABLE],
  },
];

async function indexNames(sequelize: Sequelize, table: string): Promise<string[]> {
  const indexes = (await sequelize.getQueryInterface().showIndex(table)) as { name: string }[];
  return indexes.map((i) => i.name);
}

async function rowCount(sequelize: Sequelize, table: string): Promise<number> {
  const [row] = await sequelize.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM "${table}"`, { type: QueryTypes.SELECT });
  return Number(row!.n);
}

describe(`database engines (${onPostgres ? 'PostgreSQL' : 'SQLite'}): migrations, append-only tables, parallel writers, separation`, () => {
  after(() => rmSync(root, { recursive: true, force: true }));
  for (const kind of KINDS) {
    it(`when a ${kind.name}'s migrations run on an empty database, then every model's table, column and index exists as the model says, and a second run applies nothing`, async () => {
      const db = await openMemberDatabase(freshDatabase(kind.name));
      try {
        expect(await migrate(db, kind.migrations)).to.deep.equal(kind.migrations.map((m) => m.name));
        expect(await migrate(db, kind.migrations)).to.deep.equal([]);
        const models = kind.models(db);
        const tables = new Set((await db.getQueryInterface().showAllTables()).map(String));
        // Tables read through plain SQL rather than a model: the migrations table and the revocation lists kept.
        expect([...tables].sort()).to.deep.equal([...new Set([...Object.values(models).map((m) => m.getTableName() as string), MIGRATIONS_TABLE, REVOCATION_LIST_TABLE])].sort());
        for (const model of Object.values(models)) {
          const table = model.getTableName() as string;
          const described = await db.getQueryInterface().describeTable(table);
          const attributes = model.getAttributes() as Record<string, { primaryKey?: boolean; allowNull?: boolean; type: { key: string; options?: { length?: number } } }>;
          expect(Object.keys(described).sort(), table).to.deep.equal(Object.keys(attributes).sort());
          for (const [column, attribute] of Object.entries(attributes)) {
            expect(described[column]!.primaryKey, `${table}.${column} primary key`).to.equal(Boolean(attribute.primaryKey));
            // PostgreSQL enforces VARCHAR lengths (SQLite does not): the migration's length is the model's.
            if (attribute.type.key === 'STRING') {
              expect(/\((\d+)\)/.exec(described[column]!.type)?.[1], `${table}.${column} length`).to.equal(String(attribute.type.options?.length ?? 255));
            }
            if (attribute.allowNull === false && !attribute.primaryKey) expect(described[column]!.allowNull, `${table}.${column} NOT NULL`).to.equal(false);
          }
          const names = await indexNames(db, table);
          for (const index of (model.options.indexes ?? []) as { name?: string }[]) {
            if (index.name) expect(names, `${table} index ${index.name}`).to.include(index.name);
          }
          const expected = ((model.options.indexes ?? []) as unknown[]).length;
          expect(names.length, `${table} has its model's indexes`).to.be.at.least(expected);
        }
        // Each append-only table refuses UPDATE and DELETE at the database (rows or none: the trigger is there).
        for (const table of kind.appendOnly) {
          const trigger = onPostgres
            ? await db.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = '"${table}"'::regclass AND NOT tgisinternal`, { type: QueryTypes.SELECT })
            : await db.query(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table`, { type: QueryTypes.SELECT, replacements: { table } });
          expect(trigger.length, `${table} protected`).to.be.at.least(1);
        }
      } finally {
        await db.close();
      }
    });
  }

  it('when entries are appended and someone tries UPDATE or DELETE on the access log, then the database refuses both and the entries stay', async () => {
    const db = await openMemberDatabase(freshDatabase('issuer'));
    try {
      await migrate(db, ISSUER_MIGRATIONS);
      const log = defineAccessLog(db);
      await db.transaction((t) => appendAccess(log, t, { actorType: 'system', actorId: 'test', action: 'probe', outcome: 'allowed' }));
      const refusals: string[] = [];
      for (const sql of [`UPDATE ${ACCESS_LOG_TABLE} SET "action" = 'rewritten'`, `DELETE FROM ${ACCESS_LOG_TABLE}`]) {
        await db.query(sql).then(() => refusals.push('accepted'), (err: Error & { parent?: Error }) => refusals.push(err.parent?.message ?? err.message));
      }
      expect(refusals).to.have.length(2);
      for (const r of refusals) expect(r).to.match(/append-only/);
      expect(await rowCount(db, ACCESS_LOG_TABLE)).to.equal(1);
    } finally {
      await db.close();
    }
  });

  it('when a database was made by an earlier version (sync, no migrations table), then the first migration adopts it: rows kept, migration recorded', async () => {
    const env = freshDatabase('gateway');
    const before = await openMemberDatabase(env);
    defineGatewayModels(before);
    await before.sync();
    const log = defineAccessLog(before);
    await before.transaction((t) => appendAccess(log, t, { actorType: 'system', actorId: 'test', action: 'before-migrations', outcome: 'allowed' }));
    await before.close();
    const db = await openMemberDatabase(env);
    try {
      expect(await migrate(db, GATEWAY_MIGRATIONS)).to.deep.equal(GATEWAY_MIGRATIONS.map((m) => m.name));
      expect(await rowCount(db, ACCESS_LOG_TABLE)).to.equal(1);
      expect(await rowCount(db, MIGRATIONS_TABLE)).to.equal(GATEWAY_MIGRATIONS.length);
      const refused = await db.query(`DELETE FROM ${ACCESS_LOG_TABLE}`).then(() => 'deleted', (err: { message: string; parent?: Error }) => (err.parent ?? err).message);
      expect(refused, 'the adopted log is append-only').to.match(/append-only/);
    } finally {
      await db.close();
    }
  });

  it('when a migration fails half-way, then neither its tables nor its record stay, and the next start applies it whole', async () => {
    const db = await openMemberDatabase(freshDatabase('issuer'));
    try {
      let fail = true;
      const halfWay: Migration = {
        name: '0001-half-way',
        async up(schema) {
          await schema.createTable('half_way', { id: { type: DataTypes.INTEGER, primaryKey: true } });
          if (fail) throw new Error('stopped after the first table');
          await schema.createTable('second_half', { id: { type: DataTypes.INTEGER, primaryKey: true } });
        },
      };
      let failure: Error | undefined;
      await migrate(db, [halfWay]).catch((err: Error) => { failure = err; });
      expect(failure?.message).to.equal('stopped after the first table');
      const tablesAfterFailure = (await db.getQueryInterface().showAllTables()).map(String);
      expect(tablesAfterFailure).to.not.include('half_way');
      expect(await rowCount(db, MIGRATIONS_TABLE)).to.equal(0);
      fail = false;
      expect(await migrate(db, [halfWay])).to.deep.equal(['0001-half-way']);
      expect((await db.getQueryInterface().showAllTables()).map(String)).to.include.members(['half_way', 'second_half']);
      expect(await migrate(db, [halfWay])).to.deep.equal([]);
    } finally {
      await db.close();
    }
  });

  it('when four writers with their own connections append 200 entries in parallel, then the chain verifies and no two entries share a predecessor', async () => {
    const env = freshDatabase('issuer');
    const first = await openMemberDatabase(env);
    await migrate(first, ISSUER_MIGRATIONS);
    await first.close();
    const writers = await Promise.all([1, 2, 3, 4].map(async () => {
      const db = await openMemberDatabase(env);
      return { db, log: defineAccessLog(db) };
    }));
    try {
      await Promise.all(writers.map(({ db, log }, w) => Promise.all(Array.from({ length: 50 }, (_, i) =>
        db.transaction((t) => appendAccess(log, t, { actorType: 'system', actorId: `writer-${w}`, action: 'parallel', outcome: 'allowed', subject: String(i) })),
      ))));
      const db = writers[0]!.db;
      const links = await db.query<{ n: number | string; distinct: number | string }>(
        `SELECT COUNT(*) AS n, COUNT(DISTINCT "prevHash") AS "distinct" FROM ${ACCESS_LOG_TABLE}`, { type: QueryTypes.SELECT },
      );
      expect(Number(links[0]!.n)).to.equal(200);
      expect(Number(links[0]!.distinct)).to.equal(200);
      const report = await verifyChain(db, { member: 'issuer' });
      expect(report.ok, JSON.stringify(report.broken)).to.equal(true);
      expect(report.entries).to.equal(200);
    } finally {
      await Promise.all(writers.map((w) => w.db.close()));
    }
  });

  it('when municipality A\'s role connects to municipality B\'s database, then PostgreSQL refuses it (SQLite: separate files, shown by the isolation suite)', async function () {
    if (!onPostgres) this.skip();
    const a = new URL(freshDatabase('293610').DATABASE_URL!);
    const b = new URL(freshDatabase('343692').DATABASE_URL!);
    // A's own database works with A's credentials, and B's tables exist.
    const own = new pg.Client({ connectionString: a.toString() });
    await own.connect();
    await own.query('CREATE TABLE residents_probe (id int)');
    await own.end();
    const bDb = await openMemberDatabase({ DATABASE_URL: b.toString() });
    await migrate(bDb, MUNICIPALITY_MIGRATIONS);
    await bDb.close();
    // A's role and password, B's database name.
    const crossed = new URL(a.toString());
    crossed.pathname = b.pathname;
    const intruder = new pg.Client({ connectionString: crossed.toString() });
    const refused = await intruder.connect().then(async () => {
      const rows = await intruder.query('SELECT COUNT(*) FROM residents').then(() => 'read', (err: Error) => err.message);
      await intruder.end();
      return rows;
    }, (err: Error) => err.message);
    expect(refused).to.match(/permission denied for database/);
  });

  it('when the production code is read, then no member prepares its schema with sync(): migrations only', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) walk(path);
        else if (path.endsWith('.ts') && /\.sync\(/.test(readFileSync(path, 'utf8'))) offenders.push(path);
      }
    };
    for (const dir of ['services', 'gateway', 'shared']) walk(dir);
    expect(offenders).to.deep.equal([]);
  });
});
