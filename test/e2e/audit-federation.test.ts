/**
 * Tamper-evident logs across a federation of real processes (issuer, gateway, Tawaramoto and
 * Toda over mTLS, each with its own SQLite file in the `npm start` layout): after a real
 * move-out → move-in → consent → query, the disclosure reports show the cross-municipality query
 * on both sides, reconciliation with the gateway is clean, an entry planted on either side is
 * reported, and a municipality that rewrote and re-hashed its whole chain is caught at the first
 * checkpoint or witnessed head others hold — through the API and through `npm run audit:verify`.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { QueryTypes } from 'sequelize';
import sqlite from '../../shared/platform/sqlite-driver.ts';
import { appendAccess, defineAccessLog, entryHash, GENESIS_HASH, type AccessInput } from '../../shared/access-log/chain.ts';
import { createCheckpoint, defineCheckpoints } from '../../shared/access-log/verify.ts';
import { startTestFederation, type RunningFederation } from '../fixtures/federation.ts';
import { api } from '../fixtures/http.ts';
import { onPostgres, openMemberDatabase } from '../fixtures/database.ts';

const A = '293610';
const B = '112241';
const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);

/**
 * `npm run audit:verify -- <member>` on the federation's data folder, as an auditor runs it; members
 * on PostgreSQL have no file there, so their databases are named with --database.
 */
async function npmAuditVerify(member: string, fed: RunningFederation): Promise<{ code: number; out: string }> {
  const databases = fed.members.flatMap((m) => (m.env.DATABASE_URL ? ['--database', `${m.id}=${m.env.DATABASE_URL}`] : []));
  try {
    const { stdout } = await run('npm', ['run', '--silent', 'audit:verify', '--', member, '--data-dir', fed.dataDir, ...databases], { cwd: ROOT });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

/** Appends to a running member's log from outside (a chained, valid append: a "planted" entry). */
async function plant(env: Record<string, string>, entry: AccessInput): Promise<void> {
  const sequelize = await openMemberDatabase(env);
  try {
    const log = defineAccessLog(sequelize);
    await sequelize.transaction((t) => appendAccess(log, t, entry));
  } finally {
    await sequelize.close();
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('tamper-evident logs across a federation of real processes', () => {
  let fed: RunningFederation;
  let officerA: string;
  let officerB: string;
  let moverAtA: string;
  let moverAtB: string;
  let requestId: string;

  before(async function () {
    this.timeout(180_000);
    // Checkpoints every 2 s at every member, so the copies others hold build up during the test.
    const every = { CHECKPOINT_INTERVAL_SECONDS: '2' };
    fed = await startTestFederation({
      municipalities: [{ code: A, name: 'Tawaramoto' }, { code: B, name: 'Toda' }],
      residents: 6,
      env: { gateway: every, issuer: every, [A]: every, [B]: every },
    });
    officerA = await fed.login(A, 'officer1');
    officerB = await fed.login(B, 'officer1');
  });
  after(async () => fed?.close());

  it('when Toda queries Tawaramoto for a resident who moved with consent, then both disclosure reports show the cross-municipality query', async function () {
    this.timeout(120_000);
    await fed.waitForCodes(A);
    const clerkA = await fed.login(A, 'clerk1');
    const clerkB = await fed.login(B, 'clerk1');
    let mover;
    for (const r of fed.residents(A)) {
      const res = await api('GET', `${fed.url(A)}/residents/${r.addresseeNumber}/vaccinations`, { token: clerkA });
      if (res.body.records.length > 0) { mover = r; break; }
    }
    expect(mover, 'a seeded resident with records').to.not.equal(undefined);
    moverAtA = mover!.addresseeNumber;
    const out = await api('POST', `${fed.url(A)}/residents/${moverAtA}/move-out`, {
      token: clerkA, body: { moveOutDate: '2026-11-20', destination: B, destinationAddress: '埼玉県戸田市上戸田1-1-1' },
    });
    expect(out.status, JSON.stringify(out.body)).to.equal(201);
    const moveIn = await api('POST', `${fed.url(B)}/move-ins`, {
      token: clerkB,
      body: {
        certificate: out.body.certificate, myNumber: mover!.myNumber, address: '埼玉県戸田市上戸田1-1-1',
        consent: { purpose: 'next-dose-scheduling', expiresAt: new Date(Date.now() + 30 * 864e5).toISOString(), method: 'written' },
      },
    });
    expect(moveIn.status, JSON.stringify(moveIn.body)).to.equal(201);
    moverAtB = moveIn.body.resident.addresseeNumber;
    await fed.waitForCodes(B);
    const query = await api('POST', `${fed.url(B)}/exchange/queries`, {
      token: clerkB, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moverAtB, source: A }] },
    });
    expect(query.status, JSON.stringify(query.body)).to.equal(200);
    expect(query.body.results[0].status).to.equal('ok');
    requestId = query.body.requestId;

    const atA = await api('GET', `${fed.url(A)}/residents/${moverAtA}/disclosure`, { token: officerA });
    expect(atA.status).to.equal(200);
    const answered = atA.body.items.filter((i: { action: string }) => i.action === 'exchange.query.answer');
    expect(answered).to.have.length(1);
    expect(answered[0]).to.deep.include({
      requestId, crossMunicipality: true, otherMunicipality: B, direction: 'asked-here', purpose: 'next-dose-scheduling', legalBasis: 'consent', outcome: 'allowed',
    });
    expect(answered[0].who).to.deep.equal({ type: 'member', role: null, municipality: B });

    const atB = await api('GET', `${fed.url(B)}/residents/${moverAtB}/disclosure`, { token: officerB });
    const asked = atB.body.items.filter((i: { requestId: string }) => i.requestId === requestId);
    expect(asked.map((i: { action: string }) => i.action)).to.deep.equal(['exchange.query.send', 'exchange.records.import']);
    for (const item of asked) expect(item).to.deep.include({ crossMunicipality: true, otherMunicipality: A, direction: 'asked-elsewhere', legalBasis: 'consent' });
    const page = await fetch(`${fed.url(A)}/residents/${moverAtA}/disclosure.html`, { headers: { authorization: `Bearer ${officerA}` } });
    expect(await page.text()).to.include(`自治体コード ${B} の職員（ゲートウェイ経由）`);
  });

  it('when each municipality reconciles its log with the gateway\'s after the real query, then both agree', async () => {
    const atA = await api('POST', `${fed.url(A)}/audit/reconcile`, { token: officerA, body: {} });
    expect(atA.status, JSON.stringify(atA.body)).to.equal(200);
    expect(atA.body.ok, JSON.stringify(atA.body)).to.equal(true);
    expect(atA.body.incoming.matched).to.equal(1);
    const atB = await api('POST', `${fed.url(B)}/audit/reconcile`, { token: officerB, body: {} });
    expect(atB.body.ok, JSON.stringify(atB.body)).to.equal(true);
    expect(atB.body.outgoing.matched).to.equal(1);
  });

  it('when Toda follows the request id, then its entries and the gateway\'s are shown hop by hop', async () => {
    const trace = await api('GET', `${fed.url(B)}/audit/trace/${requestId}`, { token: officerB });
    expect(trace.status).to.equal(200);
    expect(trace.body.hops.map((h: { member: string; entries: { action: string }[] }) => [h.member, h.entries.map((e) => e.action)])).to.deep.equal([
      [B, ['exchange.query.send', 'exchange.records.import']], ['gateway', ['query.route', 'query.answer']],
    ]);
  });

  it('when an entry is planted in Tawaramoto\'s log or in the gateway\'s, then reconciliation reports each on its own side', async () => {
    const atA = `planted-at-a-${randomUUID()}`;
    const atGateway = `planted-at-gateway-${randomUUID()}`;
    await plant(fed.member(A).env, {
      requestId: atA, actorType: 'member', actorId: B, actingMunicipality: B, subject: moverAtA, action: 'exchange.query.answer',
      purpose: 'next-dose-scheduling', legalBasis: 'consent', outcome: 'allowed', details: { status: 'ok', ref: '0', via: 'gateway' },
    });
    await plant(fed.member('gateway').env, {
      requestId: atGateway, actorType: 'member', actorId: B, actorRole: 'municipality', actingMunicipality: B, action: 'query.answer',
      purpose: 'next-dose-scheduling', legalBasis: 'consent', outcome: 'allowed', details: { source: A, ref: '0', status: 'ok', answerJti: randomUUID() },
    });
    const report = await api('POST', `${fed.url(A)}/audit/reconcile`, { token: officerA, body: {} });
    expect(report.body.ok).to.equal(false);
    expect(report.body.incoming.matched).to.equal(1);
    expect(report.body.incoming.onlyLocal.map((e: { requestId: string }) => e.requestId)).to.deep.equal([atA]);
    expect(report.body.incoming.onlyRemote.map((e: { requestId: string }) => e.requestId)).to.deep.equal([atGateway]);
  });

  it('when checkpoints have been exchanged, then npm run audit:verify passes for Tawaramoto, the gateway and the issuer against copies others hold', async function () {
    this.timeout(120_000);
    const made = await api('POST', `${fed.url(A)}/audit/checkpoints`, { token: officerA });
    expect(made.body.witnessedBy).to.equal('gateway');
    await until('a copy of a gateway checkpoint at a municipality', async () =>
      Number((await fed.rows<{ n: number }>(B, 'SELECT count(*) AS n FROM checkpoints WHERE member = \'gateway\''))[0]!.n) > 0);
    await until('an issuer checkpoint at the gateway', async () =>
      Number((await fed.rows<{ n: number }>('gateway', 'SELECT count(*) AS n FROM checkpoints WHERE member = \'issuer\''))[0]!.n) > 0);
    for (const [member, holder] of [[A, 'gateway'], ['gateway', B], ['issuer', 'gateway']] as const) {
      const out = await npmAuditVerify(member, fed);
      expect(out.code, out.out).to.equal(0);
      expect(out.out).to.match(new RegExp(`^OK ${member}:`)).and.match(new RegExp(`held by [^\\n]*${holder} \\(\\d+\\)`));
    }
  });

  it('when Tawaramoto rewrites and re-hashes its whole chain while stopped, then the first checkpoint or witnessed head others hold catches it (API and npm run audit:verify)', async function () {
    this.timeout(120_000);
    // Checkpoints the gateway countersigned, and the heads of A's log the gateway, B and the issuer saw in A's messages.
    const witnessed = [
      ...await fed.rows<{ seq: number }>('gateway', `SELECT seq FROM checkpoints WHERE member = '${A}'`),
      ...await fed.rows<{ seq: number }>('gateway', `SELECT seq FROM witnessed_heads WHERE member = '${A}'`),
      ...await fed.rows<{ seq: number }>(B, `SELECT seq FROM witnessed_heads WHERE member = '${A}'`),
      // The issuer keeps the heads A's registrations carried.
      ...await fed.rows<{ seq: number }>('issuer', `SELECT seq FROM witnessed_heads WHERE member = '${A}'`),
    ].map((r) => Number(r.seq)).sort((x, y) => x - y);
    expect(witnessed.length).to.be.greaterThan(0);
    await fed.stop(A);

    // The rewrite: triggers dropped, one subject changed at seq 2, every hash after it recomputed,
    // its own checkpoints replaced by one freshly signed with its real key over the new head.
    // On PostgreSQL the same, as the database's owner: the append-only triggers disabled for it.
    const env = fed.member(A).env;
    const db = await openMemberDatabase(env);
    const rows = await db.query<Record<string, unknown> & { seq: number }>('SELECT * FROM access_log ORDER BY seq', { type: QueryTypes.SELECT });
    await db.close();
    let prev = GENESIS_HASH;
    const statements = onPostgres
      ? ['ALTER TABLE access_log DISABLE TRIGGER access_log_no_change;', 'ALTER TABLE checkpoints DISABLE TRIGGER checkpoints_no_change;']
      : [
        'DROP TRIGGER IF EXISTS access_log_no_update;', 'DROP TRIGGER IF EXISTS access_log_no_delete;',
        'DROP TRIGGER IF EXISTS checkpoints_no_update;', 'DROP TRIGGER IF EXISTS checkpoints_no_delete;',
      ];
    statements.push('DELETE FROM access_log;', `DELETE FROM checkpoints WHERE member = '${A}';`);
    const literal = (value: unknown) => (value === null ? 'NULL' : `'${String(value instanceof Date ? value.toISOString() : value).replace(/'/g, "''")}'`);
    for (const r of rows) {
      const row: Record<string, unknown> = r.seq === 2 ? { ...r, subject: '0000000000' } : { ...r };
      row.prevHash = prev;
      row.hash = entryHash(prev, row as never);
      prev = row.hash as string;
      const cols = Object.keys(row);
      statements.push(`INSERT INTO access_log (${cols.map((c) => `"${c}"`).join(',')}) VALUES (${cols.map((c) => literal(row[c])).join(',')});`);
    }
    if (onPostgres) {
      // Covering its tracks: the triggers are back on, as the member's migrations left them.
      statements.push('ALTER TABLE access_log ENABLE TRIGGER access_log_no_change;', 'ALTER TABLE checkpoints ENABLE TRIGGER checkpoints_no_change;');
      const owner = await openMemberDatabase(env);
      try {
        await owner.transaction(async (transaction) => {
          for (const sql of statements) await owner.query(sql, { transaction });
        });
      } finally {
        await owner.close();
      }
    } else {
      const raw = new sqlite.Database(env.DATABASE_PATH!);
      await new Promise<void>((resolve, reject) => raw.exec(statements.join('\n'), (err) => (err ? reject(err) : resolve())));
      await new Promise<void>((resolve) => raw.close(() => resolve()));
    }
    const reopened = await openMemberDatabase(env);
    await createCheckpoint(reopened, defineCheckpoints(reopened), fed.credentials(A).signer);
    await reopened.close();

    await fed.start(A);
    const officer = await fed.login(A, 'officer1');
    const verified = await api('POST', `${fed.url(A)}/audit/verify`, { token: officer });
    expect(verified.status).to.equal(200);
    expect(verified.body.ok).to.equal(false);
    expect(verified.body.broken).to.include({ kind: 'checkpoint-contradiction', seq: witnessed.find((s) => s >= 2) });
    expect(verified.body.broken.checkpoint.heldBy).to.be.oneOf(['gateway', B, 'issuer']);

    const out = await npmAuditVerify(A, fed);
    expect(out.code, out.out).to.equal(1);
    expect(out.out).to.match(/BROKEN 293610: first broken entry seq \d+ \(checkpoint-contradiction\)/).and.match(/held by (gateway|112241|issuer)/);
  });
});
