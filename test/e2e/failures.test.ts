/**
 * Failure behaviour (docs/DESIGN.md §1, last row, and §2.2) with real processes: a source municipality
 * stopped or frozen, the gateway down, the issuer down, and a municipality killed with SIGKILL in
 * the middle of a bulk import. Every case ends by counting records: none lost, none twice.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { QueryTypes } from 'sequelize';
import { startTestFederation, type RunningFederation } from '../fixtures/federation.ts';
import { api } from '../fixtures/http.ts';
import { openMemberDatabase } from '../fixtures/database.ts';
import { DEMO_PASSWORD } from '../../scripts/demo.ts';
import { moveResident, readAllSubjects, recordsOf, StaffSession, type Desk, type Move, type Plan } from '../../scripts/simulate.ts';
import { createMemberClient, type MemberClient } from '../../shared/federation/member-http.ts';
import { loadMemberCredentials } from '../../shared/federation/pki.ts';

const TAWARAMOTO = '293610';
const AKIOTA = '343692';
const TODA = '112241';
const PURPOSE = 'next-dose-scheduling';

describe('failure behaviour of the federation (real processes)', () => {
  let fed: RunningFederation;
  let desks: Map<string, Desk>;
  let member: MemberClient;
  const taken = new Set<string>();
  const tokens = new Map<string, string>();
  /** One operator session per municipality (a login is a deliberate scrypt: not once per poll). */
  const operatorOf = async (code: string) => {
    if (!tokens.has(code)) tokens.set(code, await fed.login(code, 'operator1'));
    return tokens.get(code)!;
  };

  const mover = (from: string, to: string, plan: Plan = 'consent'): Move => {
    const card = fed.residents(from).find((r) => r.records.length > 0 && !taken.has(`${from}|${r.addresseeNumber}`));
    if (!card) throw new Error(`no seeded resident with records left at ${from}`);
    taken.add(`${from}|${card.addresseeNumber}`);
    return { from, to, plan, card };
  };
  const move = async (moves: Move[], waitForCodes = true) => {
    for (const [i, m] of moves.entries()) m.movedAs = await moveResident(desks, m, PURPOSE, i + 1);
    if (waitForCodes) for (const code of new Set(moves.map((m) => m.to))) await fed.waitForCodes(code);
    return moves;
  };
  const submit = async (to: string, moves: Move[]) => {
    const res = await api('POST', `${fed.url(to)}/exchange/bulk-queries`, {
      token: await operatorOf(to), body: { purpose: PURPOSE, subjects: moves.map((m) => ({ addresseeNumber: m.movedAs!, source: m.from })) },
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    return res.body.id as string;
  };
  const progress = async (to: string, id: string) => (await api('GET', `${fed.url(to)}/exchange/bulk-queries/${id}`, { token: await operatorOf(to) })).body;
  const waitFor = async (to: string, id: string, done: (p: any) => boolean, timeoutMs = 60_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const p = await progress(to, id);
      if (done(p)) return p;
      if (Date.now() > until) throw new Error(`job ${id} at ${to}: ${JSON.stringify(p)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Every moved resident holds each of the source's records exactly once. */
  const expectEachImportedOnce = async (moves: Move[]) => {
    for (const m of moves) {
      const copies = (await recordsOf(desks.get(m.to)!.clerk, m.movedAs!)).importedFrom.get(m.from) ?? [];
      const own = (await recordsOf(desks.get(m.from)!.clerk, m.card.addresseeNumber)).own;
      expect(own.length, 'the mover had records').to.be.greaterThan(0);
      expect([...copies].sort(), `${m.from} → ${m.to}`).to.deep.equal([...own].sort());
    }
  };

  before(async function () {
    this.timeout(180_000);
    const fast = { BULK_RETRY_MAX_SECONDS: '2' };
    fed = await startTestFederation({
      residents: 24,
      env: {
        gateway: { RETRY_AFTER_SECONDS: '1', SOURCE_TIMEOUT_MS: '1500' },
        [TODA]: { ...fast, BULK_CHUNK_SIZE: '4' },
        [AKIOTA]: { ...fast, BULK_CHUNK_SIZE: '4' },
        // Small chunks with a pause: a bulk import here is long enough to be killed in the middle.
        [TAWARAMOTO]: { ...fast, BULK_CHUNK_SIZE: '2', BULK_CHUNK_PAUSE_MS: '400' },
      },
    });
    desks = new Map([TAWARAMOTO, AKIOTA, TODA].map((code) => [code, {
      clerk: new StaffSession(fed.url(code), 'clerk1', DEMO_PASSWORD), operator: new StaffSession(fed.url(code), 'operator1', DEMO_PASSWORD), name: code,
    }]));
    member = createMemberClient(loadMemberCredentials(join(fed.dataDir, 'pki', TODA)));
    await Promise.all([TAWARAMOTO, AKIOTA, TODA].map((c) => fed.waitForCodes(c)));
  });
  after(async () => {
    member?.close();
    await fed?.close();
  });

  it('when a source municipality is stopped, then its subjects come back source_unavailable, the rest succeed, and the automatic retry completes them once it returns', async function () {
    this.timeout(120_000);
    const fromTawaramoto = await move([mover(TAWARAMOTO, TODA), mover(TAWARAMOTO, TODA), mover(TAWARAMOTO, TODA)]);
    const fromAkiota = await move([mover(AKIOTA, TODA), mover(AKIOTA, TODA)]);
    await fed.stop(AKIOTA);
    let id: string;
    try {
      id = await submit(TODA, [...fromTawaramoto, ...fromAkiota]);
      const partial = await waitFor(TODA, id, (p) => p.pending === 0);
      expect(partial.byStatus).to.include({ ok: 3, source_unavailable: 2 });
      expect(partial).to.include({ status: 'running', pendingRetries: 2 });
      expect(partial.nextRetryAt).to.be.a('string');
      const waiting = (await readAllSubjects(desks.get(TODA)!.operator, id)).filter((s) => s.state === 'retrying');
      expect(waiting.map((s) => s.source)).to.deep.equal([AKIOTA, AKIOTA]);
    } finally {
      await fed.start(AKIOTA);
    }
    const done = await waitFor(TODA, id, (p) => p.status === 'completed');
    expect(done.byStatus).to.include({ ok: 5, source_unavailable: 0 });
    await expectEachImportedOnce([...fromTawaramoto, ...fromAkiota]);
  });

  it('when a source municipality hangs, then the gateway times it out as source_unavailable, and the retry completes once it answers again', async function () {
    this.timeout(120_000);
    const moves = await move([mover(AKIOTA, TODA), mover(AKIOTA, TODA)]);
    const child = fed.member(AKIOTA).child!;
    child.kill('SIGSTOP');
    let id: string;
    try {
      id = await submit(TODA, moves);
      const partial = await waitFor(TODA, id, (p) => p.pending === 0);
      expect(partial.byStatus.source_unavailable).to.equal(2);
      const reasons = (await readAllSubjects(desks.get(TODA)!.operator, id)).map((s) => s.reason);
      expect(reasons).to.deep.equal(['timeout', 'timeout']);
    } finally {
      child.kill('SIGCONT');
    }
    const done = await waitFor(TODA, id, (p) => p.status === 'completed');
    expect(done.byStatus.ok).to.equal(2);
    await expectEachImportedOnce(moves);
  });

  it('when the gateway is down, then every municipality serves its own residents and records, reports the gateway down while staying ready, queues its bulk work and completes it when the gateway returns', async function () {
    this.timeout(120_000);
    const before = await move([mover(TAWARAMOTO, TODA), mover(AKIOTA, TODA)]);
    await fed.stop('gateway');
    let id: string;
    let during: Move[];
    try {
      for (const code of [TAWARAMOTO, AKIOTA, TODA]) {
        const clerk = await fed.login(code, 'clerk1');
        const r = fed.residents(code).find((x) => !taken.has(`${code}|${x.addresseeNumber}`))!;
        expect((await api('GET', `${fed.url(code)}/residents/${r.addresseeNumber}`, { token: clerk })).status).to.equal(200);
        expect((await api('GET', `${fed.url(code)}/residents/${r.addresseeNumber}/vaccinations`, { token: clerk })).status).to.equal(200);
        const changed = await api('PATCH', `${fed.url(code)}/residents/${r.addresseeNumber}`, { token: clerk, body: { address: `${code} 本町2-${Date.now() % 1000}`, reason: 'address corrected at the counter' } });
        expect(changed.status).to.equal(200);
        const ready = await api('GET', `${fed.url(code)}/ready`);
        expect(ready.status).to.equal(200);
        expect(ready.body).to.include({ ready: true, degraded: true });
        expect(ready.body.peers.gateway.status).to.equal('down');
      }
      // A move while the gateway is down: the resident is saved; its code waits in the outbox.
      during = await move([mover(TAWARAMOTO, TODA)], false);
      id = await submit(TODA, [...before, ...during]);
      const queued = await waitFor(TODA, id, (p) => p.pending === 0);
      expect(queued).to.include({ done: 0, pendingRetries: 3, status: 'running' });
      const ready = await api('GET', `${fed.url(TODA)}/ready`);
      expect(ready.body.queued.bulk.subjectsWaiting).to.be.at.least(3);
      expect(ready.body.queued.registrations).to.be.at.least(1);
    } finally {
      await fed.start('gateway');
    }
    await fed.waitForCodes(TODA, 60_000);
    const done = await waitFor(TODA, id, (p) => p.status === 'completed');
    expect(done.byStatus.ok).to.equal(3);
    await expectEachImportedOnce([...before, ...during]);
  });

  it('when the issuer is down, then a move-in still registers the resident, and its code is issued when the issuer returns', async function () {
    this.timeout(120_000);
    await fed.stop('issuer');
    let moved: Move | undefined;
    try {
      [moved] = await move([mover(AKIOTA, TODA)], false);
      const clerk = await fed.login(TODA, 'clerk1');
      const resident = await api('GET', `${fed.url(TODA)}/residents/${moved!.movedAs}`, { token: clerk });
      expect(resident.status).to.equal(200);
      expect(resident.body).to.include({ status: 'resident', codeStatus: 'pending' });
      const ready = await api('GET', `${fed.url(TODA)}/ready`);
      expect(ready.status).to.equal(200);
      expect(ready.body.peers.issuer.status).to.equal('down');
    } finally {
      await fed.start('issuer');
    }
    await fed.waitForCodes(TODA, 60_000);
    const clerk = await fed.login(TODA, 'clerk1');
    expect((await api('GET', `${fed.url(TODA)}/residents/${moved!.movedAs}`, { token: clerk })).body.codeStatus).to.equal('issued');
  });

  it('when a municipality is killed with SIGKILL in the middle of a bulk import, then after the restart the job resumes and every record is imported exactly once', async function () {
    this.timeout(150_000);
    const moves = await move([
      mover(AKIOTA, TAWARAMOTO), mover(AKIOTA, TAWARAMOTO), mover(AKIOTA, TAWARAMOTO), mover(AKIOTA, TAWARAMOTO),
      mover(TODA, TAWARAMOTO), mover(TODA, TAWARAMOTO), mover(TODA, TAWARAMOTO), mover(TODA, TAWARAMOTO),
    ]);
    const id = await submit(TAWARAMOTO, moves);
    const atKill = await waitFor(TAWARAMOTO, id, (p) => p.done >= 2, 60_000);
    await fed.stop(TAWARAMOTO, 'SIGKILL');
    expect(atKill.done, 'killed before the job finished').to.be.lessThan(8);
    await fed.start(TAWARAMOTO);

    const done = await waitFor(TAWARAMOTO, id, (p) => p.status === 'completed');
    expect(done.byStatus.ok).to.equal(8);
    await expectEachImportedOnce(moves);

    // And in the database itself: no provenance twice, and the job's counts match the rows.
    const db = await openMemberDatabase(fed.member(TAWARAMOTO).env);
    try {
      const twice = await db.query(
        `SELECT "residentId", "sourceMunicipality", "sourceRecordId", COUNT(*) AS n FROM vaccination_records
          WHERE "sourceMunicipality" IS NOT NULL GROUP BY "residentId", "sourceMunicipality", "sourceRecordId" HAVING COUNT(*) > 1`, { type: QueryTypes.SELECT });
      expect(twice).to.deep.equal([]);
      const [row] = await db.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM vaccination_records v JOIN bulk_job_subjects s ON s."residentId" = v."residentId" AND s.source = v."sourceMunicipality"
          WHERE s."jobId" = :id`, { type: QueryTypes.SELECT, replacements: { id } });
      expect(Number(row!.n)).to.equal(done.imported);
    } finally {
      await db.close();
    }
  });

  it('when the gateway and the issuer are asked over mTLS whether they are ready, then they report their database and their peers', async function () {
    this.timeout(60_000);
    const gateway = await member.getJson<any>(`${fed.member('gateway').url}/ready`, { expectPeer: 'gateway' });
    expect(gateway.status).to.equal(200);
    expect(gateway.body).to.include({ ready: true, member: 'gateway' });
    expect(Object.keys(gateway.body.peers).sort()).to.deep.equal([TODA, TAWARAMOTO, AKIOTA].sort());
    const issuer = await member.getJson<any>(`${fed.member('issuer').url}/ready`, { expectPeer: 'issuer' });
    expect(issuer.status).to.equal(200);
    expect(issuer.body.peers.gateway.status).to.equal('up');
    expect((await member.getJson(`${fed.member('issuer').url}/health`, { expectPeer: 'issuer' })).status).to.equal(200);

    // A municipality down: the gateway stays ready and names it.
    await fed.stop(AKIOTA);
    try {
      const degraded = await member.getJson<any>(`${fed.member('gateway').url}/ready`, { expectPeer: 'gateway' });
      expect(degraded.status).to.equal(200);
      expect(degraded.body).to.include({ ready: true, degraded: true });
      expect(degraded.body.peers[AKIOTA].status).to.equal('down');
    } finally {
      await fed.start(AKIOTA);
    }
  });
});
