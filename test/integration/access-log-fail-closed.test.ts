/**
 * Fail closed (DESIGN.md §5: an access whose log append fails does not happen). A trigger that
 * raises on every insert into a member's access_log, installed in the running app's own database,
 * stands for a full disk or a broken log: each operation is refused with a 503
 * `access-log-unavailable` problem, never a generic 500 and never done unlogged, and nothing
 * else changes. Removing the trigger lets the same operation through.
 */
import { expect } from 'chai';
import { QueryTypes, type Sequelize } from 'sequelize';
import { GATEWAY_ID } from '../../shared/federation/protocol.ts';
import { breakAccessLog, repairAccessLog } from '../fixtures/database.ts';
import { buildResident, OPAQUE_SEALED } from '../fixtures/factories.ts';
import { TEST_PASSWORD } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';
import { craftAndSend, moveOut, moveResident, residentWithRecords, startInProcessFederation, TAWARAMOTO, TODA, type InProcessFederation, type MovedResident } from '../fixtures/inprocess-federation.ts';

const A = TAWARAMOTO;
const B = TODA;

const count = async (sequelize: Sequelize, table: string): Promise<number> =>
  Number((await sequelize.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`, { type: QueryTypes.SELECT }))[0]!.n);

/** Refusals seen: a 503 to the caller, or one seen upstream (a subject left source_unavailable, a code left pending). */
const tally = { refused: 0, upstream: 0 };

function expectLogUnavailable(res: { status: number; body: { type?: string } }) {
  tally.refused += 1;
  expect(res.status, JSON.stringify(res.body)).to.equal(503);
  expect(res.body.type).to.match(/\/access-log-unavailable$/);
}

describe('fail closed: an access whose log entry cannot be written does not happen', () => {
  let fed: InProcessFederation;
  let moved: MovedResident;

  before(async function () {
    this.timeout(120_000);
    // Registration rounds run when a test asks for one: a background tick between creating a
    // resident and breaking a log would register them before the refusal under test.
    fed = await startInProcessFederation({ municipalities: [A, B], outboxPollSeconds: 3600 });
    moved = await moveResident(fed, A, B);
  });
  after(async () => {
    // Each case also checks that the rows it would have changed are unchanged.
    console.log(`      fail closed: 8 paths (clerk write, gateway query, source release, staff query, issuer, gateway registration, sign-in, move-out/move-in), `
      + `${tally.refused + tally.upstream} operations refused (${tally.refused} answered 503 access-log-unavailable, ${tally.upstream} seen upstream as unavailable), 0 rows changed`);
    await fed?.close();
  });
  afterEach(async () => {
    for (const s of [fed.m(A).ctx.sequelize, fed.m(B).ctx.sequelize, fed.gateway.gateway.ctx.sequelize, fed.issuer.issuer.ctx.sequelize]) await repairAccessLog(s);
  });

  it('when a clerk registers a resident and the access log cannot be written, then 503 access-log-unavailable as problem+json, no resident and no entry; once repaired, the same request succeeds', async () => {
    const m = fed.m(B);
    const clerk = await m.login('clerk1');
    const before = { residents: await count(m.ctx.sequelize, 'residents'), log: await count(m.ctx.sequelize, 'access_log') };
    await breakAccessLog(m.ctx.sequelize);
    const input = buildResident();
    const refused = await api('POST', `${m.url}/residents`, { token: clerk, body: input });
    expectLogUnavailable(refused);
    expect(refused.headers.get('content-type')).to.match(/application\/problem\+json/);
    expect(JSON.stringify(refused.body)).to.not.match(/disk is full|No space left/);
    expect(await count(m.ctx.sequelize, 'residents')).to.equal(before.residents);
    expect(await count(m.ctx.sequelize, 'access_log')).to.equal(before.log);

    await repairAccessLog(m.ctx.sequelize);
    const done = await api('POST', `${m.url}/residents`, { token: clerk, body: input });
    expect(done.status, JSON.stringify(done.body)).to.equal(201);
  });

  it('when the gateway cannot write its log, then a query and a query it would refuse both get 503 access-log-unavailable, no replay entry is spent and nothing reaches A', async () => {
    const gw = fed.gateway.gateway.ctx.sequelize;
    const atA = await count(fed.m(A).ctx.sequelize, 'access_log');
    const before = { log: await count(gw, 'access_log'), replay: await count(gw, 'replay_cache'), heads: await count(gw, 'witnessed_heads') };
    await breakAccessLog(gw);
    const client = fed.client(B);
    const refusedWhole = await client.postJson<{ type: string }>(`${fed.gateway.url}/queries`, { query: 'e30.e30.e30', sealed: OPAQUE_SEALED }, { expectPeer: GATEWAY_ID });
    expectLogUnavailable(refusedWhole);
    const sent = await craftAndSend(fed, B, { addresseeNumber: moved.toAddressee, source: A }).then(() => null, (err: Error) => err.message);
    expect(sent).to.match(/^gateway: 503 .*access-log-unavailable/);
    tally.refused += 1;
    expect(await count(gw, 'access_log')).to.equal(before.log);
    expect(await count(gw, 'replay_cache')).to.equal(before.replay);
    expect(await count(gw, 'witnessed_heads')).to.equal(before.heads);
    expect(await count(fed.m(A).ctx.sequelize, 'access_log'), 'A was never asked').to.equal(atA);
  });

  it('when the source cannot write its log, then it releases nothing: B\'s subject is source_unavailable and A\'s log and B\'s records are unchanged', async () => {
    const a = fed.m(A).ctx.sequelize;
    const b = fed.m(B).ctx.sequelize;
    const before = { logA: await count(a, 'access_log'), recordsB: await count(b, 'vaccination_records') };
    await breakAccessLog(a);
    const clerk = await fed.m(B).login('clerk1');
    const res = await api('POST', `${fed.m(B).url}/exchange/queries`, {
      token: clerk, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moved.toAddressee, source: A }] },
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.results[0]).to.include({ status: 'source_unavailable' });
    expect(res.body.results[0].reason).to.equal('source_status_503');
    tally.upstream += 1;
    expect(await count(a, 'access_log')).to.equal(before.logA);
    expect(await count(b, 'vaccination_records')).to.equal(before.recordsB);
  });

  it('when a staff member at B asks and B cannot write its log, then 503 access-log-unavailable and no query row, no request leaves B', async () => {
    const b = fed.m(B).ctx.sequelize;
    const gw = fed.gateway.gateway.ctx.sequelize;
    // Only query entries: the gateway's own background work (a code registration, an alert run) may
    // append meanwhile, and none of it is a request from B.
    const queriesAtGateway = () => count(gw, "access_log WHERE action LIKE 'query.%'");
    const before = { subjects: await count(b, 'query_subjects'), gateway: await queriesAtGateway() };
    // Signed in first: a sign-in is an access too, and with the log broken it is refused as well.
    const clerk = await fed.m(B).login('clerk1');
    await breakAccessLog(b);
    const res = await api('POST', `${fed.m(B).url}/exchange/queries`, {
      token: clerk, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moved.toAddressee, source: A }] }
    });
    expectLogUnavailable(res);
    expect(await count(b, 'query_subjects')).to.equal(before.subjects);
    expect(await queriesAtGateway(), 'the gateway heard nothing').to.equal(before.gateway);
  });

  /** A resident of B waiting for a code, and what the issuer and the gateway hold before the run. */
  async function pendingResident() {
    const m = fed.m(B);
    const created = await api('POST', `${m.url}/residents`, { token: await m.login('clerk1'), body: buildResident() });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const gw = fed.gateway.gateway.ctx.sequelize;
    const issuer = fed.issuer.issuer.ctx.sequelize;
    return {
      addressee: created.body.addresseeNumber as string,
      correspondences: await count(gw, 'correspondence'),
      issuerCodeEntries: await count(issuer, "access_log WHERE action IN ('code.send', 'code.issue') AND outcome = 'allowed'"),
    };
  }
  const codeStatusOf = async (addressee: string) => (await fed.m(B).ctx.models.Resident.findOne({ where: { addresseeNumber: addressee }, raw: true }))?.codeStatus;
  const runRegistrations = async () => api('POST', `${fed.m(B).url}/exchange/registrations/run`, { token: await fed.m(B).tokenFor('operator') });

  it('when the issuer cannot write its code entries, then it logs before it calls the gateway: the batch fails, the gateway records no correspondence and the resident stays pending', async () => {
    const before = await pendingResident();
    await breakAccessLog(fed.issuer.issuer.ctx.sequelize, ['code.send', 'code.issue']);
    const run = await runRegistrations();
    expect(run.status, JSON.stringify(run.body)).to.equal(200);
    expect(run.body.pending, 'still waiting for its code').to.be.greaterThan(0);
    expect(await count(fed.gateway.gateway.ctx.sequelize, 'correspondence'), 'the gateway heard nothing').to.equal(before.correspondences);
    expect(await count(fed.issuer.issuer.ctx.sequelize, "access_log WHERE action IN ('code.send', 'code.issue') AND outcome = 'allowed'")).to.equal(before.issuerCodeEntries);
    expect(await codeStatusOf(before.addressee)).to.equal('pending');
    tally.upstream += 1;
  });

  it('when the gateway cannot write its correspondence entries, then the issuer\'s registration is refused with 503: no correspondence is recorded and the resident stays pending', async () => {
    const before = await pendingResident();
    await breakAccessLog(fed.gateway.gateway.ctx.sequelize, ['correspondence.register']);
    const run = await runRegistrations();
    expect(run.status, JSON.stringify(run.body)).to.equal(200);
    expect(run.body.pending).to.be.greaterThan(0);
    expect(await count(fed.gateway.gateway.ctx.sequelize, 'correspondence')).to.equal(before.correspondences);
    // The issuer logged the refusal it met: the gateway's 503, never a code it handed out.
    const refusals = await count(fed.issuer.issuer.ctx.sequelize, "access_log WHERE action = 'code.issue' AND outcome = 'denied' AND reason = 'gateway_refused_503'");
    expect(refusals).to.be.greaterThan(0);
    expect(await codeStatusOf(before.addressee)).to.equal('pending');
    tally.upstream += 1;
  });

  it('when a member of staff signs in and the access log cannot be written, then 503 access-log-unavailable and no session; once repaired, the same sign-in succeeds', async () => {
    const m = fed.m(B);
    const before = await count(m.ctx.sequelize, 'access_log');
    await breakAccessLog(m.ctx.sequelize);
    const refused = await api('POST', `${m.url}/auth/login`, { body: { username: 'clerk1', password: TEST_PASSWORD } });
    expectLogUnavailable(refused);
    expect(refused.body).not.to.have.property('token');
    expect(refused.headers.get('set-cookie')).to.equal(null);
    expect(await count(m.ctx.sequelize, 'access_log')).to.equal(before);
    await repairAccessLog(m.ctx.sequelize);
    const done = await api('POST', `${m.url}/auth/login`, { body: { username: 'clerk1', password: TEST_PASSWORD } });
    expect(done.status, JSON.stringify(done.body)).to.equal(200);
  });

  it('when a move-out or a move-in cannot be logged, then 503 access-log-unavailable: no certificate, no new resident, both residents as they were', async () => {
    const a = fed.m(A);
    const b = fed.m(B);
    const [aClerk, bClerk] = await Promise.all([a.login('clerk1'), b.login('clerk1')]);
    const { input, addresseeNumber } = await residentWithRecords(a, aClerk);
    const body = { moveOutDate: new Date().toISOString().slice(0, 10), destination: B, destinationAddress: '転入先 1-1' };
    const logA = await count(a.ctx.sequelize, 'access_log');
    await breakAccessLog(a.ctx.sequelize);
    const out = await api('POST', `${a.url}/residents/${addresseeNumber}/move-out`, { token: aClerk, body });
    expectLogUnavailable(out);
    expect(out.body).not.to.have.property('certificate');
    await repairAccessLog(a.ctx.sequelize);
    expect(await count(a.ctx.sequelize, 'access_log')).to.equal(logA);
    expect((await api('GET', `${a.url}/residents/${addresseeNumber}`, { token: aClerk })).body.status).to.equal('resident');

    const certificate = await moveOut(a, aClerk, addresseeNumber, B);
    const before = { residents: await count(b.ctx.sequelize, 'residents'), log: await count(b.ctx.sequelize, 'access_log') };
    await breakAccessLog(b.ctx.sequelize);
    const moveIn = await api('POST', `${b.url}/move-ins`, { token: bClerk, body: { certificate, myNumber: input.myNumber, address: '転入先 1-1' } });
    expectLogUnavailable(moveIn);
    expect(await count(b.ctx.sequelize, 'residents')).to.equal(before.residents);
    expect(await count(b.ctx.sequelize, 'access_log')).to.equal(before.log);
  });
});
