/**
 * Crashes, seen by the operator: a municipality killed while queries are in flight leaves their
 * subject rows `pending` (written before the query leaves, settled when the answer is in). The
 * next start settles them as `source_unavailable` with reason `interrupted`, retryable, one
 * access-log entry each, before any worker runs; subjects already settled stay as they were.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { appendAccessBatch } from '../../shared/access-log/chain.ts';
import { verifyChain } from '../../shared/access-log/verify.ts';
import { buildResident } from '../fixtures/factories.ts';
import { api } from '../fixtures/http.ts';
import { DEMO_MUNICIPALITIES, removeDir, startMunicipality, type RunningMunicipality } from '../fixtures/municipality.ts';

const TODA = DEMO_MUNICIPALITIES.toda;

describe('queries interrupted by a stop are settled at the next start', () => {
  let m: RunningMunicipality;
  let addresseeNumber: string;
  const inFlight = `jti-${randomUUID()}`;
  const finished = `jti-${randomUUID()}`;
  const requestId = `rid-${randomUUID()}`;

  before(async function () {
    this.timeout(60_000);
    m = await startMunicipality(TODA);
    const clerk = await m.tokenFor('clerk');
    const created = await api('POST', `${m.url}/residents`, { token: clerk, body: buildResident() });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    addresseeNumber = created.body.addresseeNumber;
    const resident = (await m.ctx.models.Resident.findOne({ where: { addresseeNumber }, raw: true }))!;

    // What a process killed mid-query leaves: its subjects written and logged as sent, never settled;
    // beside them a query that did finish.
    const row = { requestId, residentId: resident.id, source: '293610', purpose: 'next-dose-scheduling', legalBasis: 'consent', consentId: null, exceptionId: null, actorId: 'staff-7' };
    await m.ctx.sequelize.transaction(async (t) => {
      await m.ctx.models.QuerySubject.bulkCreate([
        ...['0', '1', '2'].map((ref) => ({ ...row, queryJti: inFlight, ref, status: 'pending' })),
        { ...row, queryJti: finished, ref: '0', status: 'ok', recordCount: 2, importedCount: 2 },
      ], { transaction: t });
      await appendAccessBatch(m.ctx.models.AccessLog, t, ['0', '1', '2'].map((ref) => ({
        requestId, actorType: 'staff' as const, actorId: 'staff-7', action: 'exchange.query.send', outcome: 'allowed' as const, subject: addresseeNumber,
        details: { source: '293610', ref },
      })));
    });
    await m.stop();
    m = await startMunicipality(TODA, { dir: m.dir, config: m.ctx.config });
  });
  after(async () => {
    await m?.stop();
    if (m) removeDir(m.dir);
  });

  it('when the municipality starts again, then every subject left pending is source_unavailable/interrupted and retryable, and a finished one is untouched', async () => {
    const clerk = await m.tokenFor('clerk');
    const view = await api('GET', `${m.url}/exchange/queries/${inFlight}`, { token: clerk });
    expect(view.status).to.equal(200);
    expect(view.body.subjects.map((s: { ref: string; status: string; reason: string; retryAfter: number }) => [s.ref, s.status, s.reason, s.retryAfter])).to.deep.equal([
      ['0', 'source_unavailable', 'interrupted', 0], ['1', 'source_unavailable', 'interrupted', 0], ['2', 'source_unavailable', 'interrupted', 0],
    ]);
    const done = await api('GET', `${m.url}/exchange/queries/${finished}`, { token: clerk });
    expect(done.body.subjects[0]).to.include({ status: 'ok', recordCount: 2, imported: 2 });
    expect(await m.ctx.models.QuerySubject.count({ where: { status: 'pending' } })).to.equal(0);
  });

  it('when the subjects are settled, then each settlement is in the access log under the query\'s request id, and the chain verifies', async () => {
    const entries = await m.ctx.models.AccessLog.findAll({ where: { requestId, action: 'exchange.query.interrupted' }, order: [['seq', 'ASC']], raw: true });
    expect(entries.map((e) => [e.subject, e.outcome, e.reason, JSON.parse(e.details).ref])).to.deep.equal([
      [addresseeNumber, 'denied', 'interrupted', '0'], [addresseeNumber, 'denied', 'interrupted', '1'], [addresseeNumber, 'denied', 'interrupted', '2'],
    ]);
    expect(entries.every((e) => e.actorType === 'system')).to.equal(true);
    const report = await verifyChain(m.ctx.sequelize, { member: TODA.code });
    expect(report.ok, JSON.stringify(report.broken)).to.equal(true);
  });

  it('when it starts yet again, then nothing more is settled or logged', async () => {
    const before = await m.ctx.models.AccessLog.count({ where: { action: 'exchange.query.interrupted' } });
    await m.stop();
    m = await startMunicipality(TODA, { dir: m.dir, config: m.ctx.config });
    expect(await m.ctx.models.AccessLog.count({ where: { action: 'exchange.query.interrupted' } })).to.equal(before);
  });
});
