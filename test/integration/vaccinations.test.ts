import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { inTransaction } from '../../shared/platform/db.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { findResidentByAddressee, setResidentStatus } from '../../services/municipality/residents/service.ts';
import { fromImmunization, toImmunization } from '../../services/municipality/vaccinations/fhir.ts';
import { importRecords } from '../../services/municipality/vaccinations/service.ts';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';
import { buildRecord, createResidentVia, newKey, postRecord, rowCounts } from '../fixtures/factories.ts';

describe('vaccination records at a municipality', () => {
  let m: RunningMunicipality;
  let clerk: string;

  before(async () => {
    m = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto);
    clerk = await m.tokenFor('clerk');
  });
  after(async () => {
    await m.stop();
    removeDir(m.dir);
  });

  const newResident = async (birthDate = '1970-05-05') => (await createResidentVia(m, clerk, { birthDate })).resident.addresseeNumber;
  const base = (a: string) => `${m.url}/residents/${a}/vaccinations`;

  it('when a clerk records a dose, then 201 returns version 1, and the list, the record and the access log agree', async () => {
    const a = await newResident();
    const res = await postRecord(m, clerk, a, { lotNumber: 'ff3620' });
    expect(res.status).to.equal(201);
    expect(res.body).to.include({ version: 1, doseNumber: 1, vaccineCode: 'covid19-comirnaty', lotNumber: 'FF3620', status: 'completed', current: true, supersedes: null, provenance: null });
    const list = await api('GET', base(a), { token: clerk });
    expect(list.body.records.map((r: { recordId: string }) => r.recordId)).to.deep.equal([res.body.recordId]);
    const one = await api('GET', `${base(a)}/${res.body.recordId}`, { token: clerk });
    expect(one.body).to.deep.equal(res.body);
    const log = await m.ctx.models.AccessLog.findAll({ where: { subject: a, action: Actions.RECORD_CREATE }, raw: true });
    expect(log).to.have.length(1);
    expect(JSON.parse(log[0]!.recordIds)).to.deep.equal([res.body.recordId]);
  });

  it('when a record write has no or a malformed Idempotency-Key, then 400 names the header and nothing is written', async () => {
    const a = await newResident();
    const before = await rowCounts(m);
    const missing = await api('POST', base(a), { token: clerk, body: buildRecord() });
    expect(missing.status).to.equal(400);
    expect(missing.body).to.include({ field: 'Idempotency-Key' });
    const malformed = await api('POST', base(a), { token: clerk, body: buildRecord(), headers: { 'idempotency-key': 'short' } });
    expect(malformed.status).to.equal(400);
    expect(malformed.body.field).to.equal('Idempotency-Key');
    expect(await rowCounts(m)).to.deep.equal(before);
  });

  it('when a write is retried with the same key, then the first response comes back and only one record exists; another body with that key is a 422', async () => {
    const a = await newResident();
    const key = newKey();
    const first = await postRecord(m, clerk, a, {}, key);
    const retries = await Promise.all(Array.from({ length: 5 }, () => postRecord(m, clerk, a, {}, key)));
    for (const retry of retries) {
      expect(retry.status).to.equal(201);
      expect(retry.body).to.deep.equal(first.body);
      expect(retry.headers.get('idempotent-replayed')).to.equal('true');
    }
    const other = await postRecord(m, clerk, a, { doseNumber: 2, occurrenceDate: '2021-07-01' }, key);
    expect(other.status).to.equal(422);
    expect(other.body).to.include({ field: 'Idempotency-Key' });
    expect(other.body.type).to.match(/idempotency-key-reused$/);
    expect((await api('GET', base(a), { token: clerk })).body.records).to.have.length(1);
  });

  it('when concurrent first attempts share one key, then exactly one record is written and all get its body', async () => {
    const a = await newResident();
    const key = newKey();
    const results = await Promise.all(Array.from({ length: 6 }, () => postRecord(m, clerk, a, {}, key)));
    expect(new Set(results.map((r) => r.body.recordId)).size).to.equal(1);
    expect(results.every((r) => r.status === 201)).to.equal(true);
    expect((await api('GET', base(a), { token: clerk })).body.records).to.have.length(1);
  });

  it('when a field breaks a catalogue or calendar rule, then 400 names it; when it breaks a rule of this resident, then 422 names it', async () => {
    const a = await newResident('2000-01-01');
    await postRecord(m, clerk, a, { doseNumber: 1, occurrenceDate: '2021-06-01' });
    const before = await rowCounts(m);
    const cases: [Record<string, unknown>, number, string, RegExp][] = [
      [{ occurrenceDate: '2999-01-01' }, 400, 'occurrenceDate', /future/],
      [{ occurrenceDate: '2021-02-30' }, 400, 'occurrenceDate', /calendar date/],
      [{ vaccineCode: 'snake-oil' }, 400, 'vaccineCode', /catalogue/],
      [{ lotNumber: '12AB' }, 400, 'lotNumber', /lot format of covid19-comirnaty/],
      [{ doseNumber: 9 }, 400, 'doseNumber', /between 1 and 8/],
      [{ doseNumber: '2' }, 400, 'doseNumber', /whole number/],
      [{ place: '' }, 400, 'place', /required/],
      [{ ticketNumber: '12' }, 400, 'ticketNumber', /10 digits/],
      [{ occurrenceDate: '1999-12-31', vaccineCode: 'bcg', lotNumber: 'KH123' }, 422, 'occurrenceDate', /birth date/],
      [{ doseNumber: 1, occurrenceDate: '2021-08-01' }, 422, 'doseNumber', /already recorded/],
      [{ doseNumber: 2, occurrenceDate: '2021-05-01' }, 422, 'occurrenceDate', /after dose 1/],
    ];
    for (const [override, status, field, rule] of cases) {
      const res = await postRecord(m, clerk, a, override);
      expect(res.status, JSON.stringify(override)).to.equal(status);
      expect(res.headers.get('content-type')).to.match(/problem\+json/);
      const named = res.body.errors?.find((e: { field: string }) => e.field === field) ?? res.body;
      expect(named.field, JSON.stringify(res.body)).to.equal(field);
      expect(named.rule, JSON.stringify(res.body)).to.match(rule);
    }
    expect(await rowCounts(m)).to.deep.equal(before);
  });

  it('when a record is corrected, then a new version supersedes the old one with reason and actor, and the history shows both', async () => {
    const a = await newResident();
    const created = (await postRecord(m, clerk, a, { lotNumber: 'FF3602' })).body;
    const fix = await api('POST', `${base(a)}/${created.recordId}/corrections`, {
      token: clerk, body: { lotNumber: 'FF3620', reason: '予診票の転記誤り' }, headers: { 'idempotency-key': newKey() },
    });
    expect(fix.status).to.equal(201);
    expect(fix.body).to.include({ recordId: created.recordId, version: 2, supersedes: created.versionId, lotNumber: 'FF3620', reason: '予診票の転記誤り', current: true });
    const history = await api('GET', `${base(a)}/${created.recordId}/history`, { token: clerk });
    expect(history.body.versions.map((v: { version: number; current: boolean; lotNumber: string }) => [v.version, v.current, v.lotNumber]))
      .to.deep.equal([[1, false, 'FF3602'], [2, true, 'FF3620']]);
    expect((await api('GET', base(a), { token: clerk })).body.records).to.have.length(1);

    const nothing = await api('POST', `${base(a)}/${created.recordId}/corrections`, { token: clerk, body: { lotNumber: 'FF3620', reason: 'x' }, headers: { 'idempotency-key': newKey() } });
    expect(nothing.status).to.equal(422);
    const broken = await api('POST', `${base(a)}/${created.recordId}/corrections`, { token: clerk, body: { occurrenceDate: '1960-01-01', reason: 'x' }, headers: { 'idempotency-key': newKey() } });
    expect(broken.status).to.equal(422);
    expect(broken.body.field).to.equal('occurrenceDate');
    expect((await api('GET', `${base(a)}/${created.recordId}/history`, { token: clerk })).body.versions).to.have.length(2);
  });

  it('when a record is voided, then it stays readable as entered-in-error, cannot be corrected, and its dose can be recorded again', async () => {
    const a = await newResident();
    const created = (await postRecord(m, clerk, a)).body;
    const voided = await api('POST', `${base(a)}/${created.recordId}/void`, { token: clerk, body: { reason: '別人に登録していた' }, headers: { 'idempotency-key': newKey() } });
    expect(voided.status).to.equal(201);
    expect(voided.body).to.include({ status: 'entered-in-error', version: 2, reason: '別人に登録していた' });
    const again = await api('POST', `${base(a)}/${created.recordId}/void`, { token: clerk, body: { reason: 'x' }, headers: { 'idempotency-key': newKey() } });
    expect(again.status).to.equal(409);
    const correct = await api('POST', `${base(a)}/${created.recordId}/corrections`, { token: clerk, body: { lotNumber: 'FF1111', reason: 'x' }, headers: { 'idempotency-key': newKey() } });
    expect(correct.status).to.equal(409);
    expect((await postRecord(m, clerk, a)).status, 'the voided dose no longer blocks dose 1').to.equal(201);
    const fhir = await api('GET', `${m.url}/residents/${a}/immunizations`, { token: clerk });
    expect(fhir.status).to.equal(200);
    expect(fhir.headers.get('content-type')).to.match(/application\/fhir\+json/);
    expect(fhir.body.entry.map((e: { resource: { status: string } }) => e.resource.status).sort()).to.deep.equal(['completed', 'entered-in-error']);
    const voidedResource = fhir.body.entry.find((e: { resource: { id: string } }) => e.resource.id === created.recordId).resource;
    expect(voidedResource.meta.versionId).to.equal('2');
    expect(voidedResource.patient.reference).to.equal(`Patient/${a}`);
  });

  it('when a record is asked under another resident, or an unknown record id is used, then 404; a malformed id is 400', async () => {
    const a = await newResident();
    const b = await newResident();
    const rec = (await postRecord(m, clerk, a)).body;
    expect((await api('GET', `${base(b)}/${rec.recordId}`, { token: clerk })).status).to.equal(404);
    expect((await api('GET', `${base(b)}/${rec.recordId}/history`, { token: clerk })).status).to.equal(404);
    expect((await api('POST', `${base(b)}/${rec.recordId}/void`, { token: clerk, body: { reason: 'x' }, headers: { 'idempotency-key': newKey() } })).status).to.equal(404);
    expect((await api('GET', `${base(a)}/${randomUUID()}`, { token: clerk })).status).to.equal(404);
    const bad = await api('GET', `${base(a)}/not-a-uuid`, { token: clerk });
    expect(bad.status).to.equal(400);
    expect(bad.body.field).to.equal('recordId');
    expect((await postRecord(m, clerk, '0000000000')).status).to.equal(404);
  });

  it('when the resident has moved out, then new records are refused with 422 naming the status', async () => {
    const a = await newResident();
    const r = (await findResidentByAddressee(m.ctx, a))!;
    await inTransaction(m.ctx.sequelize, (t) => setResidentStatus(m.ctx, t, r.id, 'moved-out', { moveOutDestination: '112241' }, { staffId: 's', role: 'clerk', municipality: m.code }));
    const res = await postRecord(m, clerk, a);
    expect(res.status).to.equal(422);
    expect(res.body.type).to.match(/resident-not-active$/);
  });

  it('when the role is not clerk, then records are refused (403); without a token, 401', async () => {
    const a = await newResident();
    const rec = (await postRecord(m, clerk, a)).body;
    for (const role of ['operator', 'privacy_officer', 'admin'] as const) {
      const token = await m.tokenFor(role);
      expect((await api('GET', base(a), { token })).status, role).to.equal(403);
      expect((await api('GET', `${m.url}/residents/${a}/immunizations`, { token })).status, role).to.equal(403);
      expect((await postRecord(m, token, a)).status, role).to.equal(403);
      expect((await api('POST', `${base(a)}/${rec.recordId}/void`, { token, body: { reason: 'x' }, headers: { 'idempotency-key': newKey() } })).status, role).to.equal(403);
    }
    expect((await api('GET', base(a))).status).to.equal(401);
    expect((await api('GET', `${m.url}/vaccines`, { token: await m.tokenFor('operator') })).body.vaccines.length).to.be.greaterThan(20);
  });

  it('when records from another municipality are imported, then it is idempotent, a newer source version supersedes, and copies cannot be corrected here', async () => {
    const a = await newResident();
    const resident = (await findResidentByAddressee(m.ctx, a))!;
    const source = (id: string, version: number, over: Record<string, unknown> = {}) => fromImmunization(JSON.parse(JSON.stringify(toImmunization({
      recordId: id, version, occurrenceDate: '2022-01-20', vaccineCode: 'covid19-spikevax', lotNumber: '3004217', doseNumber: 3, place: '安芸太田病院',
      status: 'completed', reason: null, createdAt: '2022-01-21T00:00:00.000Z', sourceMunicipality: null, sourceRecordId: null, sourceVersion: null,
      importRequestId: null, retrievedAt: null, ...over,
    }))));
    const provenance = { sourceMunicipality: '343692', importRequestId: 'req-import-0001', retrievedAt: '2024-04-02T00:00:00.000Z' };
    const ids = [randomUUID(), randomUUID()];
    const first = await inTransaction(m.ctx.sequelize, (t) => importRecords(m.ctx, t, resident.id, provenance, [source(ids[0]!, 1), source(ids[1]!, 1, { doseNumber: 4, occurrenceDate: '2022-08-01' })]));
    expect(first).to.include({ created: 2, updated: 0, unchanged: 0 });
    const again = await inTransaction(m.ctx.sequelize, (t) => importRecords(m.ctx, t, resident.id, provenance, [source(ids[0]!, 1), source(ids[1]!, 1, { doseNumber: 4, occurrenceDate: '2022-08-01' })]));
    expect(again).to.include({ created: 0, unchanged: 2 });
    expect(again.recordIds).to.have.members(first.recordIds);
    const newer = await inTransaction(m.ctx.sequelize, (t) => importRecords(m.ctx, t, resident.id, { ...provenance, importRequestId: 'req-import-0002' }, [source(ids[0]!, 2, { status: 'entered-in-error' })]));
    expect(newer).to.include({ created: 1, updated: 1 });
    const stale = await inTransaction(m.ctx.sequelize, (t) => importRecords(m.ctx, t, resident.id, provenance, [source(ids[0]!, 1)]));
    expect(stale).to.include({ created: 0, unchanged: 1 });

    const list = (await api('GET', base(a), { token: clerk })).body.records;
    expect(list).to.have.length(2);
    const copy = list.find((r: { provenance: { sourceRecordId: string } }) => r.provenance.sourceRecordId === ids[0]);
    expect(copy).to.include({ version: 2, status: 'entered-in-error' });
    expect(copy.provenance).to.deep.equal({ sourceMunicipality: '343692', sourceRecordId: ids[0], sourceVersion: 2, importRequestId: 'req-import-0002', retrievedAt: provenance.retrievedAt, purpose: null });
    const correct = await api('POST', `${base(a)}/${copy.recordId}/corrections`, { token: clerk, body: { lotNumber: '3004218', reason: 'x' }, headers: { 'idempotency-key': newKey() } });
    expect(correct.status).to.equal(409);
    expect(correct.body.type).to.match(/imported-record$/);
    const fhir = (await api('GET', `${m.url}/residents/${a}/immunizations`, { token: clerk })).body;
    expect(fhir.entry.every((e: { resource: { meta: { source: string } } }) => e.resource.meta.source === 'urn:hikitsugi:municipality:343692')).to.equal(true);
    // An imported dose counts for the local dose rules: dose 4 is already on record.
    const dup = await postRecord(m, clerk, a, { doseNumber: 4, occurrenceDate: '2022-09-01' });
    expect(dup.status).to.equal(422);
    expect(dup.body.field).to.equal('doseNumber');
  });
});
