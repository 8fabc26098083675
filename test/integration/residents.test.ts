import { expect } from 'chai';
import { isValidMyNumber } from '../../shared/identifiers.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { isValidAddresseeNumber } from '../../services/municipality/residents/schemas.ts';
import { findResidentByAddressee, setResidentStatus } from '../../services/municipality/residents/service.ts';
import { generateResidents, SEED_REFERENCE_DATE } from '../../services/municipality/seed.ts';
import { insertGeneratedResidents } from '../../scripts/seed.ts';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';
import { buildResident, createResidentVia, newKey, rowCounts } from '../fixtures/factories.ts';

describe('residents at a municipality', () => {
  let m: RunningMunicipality;
  let clerk: string;
  const actor = { staffId: 'test-clerk', role: 'clerk' as const, municipality: DEMO_MUNICIPALITIES.tawaramoto.code };

  before(async () => {
    m = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto);
    clerk = await m.tokenFor('clerk');
  });
  after(async () => {
    await m.stop();
    removeDir(m.dir);
  });

  /** The problem code a service call failed with. */
  const failure = async (promise: Promise<unknown>): Promise<string> => {
    try {
      await promise;
    } catch (err) {
      return (err as { code: string }).code;
    }
    throw new Error('the call succeeded');
  };

  const logFor = async (subject: string) =>
    (await m.ctx.models.AccessLog.findAll({ where: { subject }, raw: true, order: [['seq', 'ASC']] })).map((e) => ({ action: e.action, actorRole: e.actorRole, outcome: e.outcome }));

  it('when a clerk registers a resident, then 201 shows the My Number masked, a checked addressee number and canonical kana', async () => {
    const input = buildResident({ kana: 'ﾀﾅｶ  ﾊﾅｺ' });
    const res = await api('POST', `${m.url}/residents`, { token: clerk, body: input });
    expect(res.status).to.equal(201);
    expect(isValidAddresseeNumber(res.body.addresseeNumber)).to.equal(true);
    expect(res.body).to.include({ name: input.name, kana: 'タナカ\u3000ハナコ', birthDate: input.birthDate, status: 'resident', codeStatus: 'pending' });
    expect(res.body.myNumberMasked).to.equal(`********${input.myNumber.slice(-4)}`);
    expect(Object.keys(res.body)).to.include.members(['addresseeNumber', 'myNumberMasked']);
    for (const hidden of ['id', 'myNumber', 'myNumberEncrypted', 'myNumberIndex', 'code']) expect(res.body).not.to.have.property(hidden);
    expect(JSON.stringify(res.body)).not.to.include(input.myNumber);

    const read = await api('GET', `${m.url}/residents/${res.body.addresseeNumber}`, { token: clerk });
    expect(read.status).to.equal(200);
    expect(read.body).to.deep.equal(res.body);
    expect(await logFor(res.body.addresseeNumber)).to.deep.equal([
      { action: Actions.RESIDENT_CREATE, actorRole: 'clerk', outcome: 'allowed' },
      { action: Actions.RESIDENT_READ, actorRole: 'clerk', outcome: 'allowed' },
    ]);
  });

  it('when the same My Number is registered while its holder is a current resident, then 409 names myNumber and nothing is added', async () => {
    const { input, resident } = await createResidentVia(m, clerk);
    const before = await rowCounts(m);
    const again = await api('POST', `${m.url}/residents`, { token: clerk, body: buildResident({ myNumber: input.myNumber, name: '別人 です' }) });
    expect(again.status).to.equal(409);
    expect(again.body).to.include({ field: 'myNumber', existing: resident.addresseeNumber });
    expect(JSON.stringify(again.body)).not.to.include(input.myNumber);
    expect(await rowCounts(m)).to.deep.equal(before);
  });

  it('when a field is malformed, then 400 problem+json names the field and the rule, and no row is written', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ myNumber: '123456789012' }, 'myNumber', /check digit/],
      [{ myNumber: 123456789018 }, 'myNumber', /./],
      [{ kana: 'たなか はなこ' }, 'kana', /katakana/],
      [{ kana: '田中 花子' }, 'kana', /katakana/],
      [{ birthDate: '2999-01-01' }, 'birthDate', /future/],
      [{ birthDate: '2001-02-29' }, 'birthDate', /calendar date/],
      [{ sex: 'M' }, 'sex', /one of/],
      [{ name: '   ' }, 'name', /required/],
      [{ name: 'a\u0007b' }, 'name', /control/],
      [{ address: 'x'.repeat(301) }, 'address', /at most 300/],
      [{ previousMunicipality: '293611' }, 'previousMunicipality', /check digit/],
      [{ role: 'admin' }, 'body', /Unrecognized key|unrecognized/i],
    ];
    const before = await rowCounts(m);
    for (const [override, field, rule] of cases) {
      const res = await api('POST', `${m.url}/residents`, { token: clerk, body: buildResident(override) });
      expect(res.status, field).to.equal(400);
      expect(res.headers.get('content-type')).to.match(/application\/problem\+json/);
      const named = res.body.errors.find((e: { field: string }) => e.field === field) ?? res.body;
      expect(named.field, JSON.stringify(res.body)).to.equal(field);
      expect(named.rule, field).to.match(rule);
    }
    const missing = await api('POST', `${m.url}/residents`, { token: clerk, body: {} });
    expect(missing.status).to.equal(400);
    expect(missing.body.errors.map((e: { field: string }) => e.field)).to.include.members(['name', 'kana', 'birthDate', 'sex', 'address', 'myNumber']);
    expect(await rowCounts(m)).to.deep.equal(before);
  });

  it('when residents are searched by kana prefix, name, birth date or status, then only matches come back, paged', async () => {
    const a = await createResidentVia(m, clerk, { name: '検索 一郎', kana: 'ケンサク イチロウ', birthDate: '1950-01-02' });
    const b = await createResidentVia(m, clerk, { name: '検索 二郎', kana: 'ケンサク ジロウ', birthDate: '1950-01-03' });
    const byKana = await api('GET', `${m.url}/residents?kana=${encodeURIComponent('ケンサク')}`, { token: clerk });
    expect(byKana.status).to.equal(200);
    expect(byKana.body.total).to.equal(2);
    expect(byKana.body.items.map((r: { addresseeNumber: string }) => r.addresseeNumber)).to.have.members([a.resident.addresseeNumber, b.resident.addresseeNumber]);
    const byName = await api('GET', `${m.url}/residents?name=${encodeURIComponent('二郎')}`, { token: clerk });
    expect(byName.body.items.map((r: { addresseeNumber: string }) => r.addresseeNumber)).to.deep.equal([b.resident.addresseeNumber]);
    const byBirth = await api('GET', `${m.url}/residents?birthDate=1950-01-02&status=resident`, { token: clerk });
    expect(byBirth.body.items.map((r: { addresseeNumber: string }) => r.addresseeNumber)).to.deep.equal([a.resident.addresseeNumber]);
    const paged = await api('GET', `${m.url}/residents?kana=${encodeURIComponent('ケンサク')}&pageSize=1&page=2`, { token: clerk });
    expect(paged.body).to.include({ total: 2, page: 2, pageSize: 1 });
    expect(paged.body.items).to.have.length(1);
    const wildcard = await api('GET', `${m.url}/residents?name=${encodeURIComponent('%')}`, { token: clerk });
    expect(wildcard.body.total, 'a % in the query is literal, not a wildcard').to.equal(0);
    // Each resident listed gets its own search entry, so their disclosure report shows it.
    expect((await logFor(b.resident.addresseeNumber)).filter((e) => e.action === Actions.RESIDENT_SEARCH)).to.have.length(3);
  });

  it('when a search parameter is malformed, then 400 names it', async () => {
    for (const [query, field] of [['page=0', 'page'], ['pageSize=1000', 'pageSize'], ['status=gone', 'status'], ['birthDate=1950-13-01', 'birthDate'], ['kana=abc', 'kana'], ['color=red', 'query']]) {
      const res = await api('GET', `${m.url}/residents?${query}`, { token: clerk });
      expect(res.status, query).to.equal(400);
      expect(res.body.field, query).to.equal(field);
    }
  });

  it('when a clerk changes the address with a reason, then the history keeps the old value, the reason and the actor', async () => {
    const { input, resident } = await createResidentVia(m, clerk);
    const res = await api('PATCH', `${m.url}/residents/${resident.addresseeNumber}`, { token: clerk, body: { address: '奈良県磯城郡田原本町大字阪手 5番地', reason: '町内転居の届出' } });
    expect(res.status).to.equal(200);
    expect(res.body.address).to.equal('奈良県磯城郡田原本町大字阪手 5番地');
    const history = await api('GET', `${m.url}/residents/${resident.addresseeNumber}/history`, { token: clerk });
    expect(history.status).to.equal(200);
    expect(history.body.history).to.have.length(1);
    expect(history.body.history[0]).to.include({ reason: '町内転居の届出' });
    expect(history.body.history[0].actorId).to.be.a('string');
    expect(history.body.history[0].changes).to.deep.equal([{ field: 'address', from: input.address, to: '奈良県磯城郡田原本町大字阪手 5番地' }]);

    const same = await api('PATCH', `${m.url}/residents/${resident.addresseeNumber}`, { token: clerk, body: { address: '奈良県磯城郡田原本町大字阪手 5番地', reason: 'again' } });
    expect(same.status).to.equal(422);
    expect(same.body.rule).to.match(/differ/);
    const noReason = await api('PATCH', `${m.url}/residents/${resident.addresseeNumber}`, { token: clerk, body: { address: 'x' } });
    expect(noReason.status).to.equal(400);
    expect(noReason.body.field).to.equal('reason');
    const myNumber = await api('PATCH', `${m.url}/residents/${resident.addresseeNumber}`, { token: clerk, body: { myNumber: input.myNumber, reason: 'x' } });
    expect(myNumber.status, 'the My Number cannot be changed through PATCH').to.equal(400);
    expect((await api('GET', `${m.url}/residents/${resident.addresseeNumber}/history`, { token: clerk })).body.history).to.have.length(1);
  });

  it('when a resident moves out, then the status changes, the history keeps the previous values, and death is final', async () => {
    const { resident } = await createResidentVia(m, clerk);
    const r = (await findResidentByAddressee(m.ctx, resident.addresseeNumber))!;
    const moved = await inTransaction(m.ctx.sequelize, (t) => setResidentStatus(m.ctx, t, r.id, 'moved-out', { movedOutAt: '2024-04-01T00:00:00.000Z', moveOutDestination: '343692' }, actor));
    expect(moved).to.include({ status: 'moved-out', movedOutAt: '2024-04-01T00:00:00.000Z', moveOutDestination: '343692' });
    expect(await failure(inTransaction(m.ctx.sequelize, (t) => setResidentStatus(m.ctx, t, r.id, 'moved-out', {}, actor)))).to.equal('status-unchanged');
    await inTransaction(m.ctx.sequelize, (t) => setResidentStatus(m.ctx, t, r.id, 'deceased', { reason: '死亡届' }, actor));
    expect(await failure(inTransaction(m.ctx.sequelize, (t) => setResidentStatus(m.ctx, t, r.id, 'resident', {}, actor)))).to.equal('resident-deceased');
    const history = await api('GET', `${m.url}/residents/${resident.addresseeNumber}/history`, { token: clerk });
    expect(history.body.history.map((h: { changes: { field: string; from: unknown }[] }) => h.changes.find((c) => c.field === 'status')?.from)).to.deep.equal(['resident', 'moved-out']);
    expect(history.body.history[1].reason).to.equal('死亡届');
    expect((await api('GET', `${m.url}/residents?status=deceased`, { token: clerk })).body.items.map((x: { addresseeNumber: string }) => x.addresseeNumber)).to.include(resident.addresseeNumber);
  });

  it('when the addressee number is malformed, then 400 names it; when it is unknown, then 404', async () => {
    for (const bad of ['123', 'abcdefghij', '1234567890']) {
      const res = await api('GET', `${m.url}/residents/${bad}`, { token: clerk });
      expect(res.status, bad).to.equal(400);
      expect(res.body.field).to.equal('addresseeNumber');
    }
    const unknown = await api('GET', `${m.url}/residents/0000000000`, { token: clerk });
    expect(unknown.status).to.equal(404);
    expect((await api('PATCH', `${m.url}/residents/0000000000`, { token: clerk, body: { name: 'x', reason: 'y' } })).status).to.equal(404);
    expect((await api('GET', `${m.url}/residents/0000000000/history`, { token: clerk })).status).to.equal(404);
  });

  it('when there is no token, then 401; a privacy officer or admin gets 403; an operator may read but not write', async () => {
    const { resident } = await createResidentVia(m, clerk);
    const path = `${m.url}/residents/${resident.addresseeNumber}`;
    expect((await api('GET', path)).status).to.equal(401);
    expect((await api('POST', `${m.url}/residents`, { body: buildResident() })).status).to.equal(401);
    for (const role of ['privacy_officer', 'admin'] as const) {
      const token = await m.tokenFor(role);
      expect((await api('GET', path, { token })).status, role).to.equal(403);
      expect((await api('GET', `${m.url}/residents`, { token })).status, role).to.equal(403);
      expect((await api('GET', `${path}/history`, { token })).status, role).to.equal(403);
      expect((await api('POST', `${m.url}/residents`, { token, body: buildResident() })).status, role).to.equal(403);
      expect((await api('PATCH', path, { token, body: { name: 'x', reason: 'y' } })).status, role).to.equal(403);
    }
    const operator = await m.tokenFor('operator');
    expect((await api('GET', path, { token: operator })).status).to.equal(200);
    expect((await api('POST', `${m.url}/residents`, { token: operator, body: buildResident() })).status).to.equal(403);
    expect((await api('PATCH', path, { token: operator, body: { name: 'x', reason: 'y' } })).status).to.equal(403);
  });

  it('when a registration is retried with the same Idempotency-Key, then the first response comes back and one resident exists', async () => {
    const input = buildResident();
    const key = newKey();
    const first = await api('POST', `${m.url}/residents`, { token: clerk, body: input, headers: { 'idempotency-key': key } });
    const before = await m.ctx.models.Resident.count();
    const retry = await api('POST', `${m.url}/residents`, { token: clerk, body: input, headers: { 'idempotency-key': key } });
    expect(first.status).to.equal(201);
    expect(retry.status).to.equal(201);
    expect(retry.body).to.deep.equal(first.body);
    expect(retry.headers.get('idempotent-replayed')).to.equal('true');
    expect(await m.ctx.models.Resident.count()).to.equal(before);
  });

  it('when the seed generator runs, then it is deterministic and every generated record passes the service rules', async () => {
    const one = generateResidents('293610', 40, 7);
    expect(generateResidents('293610', 40, 7)).to.deep.equal(one);
    expect(generateResidents('293610', 40, 8)).not.to.deep.equal(one);
    expect(generateResidents('343692', 40, 7)[0]!.address).to.match(/^広島県山県郡安芸太田町/);
    expect(new Set(one.map((g) => g.myNumber)).size).to.equal(40);
    for (const g of one) {
      expect(isValidMyNumber(g.myNumber)).to.equal(true);
      expect(isValidAddresseeNumber(g.addresseeNumber)).to.equal(true);
      expect(g.address).to.match(/^奈良県磯城郡田原本町/);
      expect(g.records.every((r) => r.occurrenceDate <= SEED_REFERENCE_DATE && r.occurrenceDate >= g.birthDate)).to.equal(true);
    }
    expect(one.reduce((n, g) => n + g.records.length, 0)).to.be.greaterThan(40);
    const seedActor = { staffId: 'seed', role: 'clerk' as const, municipality: '293610' };
    const before = await m.ctx.models.VaccinationRecord.count();
    await inTransaction(m.ctx.sequelize, (t) => insertGeneratedResidents(m.ctx, t, one, seedActor));
    expect(await m.ctx.models.VaccinationRecord.count()).to.equal(before + one.reduce((n, g) => n + g.records.length, 0));
    expect(await m.ctx.models.VaccinationTicket.count()).to.equal(one.reduce((n, g) => n + g.tickets.length, 0));
  });
});
