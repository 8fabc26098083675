/**
 * The gateway's side of the tamper-evident logs, over real mTLS on loopback: a real gateway and
 * issuer and a real federated municipality (Tawaramoto) in-process, each with its own SQLite file
 * in the `npm start` layout <data>/<member>/<member>.sqlite (or, with TEST_DATABASE_URL, its own
 * PostgreSQL database, named to audit:verify with --database). Checkpoints are witnessed by the
 * gateway, the gateway's own checkpoints are kept by the municipality, reconciliation and traces
 * read the gateway's entries, and the gateway's privacy officers have their own console API.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { QueryTypes } from 'sequelize';
import { gatewayConfigSchema } from '../../gateway/config.ts';
import { GatewayActions } from '../../gateway/access-log/actions.ts';
import { seedGatewayStaff } from '../../gateway/access-log/staff.ts';
import { appendAccess, entryHash, GENESIS_HASH, type AccessInput, type AccessLogModel } from '../../shared/access-log/chain.ts';
import { listCheckpoints } from '../../shared/access-log/verify.ts';
import { newOprfKey, signPayload } from '../../shared/crypto.ts';
import { createMemberClient, type MemberClient } from '../../shared/federation/member-http.ts';
import { pkiPaths } from '../../shared/federation/pki.ts';
import { Typ } from '../../shared/federation/protocol.ts';
import { closeServer, listen } from '../../shared/platform/server.ts';
import { createStaffAccount } from '../../shared/staff/auth.ts';
import { federationAuditHooks } from '../../services/municipality/access-log/federation.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { DEMO_MUNICIPALITIES, removeDir, startMunicipality, testConfig, type RunningMunicipality } from '../fixtures/municipality.ts';
import {
  gatewayTestConfig, issuerTestConfig, startGateway, startIssuer, type RunningGateway, type RunningIssuer,
} from '../fixtures/members.ts';
import { testPki, type TestPki } from '../fixtures/pki.ts';
import { api } from '../fixtures/http.ts';
import { auditVerifyDatabaseArgs, liftAppendOnlySql, openMemberDatabase, rawSqlAsOwner } from '../fixtures/database.ts';

const A = '293610';
const B = '112241';
const OFFICER_PASSWORD = 'gateway officer password';
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

type DatabaseEnv = { DATABASE_PATH?: string; DATABASE_URL?: string };

/**
 * `npm run audit:verify` as a separate process, as an auditor would run it. Members on PostgreSQL
 * have no file in the data folder: their databases are named with --database.
 */
async function auditVerify(member: string, dataDir: string, pkiDir: string, databases: Record<string, DatabaseEnv> = {}): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/audit-verify.ts'), member, '--data-dir', dataDir, '--pki', pkiDir, ...auditVerifyDatabaseArgs(databases)], { cwd: ROOT });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

/** Appends entries as the member's own code would (a chained, valid append: a "planted" entry). */
async function plant(log: AccessLogModel, entries: AccessInput[]): Promise<void> {
  await log.sequelize!.transaction(async (t) => {
    for (const e of entries) await appendAccess(log, t, e);
  });
}

/** A value as an SQL literal; dates (PostgreSQL timestamps come back as Date) in ISO 8601. */
const sqlLiteral = (v: unknown): string =>
  (v === null || v === undefined ? 'NULL' : `'${(v instanceof Date ? v.toISOString() : String(v)).replace(/'/g, "''")}'`);

const gatewayEntry = (extra: Partial<AccessInput>): AccessInput => ({
  actorType: 'member', actorId: B, actorRole: 'municipality', actingMunicipality: B, subject: 'CODEOFTHEREQUESTERXXXXXXXX',
  action: GatewayActions.QUERY_ANSWER, purpose: 'next-dose-scheduling', legalBasis: 'consent', consentId: 'consent-1', outcome: 'allowed',
  ...extra,
});

const answerAtA = (requestId: string, ref: string): AccessInput => ({
  actorType: 'member', actorId: B, actorRole: 'staff:someone', actingMunicipality: B, subject: '0000000001', action: Actions.QUERY_ANSWER,
  purpose: 'next-dose-scheduling', legalBasis: 'consent', outcome: 'allowed', requestId, details: { status: 'ok', ref, via: 'gateway' },
});

const sentByA = (requestId: string, ref: string, source = B): AccessInput => ({
  actorType: 'staff', actorId: 'clerk-a', actorRole: 'clerk', actingMunicipality: A, subject: '0000000002', action: Actions.QUERY_SEND,
  purpose: 'next-dose-scheduling', legalBasis: 'consent', outcome: 'allowed', requestId, details: { source, ref },
});

describe('the gateway\'s audit API, checkpoints and console', () => {
  let pki: TestPki;
  let root: string;
  let dataDir: string;
  let gw: RunningGateway;
  let issuer: RunningIssuer;
  let m: RunningMunicipality;
  let staff: { server: Server; url: string };
  let clientA: MemberClient;
  let clientB: MemberClient;
  let officerA: string;
  let gatewayStopped = false;
  /** Every member's database, for audit:verify (on PostgreSQL they are not files in the data folder). */
  const databases = (): Record<string, DatabaseEnv> => ({ gateway: gw.config, issuer: issuer.config, [A]: m.ctx.config });

  before(async function () {
    this.timeout(120_000);
    pki = testPki();
    root = mkdtempSync(join(tmpdir(), 'hikitsugi-gateway-audit-'));
    dataDir = join(root, 'data');
    for (const member of ['gateway', 'issuer']) mkdirSync(join(dataDir, member), { recursive: true });
    gw = await startGateway(gatewayTestConfig(pki, join(dataDir, 'gateway'), {
      STAFF_PORT: '0', SESSION_SECRET: randomBytes(32).toString('hex'), CHECKPOINT_INTERVAL_SECONDS: '0',
    }));
    issuer = await startIssuer(issuerTestConfig(pki, join(dataDir, 'issuer'), gw.url, { CHECKPOINT_INTERVAL_SECONDS: '0' }));
    const dir = join(dataDir, A);
    m = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto, {
      dir,
      config: testConfig(A, 'Tawaramoto', dir, {
        CERT_DIR: pkiPaths(pki.dir).member(A), GATEWAY_URL: gw.url, ISSUER_URL: issuer.url, CHECKPOINT_INTERVAL_SECONDS: '0',
      }),
    });
    staff = await listen(gw.gateway.staffApp!, 0);
    await createStaffAccount(gw.gateway.ctx.models.Staff, { username: 'gwofficer', displayName: 'Gateway officer', role: 'privacy_officer', password: OFFICER_PASSWORD });
    await createStaffAccount(gw.gateway.ctx.models.Staff, { username: 'gwadmin', displayName: 'Gateway admin', role: 'admin', password: OFFICER_PASSWORD });
    clientA = createMemberClient(pki.credentials(A));
    clientB = createMemberClient(pki.credentials(B));
    officerA = await m.tokenFor('privacy_officer');
  });

  after(async () => {
    clientA?.close();
    clientB?.close();
    if (staff) await closeServer(staff.server);
    await m?.stop();
    await issuer?.stop();
    if (!gatewayStopped) await gw?.stop();
    if (root) removeDir(root);
  });

  it('when a privacy officer checkpoints on demand, then the gateway countersigns and keeps it, and verification checks the gateway\'s copy', async () => {
    const made = await api('POST', `${m.url}/audit/checkpoints`, { token: officerA });
    expect(made.status, JSON.stringify(made.body)).to.equal(201);
    expect(made.body.witnessedBy).to.equal('gateway');
    const atGateway = await listCheckpoints(gw.gateway.ctx.models.Checkpoint, A);
    expect(atGateway.map((c) => [c.seq, c.hash, c.witnessedBy])).to.deep.equal([[made.body.checkpoint.seq, made.body.checkpoint.hash, 'gateway']]);
    expect(atGateway[0]!.countersignature).to.be.a('string');
    const held = (await api('GET', `${m.url}/audit/checkpoints`, { token: officerA })).body.checkpoints as { witnessedBy: string | null }[];
    expect(held.map((c) => c.witnessedBy).sort()).to.deep.equal(['gateway', null].sort());

    const verified = await api('POST', `${m.url}/audit/verify`, { token: officerA });
    expect(verified.body).to.include({ ok: true, remoteCheckpoints: 'checked' });
    // Its own, the countersigned copy it keeps, and the gateway's copy.
    expect(verified.body.checkpoints.agreeing, JSON.stringify(verified.body)).to.equal(3);
  });

  it('when a member submits a checkpoint not its own, forged, malformed or contradicting, then the gateway refuses it; a resend is idempotent', async () => {
    const own = (await listCheckpoints(m.ctx.models.Checkpoint, A)).find((c) => c.witnessedBy === null)!;
    const post = (client: MemberClient, body: unknown) => client.postJson<Record<string, any>>(`${gw.url}/checkpoints`, body);

    const notHis = await post(clientB, { jws: own.jws });
    expect(notHis.status).to.equal(400);
    expect(notHis.body).to.include({ field: 'jws' });

    const signerB = pki.credentials(B).signer;
    const claims = (member: string, seq: number, hash: string) => ({ kind: 'checkpoint', member, seq, hash, at: new Date().toISOString() });
    const inAsName = await signPayload(claims(A, 1, 'a'.repeat(64)), { key: signerB.key, kid: signerB.kid, typ: Typ.CHECKPOINT });
    expect((await post(clientB, { jws: inAsName })).status).to.equal(403);

    expect((await post(clientB, { jws: 42 })).body).to.include({ status: 400, field: 'jws' });

    const first = await signPayload(claims(B, 7, 'b'.repeat(64)), { key: signerB.key, kid: signerB.kid, typ: Typ.CHECKPOINT });
    expect((await post(clientB, { jws: first })).status).to.equal(201);
    expect((await post(clientB, { jws: first })).status).to.equal(200);
    const rewritten = await signPayload(claims(B, 7, 'c'.repeat(64)), { key: signerB.key, kid: signerB.kid, typ: Typ.CHECKPOINT });
    const contradiction = await post(clientB, { jws: rewritten });
    expect(contradiction.status).to.equal(409);
    expect(contradiction.body.type).to.match(/checkpoint-contradiction$/);
    expect(contradiction.body.rule).to.include('b'.repeat(64));
  });

  it('when a municipality asks for the gateway\'s entries, then only those about its own exchanges come back, metadata only; another member\'s are refused', async () => {
    const rid = `rid-${randomUUID()}`;
    await plant(gw.gateway.ctx.models.AccessLog, [
      gatewayEntry({ requestId: rid, action: GatewayActions.QUERY_ROUTE, details: { source: A, ref: '0', status: 'forwarded', staff: 'staff-of-b' } }),
      gatewayEntry({ requestId: rid, details: { source: A, ref: '0', status: 'ok', staff: 'staff-of-b', answerJti: randomUUID() } }),
      gatewayEntry({ requestId: rid, action: GatewayActions.QUERY_ROUTE, details: { source: '343692', ref: '1', status: 'forwarded' } }),
    ]);
    const res = await clientA.getJson<{ entries: Record<string, unknown>[] }>(`${gw.url}/audit/entries?member=${A}&requestId=${rid}`);
    expect(res.status).to.equal(200);
    expect(res.body.entries.map((e) => [e.action, e.role, e.counterpart, e.ref])).to.deep.equal([
      ['query.route', 'source', null, '0'], ['query.answer', 'source', 'forwarded', '0'],
    ]);
    const text = JSON.stringify(res.body);
    for (const hidden of ['CODEOFTHEREQUESTER', 'staff-of-b', 'consent-1', 'answerJti']) expect(text).not.to.include(hidden);

    const other = await clientB.getJson<Record<string, unknown>>(`${gw.url}/audit/entries?member=${A}`);
    expect(other.status).to.equal(403);
    const bad = await clientA.getJson<Record<string, unknown>>(`${gw.url}/audit/entries?member=${A}&limit=5000`);
    expect(bad.body).to.include({ status: 400, field: 'limit' });
    const issuerClient = createMemberClient(pki.credentials('issuer'));
    try {
      expect((await issuerClient.getJson(`${gw.url}/audit/entries?member=issuer`)).status).to.equal(403);
    } finally {
      issuerClient.close();
    }
    const [last] = await gw.gateway.ctx.sequelize.query<{ action: string; actorId: string }>(
      'SELECT action, "actorId" FROM access_log WHERE action = :action ORDER BY seq DESC LIMIT 1', { type: QueryTypes.SELECT, replacements: { action: GatewayActions.MEMBER_LOG_READ } },
    );
    expect(last).to.deep.equal({ action: 'audit.member_read', actorId: A });
  });

  it('when entries are planted on either side, then reconciliation at the municipality reports each one-sided entry, and agreeing pairs are clean', async () => {
    const from = new Date().toISOString();
    const pair = `rid-pair-${randomUUID()}`;
    const refused = `rid-refused-${randomUUID()}`;
    await plant(gw.gateway.ctx.models.AccessLog, [
      gatewayEntry({ requestId: pair, details: { source: A, ref: '0', status: 'ok', answerJti: randomUUID() } }),
      gatewayEntry({ requestId: pair, actingMunicipality: A, actorId: A, action: GatewayActions.QUERY_ROUTE, details: { source: B, ref: '1', status: 'forwarded' } }),
      // A whole query of A's refused at the gateway: one entry there for both of A's subjects.
      gatewayEntry({ requestId: refused, actingMunicipality: A, actorId: A, action: GatewayActions.QUERY_REFUSE, subject: null, outcome: 'denied', reason: 'replayed' }),
    ]);
    await plant(m.ctx.models.AccessLog, [answerAtA(pair, '0'), sentByA(pair, '1'), sentByA(refused, '0'), sentByA(refused, '1')]);
    const clean = await api('POST', `${m.url}/audit/reconcile`, { token: officerA, body: { from } });
    expect(clean.status, JSON.stringify(clean.body)).to.equal(200);
    expect(clean.body).to.deep.include({ ok: true, summary: { matched: 4, onlyLocal: 0, onlyRemote: 0 } });

    const plantedAtGateway = `rid-gw-only-${randomUUID()}`;
    const plantedAtA = `rid-a-only-${randomUUID()}`;
    const lostOnTheWay = `rid-lost-${randomUUID()}`;
    await plant(gw.gateway.ctx.models.AccessLog, [gatewayEntry({ requestId: plantedAtGateway, details: { source: A, ref: '0', status: 'ok', answerJti: randomUUID() } })]);
    await plant(m.ctx.models.AccessLog, [answerAtA(plantedAtA, '3'), sentByA(lostOnTheWay, '0')]);
    const report = await api('POST', `${m.url}/audit/reconcile`, { token: officerA, body: { from } });
    expect(report.body.ok).to.equal(false);
    expect(report.body.incoming.onlyRemote.map((e: { requestId: string }) => e.requestId)).to.deep.equal([plantedAtGateway]);
    expect(report.body.incoming.onlyLocal.map((e: { requestId: string; ref: string }) => [e.requestId, e.ref])).to.deep.equal([[plantedAtA, '3']]);
    expect(report.body.outgoing.onlyLocal.map((e: { requestId: string }) => e.requestId)).to.deep.equal([lostOnTheWay]);
    expect(report.body.outgoing.onlyRemote).to.deep.equal([]);
    const [logged] = await m.ctx.sequelize.query<{ action: string; details: string }>('SELECT action, details FROM access_log ORDER BY seq DESC LIMIT 1', { type: QueryTypes.SELECT });
    expect(logged!.action).to.equal('audit.reconcile');
    expect(JSON.parse(logged!.details).summary).to.deep.equal({ matched: 4, onlyLocal: 2, onlyRemote: 1 });
  });

  it('when a municipality traces a request id, then its own entries and the gateway\'s come back as two hops', async () => {
    const rid = `rid-trace-${randomUUID()}`;
    await plant(m.ctx.models.AccessLog, [answerAtA(rid, '0')]);
    await plant(gw.gateway.ctx.models.AccessLog, [gatewayEntry({ requestId: rid, details: { source: A, ref: '0', status: 'ok', answerJti: randomUUID() } })]);
    const trace = await api('GET', `${m.url}/audit/trace/${rid}`, { token: officerA });
    expect(trace.status).to.equal(200);
    expect(trace.body.hops.map((h: { member: string; entries: { action: string }[] }) => [h.member, h.entries.map((e) => e.action)])).to.deep.equal([
      [A, ['exchange.query.answer']], ['gateway', ['query.answer']],
    ]);
    expect((await api('GET', `${m.url}/audit/trace/rid-nowhere-at-all`, { token: officerA })).status).to.equal(404);
  });

  it('when the gateway\'s privacy officer uses its console API, then reading, filtering, verifying, checkpointing and exporting work and are logged; others are refused', async () => {
    const login = await api('POST', `${staff.url}/auth/login`, { body: { username: 'gwofficer', password: OFFICER_PASSWORD } });
    expect(login.status).to.equal(200);
    const token = login.body.token as string;
    expect((await api('GET', `${staff.url}/auth/me`, { token })).body).to.include({ role: 'privacy_officer', municipality: 'gateway', reconcile: false });

    expect((await api('GET', `${staff.url}/audit/entries`)).status).to.equal(401);
    const admin = (await api('POST', `${staff.url}/auth/login`, { body: { username: 'gwadmin', password: OFFICER_PASSWORD } })).body.token;
    expect((await api('GET', `${staff.url}/audit/entries`, { token: admin })).status).to.equal(403);
    // A municipality's session means nothing at the gateway.
    expect((await api('GET', `${staff.url}/audit/entries`, { token: officerA })).status).to.equal(401);

    const life = `rid-life-${randomUUID()}`;
    await plant(gw.gateway.ctx.models.AccessLog, [gatewayEntry({ requestId: life, action: GatewayActions.QUERY_ROUTE, legalBasis: 'life-protection', flags: ['life-protection'], details: { source: A, ref: '0', status: 'forwarded' } })]);
    const flagged = await api('GET', `${staff.url}/audit/entries?flag=life-protection&actingMunicipality=${B}`, { token });
    expect(flagged.status).to.equal(200);
    expect(flagged.body.entries.map((e: { requestId: string }) => e.requestId)).to.deep.equal([life]);
    const badFilter = await api('GET', `${staff.url}/audit/entries?flag=urgent`, { token });
    expect(badFilter.body).to.include({ status: 400, field: 'flag' });

    const verified = await api('POST', `${staff.url}/audit/verify`, { token });
    expect(verified.body).to.include({ ok: true, member: 'gateway' });
    const cp = await api('POST', `${staff.url}/audit/checkpoints`, { token });
    expect(cp.status).to.equal(201);
    expect(cp.body.checkpoint.member).to.equal('gateway');

    const csv = await fetch(`${staff.url}/audit/export.csv?requestId=${life}`, { headers: { authorization: `Bearer ${token}` } });
    expect(csv.headers.get('content-disposition'), `${csv.status} ${csv.status === 200 ? '' : await csv.clone().text()}`).to.match(/access-log-gateway-\d{4}-\d{2}-\d{2}\.csv/);
    const lines = (await csv.text()).replace(/^\uFEFF/, '').split('\r\n').filter(Boolean);
    expect(lines).to.have.length(2);
    expect(lines[1]).to.include(life).and.include('life-protection');

    const rec = await api('POST', `${staff.url}/audit/reconcile`, { token, body: {} });
    // The gateway never reconciles (a municipality does, against the gateway's entries): no such operation here, not a server fault.
    expect(rec.status).to.equal(404);
    expect(rec.body.type).to.match(/reconciliation-unavailable$/);
    expect(rec.body.field).to.equal('member');

    const [last] = await gw.gateway.ctx.sequelize.query<{ action: string; actorRole: string; actingMunicipality: string }>(
      'SELECT action, "actorRole", "actingMunicipality" FROM access_log ORDER BY seq DESC LIMIT 1', { type: QueryTypes.SELECT },
    );
    expect(last).to.deep.equal({ action: 'audit.export', actorRole: 'privacy_officer', actingMunicipality: 'gateway' });
  });

  it('when the staff port is configured without a session secret, or an account has a short password, then each is refused naming the field', async () => {
    const config = gatewayConfigSchema.safeParse({ PORT: '0', CERT_DIR: 'x', DIRECTORY_FILE: 'y', REVOCATION_FILE: 'r', DATABASE_PATH: 'z', OPRF_KEY: newOprfKey(), STAFF_PORT: '0' });
    expect(config.success).to.equal(false);
    expect(config.error!.issues.map((i) => i.path.join('.'))).to.include('SESSION_SECRET');
    let field = '';
    await seedGatewayStaff({ storage: join(root, 'staff-only.sqlite') }, [{ username: 'officer9', displayName: 'x', role: 'privacy_officer', password: 'short' }])
      .catch((err: { extra: { field: string } }) => { field = err.extra.field; });
    expect(field).to.equal('password');
  });

  it('when the issuer checkpoints, then the gateway witnesses it and audit:verify -- issuer checks the chain against the gateway\'s copy', async () => {
    await plant(issuer.issuer.ctx.models.AccessLog, [{ actorType: 'member', actorId: A, action: 'code.issue', outcome: 'allowed', subject: 'SOMECODE' }]);
    await issuer.issuer.checkpoints.runNow();
    const held = await listCheckpoints(gw.gateway.ctx.models.Checkpoint, 'issuer');
    expect(held).to.have.length(1);
    expect(held[0]).to.include({ witnessedBy: 'gateway', seq: 1 });
    // Nothing new since: the periodic run leaves the head alone.
    await issuer.issuer.checkpoints.runNow();
    expect(await listCheckpoints(gw.gateway.ctx.models.Checkpoint, 'issuer')).to.have.length(1);
    const out = await auditVerify('issuer', dataDir, pki.dir, databases());
    expect(out.code, out.out).to.equal(0);
    expect(out.out).to.match(/OK issuer: 1 entries/).and.match(/held by gateway \(1\)/);
  });

  it('when the gateway rewrites and re-hashes its whole log, then the copy of its checkpoint a municipality keeps catches it', async () => {
    await gw.gateway.checkpoints.runNow();
    const hooks = federationAuditHooks(m.ctx, m.federation);
    expect((await hooks.keepGatewayCheckpoints!()).kept).to.be.greaterThan(0);
    expect((await hooks.keepGatewayCheckpoints!()).kept).to.equal(0);
    const kept = (await listCheckpoints(m.ctx.models.Checkpoint, 'gateway')).filter((c) => c.witnessedBy === A);
    const newest = kept.at(-1)!;
    expect((await auditVerify('gateway', dataDir, pki.dir, databases())).code).to.equal(0);

    // The gateway, stopped, rewrites one entry's subject and re-hashes everything after it.
    await gw.stop();
    gatewayStopped = true;
    // On SQLite it edits the file; on PostgreSQL it connects as its database's owner role.
    const file = gw.config.DATABASE_URL ? { DATABASE_URL: gw.config.DATABASE_URL } : { DATABASE_PATH: join(dataDir, 'gateway', 'gateway.sqlite') };
    const db = await openMemberDatabase(file);
    const rows = await db.query<Record<string, unknown> & { seq: number }>('SELECT * FROM access_log ORDER BY seq', { type: QueryTypes.SELECT });
    await db.close();
    let prev = GENESIS_HASH;
    const statements = [liftAppendOnlySql(['access_log']), 'DELETE FROM access_log;'];
    for (const r of rows) {
      const row: Record<string, unknown> = r.seq === 1 ? { ...r, subject: 'SOMEONEELSE' } : { ...r };
      row.prevHash = prev;
      row.hash = entryHash(prev, row as never);
      prev = row.hash as string;
      const cols = Object.keys(row);
      statements.push(`INSERT INTO access_log (${cols.map((c) => `"${c}"`).join(',')}) VALUES (${cols.map((c) => sqlLiteral(row[c])).join(',')});`);
    }
    await rawSqlAsOwner(file, statements.join('\n'));

    const out = await auditVerify('gateway', dataDir, pki.dir, databases());
    expect(out.code, out.out).to.equal(1);
    expect(out.out).to.match(/BROKEN gateway: first broken entry seq \d+ \(checkpoint-contradiction\)/);
    expect(out.out).to.include(`held by ${A}`);
    const seq = Number(/first broken entry seq (\d+)/.exec(out.out)![1]);
    expect(seq).to.be.at.most(newest.seq);
  });
});
