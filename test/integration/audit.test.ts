import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Server } from 'node:http';
import { QueryTypes } from 'sequelize';
import { appendAccess, entryHash, GENESIS_HASH, protectAppendOnly, type AccessInput } from '../../shared/access-log/chain.ts';
import { CHECKPOINT_TABLE, createCheckpoint, defineCheckpoints, witnessCheckpoint } from '../../shared/access-log/verify.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { completeMyNumber } from '../../shared/identifiers.ts';
import type { Signer } from '../../shared/federation/messages.ts';
import { closeServer, listen } from '../../shared/platform/server.ts';
import { auditRoutes } from '../../services/municipality/access-log/routes.ts';
import { authRoutes } from '../../services/municipality/staff/routes.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';
import { auditVerifyDatabaseArgs, liftAppendOnlySql, memberDatabase, openMemberDatabase, rawSqlAsOwner } from '../fixtures/database.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

type DatabaseEnv = { DATABASE_PATH?: string; DATABASE_URL?: string };

/**
 * Runs the real CLI as a separate process, as an auditor would. Members on PostgreSQL have no file
 * in the data folder: their databases are named with --database.
 */
async function cli(member: string, dataDir: string, databases: Record<string, DatabaseEnv> = {}): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/audit-verify.ts'), member, '--data-dir', dataDir, ...auditVerifyDatabaseArgs(databases)], { cwd: ROOT });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

/**
 * Raw SQL on the database past the application: on SQLite through a connection of its own on the FILE,
 * on PostgreSQL through a plain client with the owner role's credentials. An attacker's access, not ours.
 */
const sqlOnFile = rawSqlAsOwner;

/** Drops (SQLite) or disables (PostgreSQL, as the tables' owner) the append-only triggers. */
const DROP_TRIGGERS = liftAppendOnlySql(['access_log', 'checkpoints']);

/** A value as an SQL literal; dates (PostgreSQL timestamps come back as Date) in ISO 8601. */
const sqlLiteral = (v: unknown): string =>
  (v === null || v === undefined ? 'NULL' : `'${(v instanceof Date ? v.toISOString() : String(v)).replace(/'/g, "''")}'`);

let myNumberSeq = 10_000_000;
async function createResident(m: RunningMunicipality, clerk: string, name = '俵本 花子'): Promise<string> {
  const res = await api('POST', `${m.url}/residents`, {
    token: clerk,
    body: { name, kana: 'タワラモト ハナコ', birthDate: '1990-04-01', sex: 'female', address: '奈良県磯城郡田原本町890', myNumber: completeMyNumber(String(++myNumberSeq).padStart(11, '1')) },
  });
  expect(res.status, JSON.stringify(res.body)).to.equal(201);
  return res.body.addresseeNumber;
}

/** An entry as the exchange writes it when another municipality's query is answered here. */
const memberEntry = (subject: string, extra: Partial<AccessInput> = {}): AccessInput => ({
  actorType: 'member', actorId: '343692', actorRole: 'staff:remote-7', actingMunicipality: '343692', subject,
  action: Actions.QUERY_ANSWER, purpose: 'next-dose-scheduling', legalBasis: 'consent', outcome: 'allowed', requestId: 'rid-cross-0001', ...extra,
});

async function plant(m: RunningMunicipality, entries: AccessInput[]): Promise<void> {
  await m.ctx.sequelize.transaction(async (t) => {
    for (const e of entries) await appendAccess(m.ctx.models.AccessLog, t, e);
  });
}

const lastEntry = async (m: RunningMunicipality) => (await m.ctx.models.AccessLog.findOne({ order: [['seq', 'DESC']], raw: true }))!;

/** A member signing key of the federation's kind (EC P-256), outside any PKI. */
function testSigner(id: string): Signer & { publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { id, key: privateKey, kid: `${id}-test`, publicKey };
}

describe('privacy officer access-log API', () => {
  let root: string;
  let m: RunningMunicipality;
  let officer: string;
  let clerk: string;
  let residents: string[];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hikitsugi-audit-'));
    m = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto, { dir: join(root, 'data', '293610') });
    officer = await m.tokenFor('privacy_officer');
    clerk = await m.tokenFor('clerk');
    residents = [await createResident(m, clerk), await createResident(m, clerk, '俵本 太郎')];
    await api('GET', `${m.url}/residents/${residents[0]}`, { token: clerk });
    await plant(m, [
      memberEntry(residents[0]!, { legalBasis: 'life-protection', flags: ['life-protection'], requestId: 'rid-life-0001' }),
      memberEntry(residents[1]!, { outcome: 'denied', reason: 'identity_mismatch', flags: ['identity_mismatch'], requestId: 'rid-mismatch-01' }),
      memberEntry(residents[1]!, { outcome: 'denied', reason: 'no_consent', purpose: 'certificate-issuance' }),
    ]);
  });
  after(async () => {
    await m.stop();
    removeDir(root);
  });

  it('when a clerk asks for the log, then 403; without a token, then 401; a privacy officer gets 403 on resident and vaccination routes', async () => {
    expect((await api('GET', `${m.url}/audit/entries`)).status).to.equal(401);
    const asClerk = await api('GET', `${m.url}/audit/entries`, { token: clerk });
    expect(asClerk.status).to.equal(403);
    expect(asClerk.headers.get('content-type')).to.match(/problem\+json/);
    expect((await api('POST', `${m.url}/audit/verify`, { token: clerk })).status).to.equal(403);
    expect((await api('GET', `${m.url}/audit/export.csv`, { token: clerk })).status).to.equal(403);
    expect((await api('GET', `${m.url}/residents/${residents[0]}`, { token: officer })).status).to.equal(403);
    expect((await api('GET', `${m.url}/residents/${residents[0]}/vaccinations`, { token: officer })).status).to.equal(403);
  });

  it('when entries are filtered by resident, staff, action, outcome, purpose, basis, flag and request id, then only matching entries come back', async () => {
    const q = async (query: string) => {
      const res = await api('GET', `${m.url}/audit/entries?${query}`, { token: officer });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return res.body.entries as { seq: number; subject: string; actorId: string; action: string; outcome: string; legalBasis: string; purpose: string; reason: string; requestId: string }[];
    };
    const bySubject = await q(`subject=${residents[1]}`);
    expect(bySubject.length).to.be.greaterThan(0);
    expect(bySubject.every((e) => e.subject === residents[1])).to.equal(true);
    const byActor = await q('actor=343692');
    expect(byActor).to.have.length(3);
    expect((await q('action=resident.create')).map((e) => e.subject).sort()).to.deep.equal([...residents].sort());
    expect((await q('outcome=denied')).every((e) => e.outcome === 'denied')).to.equal(true);
    expect((await q('purpose=certificate-issuance')).map((e) => e.reason)).to.deep.equal(['no_consent']);
    expect((await q('legalBasis=life-protection')).map((e) => e.requestId)).to.deep.equal(['rid-life-0001']);
    expect((await q('flag=life-protection')).map((e) => e.requestId)).to.deep.equal(['rid-life-0001']);
    expect((await q('flag=identity_mismatch')).map((e) => e.requestId)).to.deep.equal(['rid-mismatch-01']);
    expect((await q('flag=denied')).map((e) => e.reason).sort()).to.deep.equal(['identity_mismatch', 'no_consent']);
    expect((await q('requestId=rid-mismatch-01')).map((e) => e.reason)).to.deep.equal(['identity_mismatch']);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect(await q(`from=${encodeURIComponent(future)}`)).to.deep.equal([]);
    expect((await q(`to=${encodeURIComponent(future)}&action=resident.create`))).to.have.length(2);
  });

  it('when the log is paged with a cursor, then pages are newest first, disjoint and complete', async () => {
    const seen: number[] = [];
    let cursor: number | null = null;
    const total = await m.ctx.models.AccessLog.count();
    do {
      const res: { status: number; body: { entries: { seq: number }[]; nextCursor: number | null } } = await api('GET', `${m.url}/audit/entries?limit=3${cursor ? `&cursor=${cursor}` : ''}&to=${encodeURIComponent(new Date().toISOString())}`, { token: officer });
      expect(res.status).to.equal(200);
      expect(res.body.entries.length).to.be.at.most(3);
      seen.push(...res.body.entries.map((e: { seq: number }) => e.seq));
      cursor = res.body.nextCursor;
    } while (cursor !== null);
    expect(seen).to.deep.equal([...seen].sort((a, b) => b - a));
    expect(new Set(seen).size).to.equal(seen.length);
    expect(seen.length).to.be.at.least(total - 1);
    expect(seen.at(-1)).to.equal(1);
  });

  it('when a filter is malformed, then 400 problem+json names the field and rule, and nothing is logged', async () => {
    const before = await m.ctx.models.AccessLog.count();
    for (const [query, field] of [
      ['limit=500', 'limit'], ['limit=abc', 'limit'], ['flag=urgent', 'flag'], ['outcome=maybe', 'outcome'], ['from=yesterday', 'from'],
      [`from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z`, 'to'], ['subject=123456789018', 'subject'], ['colour=red', 'query'], ['cursor=0', 'cursor'],
    ] as const) {
      const res = await api('GET', `${m.url}/audit/entries?${query}`, { token: officer });
      expect(res.status, query).to.equal(400);
      expect(res.headers.get('content-type')).to.match(/problem\+json/);
      expect(res.body.field, query).to.equal(field);
      expect(res.body.rule).to.be.a('string').and.not.equal('');
    }
    expect(res400NeverEchoesMyNumber(await api('GET', `${m.url}/audit/entries?subject=123456789018`, { token: officer }))).to.equal(true);
    expect(await m.ctx.models.AccessLog.count()).to.equal(before);
  });

  it('when a privacy officer reads the log, then that reading is itself logged as audit.read', async () => {
    await api('GET', `${m.url}/audit/entries?subject=${residents[0]}`, { token: officer });
    const entry = await lastEntry(m);
    expect(entry).to.include({ action: 'audit.read', actorRole: 'privacy_officer', subject: residents[0], outcome: 'allowed' });
  });

  it('when one entry is opened and its request id followed, then the entry and its trace come back; unknown ones are 404', async () => {
    const [planted] = (await api('GET', `${m.url}/audit/entries?requestId=rid-life-0001`, { token: officer })).body.entries;
    const one = await api('GET', `${m.url}/audit/entries/${planted.seq}`, { token: officer });
    expect(one.status).to.equal(200);
    expect(one.body).to.include({ seq: planted.seq, requestId: 'rid-life-0001', legalBasis: 'life-protection' });
    expect(one.body.flags).to.deep.equal(['life-protection']);
    expect(one.body.hash).to.match(/^[0-9a-f]{64}$/);
    const trace = await api('GET', `${m.url}/audit/trace/rid-life-0001`, { token: officer });
    expect(trace.status).to.equal(200);
    expect(trace.body.hops[0].member).to.equal('293610');
    expect(trace.body.hops[0].entries.map((e: { seq: number }) => e.seq)).to.deep.equal([planted.seq]);
    expect((await api('GET', `${m.url}/audit/entries/999999`, { token: officer })).status).to.equal(404);
    expect((await api('GET', `${m.url}/audit/entries/abc`, { token: officer })).status).to.equal(400);
    expect((await api('GET', `${m.url}/audit/trace/no-such-request`, { token: officer })).status).to.equal(404);
  });

  it('when the log is exported, then it is RFC 4180 CSV with formula cells neutralised, and the export is logged', async () => {
    await plant(m, [memberEntry(residents[0]!, { reason: '=HYPERLINK("http://evil.example","x")', requestId: 'rid-csv-00001', outcome: 'denied' })]);
    const res = await fetch(`${m.url}/audit/export.csv?requestId=rid-csv-00001`, { headers: { authorization: `Bearer ${officer}` } });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/csv/);
    expect(res.headers.get('content-disposition')).to.match(/attachment; filename="?access-log-293610-\d{4}-\d{2}-\d{2}\.csv"?/);
    const text = (await res.text()).replace(/^\uFEFF/, '');
    const lines = text.split('\r\n');
    expect(lines[0]).to.match(/^seq,at,requestId,actorType,actorId/);
    expect(lines).to.have.length(3); // header, one record, the empty string after the last CRLF
    expect(lines[1]).to.include(`"'=HYPERLINK(""http://evil.example"",""x"")"`);
    expect(lines[2]).to.equal('');
    expect(await lastEntry(m)).to.include({ action: 'audit.export', actorRole: 'privacy_officer' });
    const bad = await api('GET', `${m.url}/audit/export.csv?flag=nope`, { token: officer });
    expect(bad.status).to.equal(400);
    expect(bad.body.field).to.equal('flag');
  });

  it('when the log is intact, then POST /audit/verify reports OK and the verification is logged', async () => {
    const res = await api('POST', `${m.url}/audit/verify`, { token: officer });
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ ok: true, member: '293610' });
    expect(res.body.entries).to.be.greaterThan(5);
    expect(await lastEntry(m)).to.include({ action: 'audit.verify' });
  });

  it('when no signing key or gateway is configured, then checkpoints and reconciliation answer 503 problems naming what is missing', async () => {
    const cp = await api('POST', `${m.url}/audit/checkpoints`, { token: officer });
    expect(cp.status).to.equal(503);
    expect(cp.body.type).to.match(/signing-key-unavailable$/);
    const rec = await api('POST', `${m.url}/audit/reconcile`, { token: officer, body: {} });
    expect(rec.status).to.equal(503);
    expect(rec.body.field).to.equal('GATEWAY_URL');
    const badRange = await api('POST', `${m.url}/audit/reconcile`, { token: officer, body: { from: 'soon' } });
    expect(badRange.status).to.equal(400);
    expect(badRange.body.field).to.equal('from');
  });
});

/** The problem names the field, never the value, not even in its `instance` URL. */
function res400NeverEchoesMyNumber(res: { body: Record<string, unknown> }): boolean {
  return !JSON.stringify(res.body).includes('123456789018');
}

describe('tampering with a municipality database file', () => {
  let root: string;
  const started: RunningMunicipality[] = [];

  /**
   * A running instance in the `npm start` layout data/<code>/<code>.sqlite, with a few entries.
   * `file` is where its data is: the SQLite file, or its PostgreSQL database (DATABASE_URL).
   */
  async function instance(): Promise<{ m: RunningMunicipality; file: DatabaseEnv; dataDir: string; officer: string; databases: Record<string, DatabaseEnv> }> {
    const dataDir = mkdtempSync(join(root, 'data-'));
    const m = await startMunicipality(DEMO_MUNICIPALITIES.akiota, { dir: join(dataDir, '343692') });
    started.push(m);
    const clerk = await m.tokenFor('clerk');
    const resident = await createResident(m, clerk);
    for (let i = 0; i < 4; i++) await api('GET', `${m.url}/residents/${resident}`, { token: clerk });
    const file = m.ctx.config.DATABASE_URL ? { DATABASE_URL: m.ctx.config.DATABASE_URL } : { DATABASE_PATH: join(dataDir, '343692', '343692.sqlite') };
    return { m, file, dataDir, officer: await m.tokenFor('privacy_officer'), databases: { '343692': file } };
  }

  const verify = async (url: string, token: string) => (await api('POST', `${url}/audit/verify`, { token })).body;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'hikitsugi-tamper-'));
  });
  after(async () => {
    for (const m of started) await m.stop();
    removeDir(root);
  });

  it('when the triggers are in place, then UPDATE and DELETE on the file are refused', async () => {
    const { file } = await instance();
    for (const sql of ['UPDATE access_log SET subject = NULL WHERE seq = 2', 'DELETE FROM access_log WHERE seq = 2']) {
      let message = '';
      await sqlOnFile(file, sql).catch((err: Error) => { message = err.message; });
      expect(message, sql).to.match(/append-only/);
    }
  });

  it('when a field of one row is edited in the file, then the API and the CLI name that entry', async () => {
    const { m, file, dataDir, officer, databases } = await instance();
    expect((await cli('343692', dataDir, databases)).code).to.equal(0);
    await sqlOnFile(file, `${DROP_TRIGGERS} UPDATE access_log SET "actorId" = 'someone-else' WHERE seq = 3;`);
    const report = await verify(m.url, officer);
    expect(report.ok).to.equal(false);
    expect(report.broken).to.include({ seq: 3, kind: 'hash-mismatch' });
    const out = await cli('343692', dataDir, databases);
    expect(out.code).to.equal(1);
    expect(out.out).to.match(/BROKEN 343692: first broken entry seq 3 \(hash-mismatch\)/);
  });

  it('when a row is deleted from the file, then the missing seq is named', async () => {
    const { m, file, dataDir, officer, databases } = await instance();
    await sqlOnFile(file, `${DROP_TRIGGERS} DELETE FROM access_log WHERE seq = 2;`);
    expect((await verify(m.url, officer)).broken).to.include({ seq: 2, kind: 'missing-entry' });
    expect((await cli('343692', dataDir, databases)).out).to.match(/seq 2 \(missing-entry\)/);
  });

  it('when two rows are reordered in the file, then the first moved entry is named', async () => {
    const { m, file, dataDir, officer, databases } = await instance();
    await sqlOnFile(file, `${DROP_TRIGGERS} UPDATE access_log SET seq = -1 WHERE seq = 2; UPDATE access_log SET seq = 2 WHERE seq = 4; UPDATE access_log SET seq = 4 WHERE seq = -1;`);
    expect((await verify(m.url, officer)).broken).to.include({ seq: 2, kind: 'reordered', actual: 4 });
    expect((await cli('343692', dataDir, databases)).out).to.match(/seq 2 \(reordered\)/);
  });

  it('when the municipality rewrites and re-hashes its chain and its own checkpoints, then the checkpoint in the gateway file catches it', async () => {
    const { m, file, dataDir, officer, databases } = await instance();
    const signer = testSigner('343692');
    const gatewaySigner = testSigner('gateway');

    // A staff app with a signing key, on the same database: POST /audit/checkpoints signs the head.
    const app = createBaseApp(m.ctx.logger);
    app.use(authRoutes(m.ctx));
    app.use(auditRoutes(m.ctx, { signer }));
    app.use(notFoundHandler);
    app.use(errorHandler(m.ctx.logger));
    const { server, url } = await listen(app, 0);
    let checkpoint: { seq: number; hash: string; jws: string };
    try {
      const made = await api('POST', `${url}/audit/checkpoints`, { token: officer });
      expect(made.status).to.equal(201);
      checkpoint = made.body.checkpoint;
      expect(checkpoint.seq).to.be.greaterThan(3);
      expect(await lastEntry(m)).to.include({ action: 'audit.checkpoint' });
      expect((await api('GET', `${url}/audit/checkpoints`, { token: officer })).body.checkpoints).to.have.length(1);
    } finally {
      await closeServer(server as Server);
    }

    // The gateway witnesses it and keeps its own copy in its own database file (or PostgreSQL database).
    const gatewayDatabase = memberDatabase('gateway', join(dataDir, 'gateway', 'gateway.sqlite'));
    databases.gateway = gatewayDatabase;
    const gateway = await openMemberDatabase(gatewayDatabase);
    const Checkpoints = defineCheckpoints(gateway);
    await gateway.sync();
    await protectAppendOnly(gateway, CHECKPOINT_TABLE);
    await witnessCheckpoint({ Checkpoints, witness: gatewaySigner, from: '343692', memberKey: signer.publicKey, jws: checkpoint.jws });
    await gateway.close();

    // The rewrite, done on the stopped instance's file: one subject changed, every hash recomputed,
    // own checkpoints replaced by a fresh one over the new head.
    await m.stop();
    started.splice(started.indexOf(m), 1);
    const db = await openMemberDatabase(file);
    await sqlOnFile(file, DROP_TRIGGERS);
    const rows = await db.query<Record<string, unknown> & { seq: number; prevHash: string; hash: string }>('SELECT * FROM access_log ORDER BY seq', { type: QueryTypes.SELECT });
    let prev = GENESIS_HASH;
    const statements = ['DELETE FROM access_log;', 'DELETE FROM checkpoints;'];
    for (const r of rows) {
      const row: Record<string, unknown> & { prevHash: string; hash: string } = r.seq === 2 ? { ...r, subject: '0000000000' } : { ...r };
      row.prevHash = prev;
      row.hash = entryHash(prev, row as never);
      prev = row.hash;
      const cols = Object.keys(row);
      statements.push(`INSERT INTO access_log (${cols.map((c) => `"${c}"`).join(',')}) VALUES (${cols.map((c) => sqlLiteral(row[c])).join(',')});`);
    }
    await db.close();
    await sqlOnFile(file, statements.join('\n'));
    const reopened = await openMemberDatabase(file);
    await createCheckpoint(reopened, defineCheckpoints(reopened), signer);
    await reopened.close();

    const out = await cli('343692', dataDir, databases);
    expect(out.code).to.equal(1);
    expect(out.out).to.match(new RegExp(`first broken entry seq ${checkpoint.seq} \\(checkpoint-contradiction\\)`));
    expect(out.out).to.match(/held by gateway/);
  });
});
