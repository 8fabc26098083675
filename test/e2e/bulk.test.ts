/**
 * Bulk move-in queries with real processes: issuer, gateway and three municipalities over mTLS,
 * each with its own SQLite file. Residents move through the staff APIs; the receiving
 * municipality's job runner does the rest. Nothing here reaches into a process.
 */
import { expect } from 'chai';
import { startTestFederation, type RunningFederation } from '../fixtures/federation.ts';
import { api } from '../fixtures/http.ts';
import { DEMO_PASSWORD } from '../../scripts/demo.ts';
import { moveResident, readAllSubjects, recordsOf, StaffSession, type Desk, type Move, type Plan } from '../../scripts/simulate.ts';

const TAWARAMOTO = '293610';
const AKIOTA = '343692';
const TODA = '112241';
const PURPOSE = 'next-dose-scheduling';

describe('bulk move-in queries (real processes)', () => {
  let fed: RunningFederation;
  let desks: Map<string, Desk>;
  /** Seeded residents with at least one record, handed out once each. */
  const taken = new Set<string>();

  const mover = (from: string, to: string, plan: Plan): Move => {
    const card = fed.residents(from).find((r) => r.records.length > 0 && !taken.has(`${from}|${r.addresseeNumber}`));
    if (!card) throw new Error(`no seeded resident with records left at ${from}`);
    taken.add(`${from}|${card.addresseeNumber}`);
    return { from, to, plan, card };
  };
  const move = async (moves: Move[]) => {
    for (const [i, m] of moves.entries()) m.movedAs = await moveResident(desks, m, PURPOSE, i + 1);
    for (const code of new Set(moves.map((m) => m.to))) await fed.waitForCodes(code);
    return moves;
  };
  const waitForJob = async (code: string, token: string, id: string, done: (body: any) => boolean = (b) => b.status === 'completed') => {
    const until = Date.now() + 60_000;
    for (;;) {
      const res = await api('GET', `${fed.url(code)}/exchange/bulk-queries/${id}`, { token });
      expect(res.status).to.equal(200);
      if (done(res.body)) return res.body;
      if (Date.now() > until) throw new Error(`job ${id} did not finish: ${JSON.stringify(res.body)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  before(async function () {
    this.timeout(180_000);
    fed = await startTestFederation({
      residents: 16,
      env: Object.fromEntries([TAWARAMOTO, AKIOTA, TODA].map((c) => [c, { BULK_CHUNK_SIZE: '3', BULK_RETRY_MAX_SECONDS: '2' }])),
    });
    desks = new Map([TAWARAMOTO, AKIOTA, TODA].map((code) => [code, {
      clerk: new StaffSession(fed.url(code), 'clerk1', DEMO_PASSWORD), operator: new StaffSession(fed.url(code), 'operator1', DEMO_PASSWORD), name: code,
    }]));
    await Promise.all([TAWARAMOTO, AKIOTA].map((c) => fed.waitForCodes(c)));
  });
  after(async () => fed?.close());

  it('when an operator submits residents moved in from two municipalities, then each subject gets its own status and every ok subject holds exactly the source\'s records', async () => {
    const moves = await move([
      mover(TAWARAMOTO, TODA, 'consent'), mover(TAWARAMOTO, TODA, 'consent'), mover(TAWARAMOTO, TODA, 'wrong-birth-date'),
      mover(AKIOTA, TODA, 'consent'), mover(AKIOTA, TODA, 'consent'), mover(AKIOTA, TODA, 'no-consent'),
    ]);
    const operator = await fed.login(TODA, 'operator1');
    const body = { purpose: PURPOSE, subjects: moves.map((m) => ({ addresseeNumber: m.movedAs!, source: m.from })) };
    const created = await api('POST', `${fed.url(TODA)}/exchange/bulk-queries`, { token: operator, body });
    expect(created.status).to.equal(202);
    expect(created.headers.get('location')).to.equal(`/exchange/bulk-queries/${created.body.id}`);
    expect(created.body).to.include({ total: 6, purpose: PURPOSE });

    const progress = await waitForJob(TODA, operator, created.body.id);
    expect(progress).to.include({ total: 6, done: 6, pending: 0, pendingRetries: 0 });
    expect(progress.byStatus).to.include({ ok: 4, no_consent: 1, identity_mismatch: 1, source_unavailable: 0 });

    const subjects = await readAllSubjects(desks.get(TODA)!.operator, created.body.id);
    const expected = { consent: 'ok', 'no-consent': 'no_consent', 'wrong-birth-date': 'identity_mismatch' } as const;
    let imported = 0;
    for (const m of moves) {
      const s = subjects.find((x) => x.addresseeNumber === m.movedAs)!;
      expect(s, m.plan).to.include({ state: 'done', status: expected[m.plan], source: m.from });
      const copies = (await recordsOf(desks.get(TODA)!.clerk, m.movedAs!)).importedFrom.get(m.from) ?? [];
      if (m.plan === 'consent') {
        expect([...copies].sort()).to.deep.equal((await recordsOf(desks.get(m.from)!.clerk, m.card.addresseeNumber)).own.sort());
        expect(s.imported).to.equal(copies.length);
        imported += copies.length;
      } else {
        expect(copies, 'nothing released after a refusal').to.have.length(0);
      }
    }
    expect(progress.imported).to.equal(imported);

    // The same subjects again: every ok subject is asked again, and nothing is imported twice.
    const again = await api('POST', `${fed.url(TODA)}/exchange/bulk-queries`, { token: operator, body });
    const second = await waitForJob(TODA, operator, again.body.id);
    expect(second.byStatus.ok).to.equal(4);
    expect(second.created).to.equal(0);
    expect(second.imported).to.equal(imported);
  });

  it('when a clerk selects everyone moved in since today, then exactly the residents with a consent for the purpose are asked', async () => {
    const moves = await move([mover(TODA, AKIOTA, 'consent'), mover(TAWARAMOTO, AKIOTA, 'consent'), mover(TODA, AKIOTA, 'no-consent')]);
    const clerk = await fed.login(AKIOTA, 'clerk1');
    const today = new Date().toISOString().slice(0, 10);
    const created = await api('POST', `${fed.url(AKIOTA)}/exchange/bulk-queries`, { token: clerk, body: { purpose: PURPOSE, movedInSince: today } });
    expect(created.status).to.equal(202);
    expect(created.body.total).to.equal(2);
    const progress = await waitForJob(AKIOTA, clerk, created.body.id);
    expect(progress.byStatus.ok).to.equal(2);
    const subjects = await readAllSubjects(desks.get(AKIOTA)!.operator, created.body.id);
    expect(subjects.map((s) => s.addresseeNumber).sort()).to.deep.equal(moves.filter((m) => m.plan === 'consent').map((m) => m.movedAs).sort());

    const onlyToda = await api('POST', `${fed.url(AKIOTA)}/exchange/bulk-queries`, { token: clerk, body: { purpose: PURPOSE, movedInSince: today, source: TODA } });
    expect(onlyToda.body.total).to.equal(1);
  });

  it('when the request is malformed, unauthenticated, of the wrong role or names unknown things, then a problem names the field and the rule and no job is made', async () => {
    const url = `${fed.url(TODA)}/exchange/bulk-queries`;
    const operator = await fed.login(TODA, 'operator1');
    const before = (await api('GET', url, { token: operator })).body.jobs.length;

    expect((await api('POST', url, { body: { purpose: PURPOSE, movedInSince: '2020-01-01' } })).status).to.equal(401);
    const officer = await fed.login(TODA, 'officer1');
    expect((await api('POST', url, { token: officer, body: { purpose: PURPOSE, movedInSince: '2020-01-01' } })).status).to.equal(403);
    expect((await api('GET', url, { token: officer })).status).to.equal(403);

    const cases: [unknown, number, string][] = [
      [{ purpose: 'curiosity', movedInSince: '2020-01-01' }, 400, 'purpose'],
      [{ purpose: PURPOSE }, 400, 'subjects'],
      [{ purpose: PURPOSE, subjects: [{ addresseeNumber: '1234567890', source: TAWARAMOTO }] }, 400, 'subjects.0.addresseeNumber'],
      [{ purpose: PURPOSE, subjects: [{ addresseeNumber: fed.residents(TODA)[0]!.addresseeNumber, source: '293611' }] }, 400, 'subjects.0.source'],
      [{ purpose: PURPOSE, movedInSince: '2020-02-30' }, 400, 'movedInSince'],
      [{ purpose: PURPOSE, movedInSince: '2020-01-01', subjects: [{ addresseeNumber: fed.residents(TODA)[0]!.addresseeNumber, source: AKIOTA }] }, 400, 'movedInSince'],
      [{ purpose: PURPOSE, subjects: [{ addresseeNumber: fed.residents(TODA)[0]!.addresseeNumber, source: TODA }] }, 400, 'subjects.0.source'],
      // A well-formed municipality code that is not a member of this federation (Tokyo, Chiyoda).
      [{ purpose: PURPOSE, subjects: [{ addresseeNumber: fed.residents(TODA)[0]!.addresseeNumber, source: '131016' }] }, 400, 'subjects.0.source'],
      [{ purpose: PURPOSE, subjects: [{ addresseeNumber: fed.residents(AKIOTA)[3]!.addresseeNumber, source: AKIOTA }] }, 404, 'subjects.0.addresseeNumber'],
      // Within the plausible range of dates, but after every move-in: it selects no one.
      [{ purpose: PURPOSE, movedInSince: '2199-01-01' }, 422, 'movedInSince'],
      [{ purpose: PURPOSE, movedInSince: '2026-02-30' }, 400, 'movedInSince'],
    ];
    const twice = { addresseeNumber: fed.residents(TODA)[0]!.addresseeNumber, source: AKIOTA };
    cases.push([{ purpose: PURPOSE, subjects: [twice, twice] }, 400, 'subjects.1.addresseeNumber']);
    for (const [body, status, field] of cases) {
      const res = await api('POST', url, { token: operator, body });
      expect(res.status, JSON.stringify(body)).to.equal(status);
      expect(res.headers.get('content-type')).to.match(/application\/problem\+json/);
      expect(res.body.field, JSON.stringify(res.body)).to.equal(field);
      expect(res.body.rule).to.be.a('string').and.not.equal('');
    }
    expect((await api('GET', url, { token: operator })).body.jobs).to.have.length(before);

    const unknown = await api('GET', `${url}/00000000-0000-4000-8000-000000000000`, { token: operator });
    expect(unknown.status).to.equal(404);
    const malformed = await api('GET', `${url}/not-a-job`, { token: operator });
    expect(malformed.status).to.equal(400);
    expect(malformed.body.field).to.equal('id');
    const finished = (await api('GET', url, { token: operator })).body.jobs[0];
    const retry = await api('POST', `${url}/${finished.id}/retry`, { token: operator });
    expect(retry.status).to.equal(409);
    expect(retry.body).to.include({ field: 'id' });
  });

  it('when a municipality is asked whether it is alive and ready, then it answers with its database and both peers up', async () => {
    const health = await api('GET', `${fed.url(TODA)}/health`);
    expect(health.status).to.equal(200);
    const ready = await api('GET', `${fed.url(TODA)}/ready`);
    expect(ready.status).to.equal(200);
    expect(ready.body).to.include({ status: 'ready', ready: true, degraded: false, member: TODA });
    expect(ready.body.database.status).to.equal('up');
    expect(ready.body.peers.gateway.status).to.equal('up');
    expect(ready.body.peers.issuer.status).to.equal('up');
    expect(ready.body.queued).to.deep.include({ registrations: 0 });
  });
});
