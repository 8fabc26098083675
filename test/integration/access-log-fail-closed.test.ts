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
import { api } from '../fixtures/http.ts';
import { craftAndSend, moveResident, startInProcessFederation, TAWARAMOTO, TODA, type InProcessFederation, type MovedResident } from '../fixtures/inprocess-federation.ts';

const A = TAWARAMOTO;
const B = TODA;

const count = async (sequelize: Sequelize, table: string): Promise<number> =>
  Number((await sequelize.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`, { type: QueryTypes.SELECT }))[0]!.n);

function expectLogUnavailable(res: { status: number; body: { type?: string } }) {
  expect(res.status, JSON.stringify(res.body)).to.equal(503);
  expect(res.body.type).to.match(/\/access-log-unavailable$/);
}

describe('fail closed: an access whose log entry cannot be written does not happen', () => {
  let fed: InProcessFederation;
  let moved: MovedResident;

  before(async function () {
    this.timeout(120_000);
    fed = await startInProcessFederation({ municipalities: [A, B] });
    moved = await moveResident(fed, A, B);
  });
  after(async () => fed?.close());
  afterEach(async () => {
    for (const s of [fed.m(A).ctx.sequelize, fed.m(B).ctx.sequelize, fed.gateway.gateway.ctx.sequelize]) await repairAccessLog(s);
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
});
