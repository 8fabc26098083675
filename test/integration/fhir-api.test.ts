/**
 * The municipality's FHIR R4 API (/fhir/R4): what a clerk's system reads, what it is refused and
 * why, and that every read is in the access log. Output is checked with the HL7 R4 JSON schema
 * and JP Core's constraints (test/fixtures/fhir-validator.ts), never with the serialisers.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { inTransaction } from '../../shared/platform/db.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { findResidentByAddressee, readMyNumber } from '../../services/municipality/residents/service.ts';
import { importRecords } from '../../services/municipality/vaccinations/service.ts';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';
import { createResidentVia, postRecord, rowCounts } from '../fixtures/factories.ts';
import { fhirErrors, JP, twelveDigitRuns } from '../fixtures/fhir-validator.ts';

describe('FHIR R4 API of a municipality', () => {
  let m: RunningMunicipality;
  let clerk: string;
  let base: string;

  before(async () => {
    m = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto);
    clerk = await m.tokenFor('clerk');
    base = `${m.url}/fhir/R4`;
  });
  after(async () => {
    await m.stop();
    removeDir(m.dir);
  });

  /** A resident with three doses (2021-06-01, 2021-07-01, 2022-01-15); returns the opaque id and the My Number. */
  async function residentWithDoses() {
    const { resident, input } = await createResidentVia(m, clerk, { birthDate: '1970-05-05' });
    const a = resident.addresseeNumber;
    for (const [doseNumber, occurrenceDate] of [[1, '2021-06-01'], [2, '2021-07-01'], [3, '2022-01-15']] as const) {
      const res = await postRecord(m, clerk, a, { doseNumber, occurrenceDate });
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
    }
    const row = (await findResidentByAddressee(m.ctx, a))!;
    return { a, id: row.id, myNumber: input.myNumber };
  }

  const get = (path: string, token: string | null = clerk) => api('GET', `${base}/${path}`, { token: token ?? undefined });

  function expectOutcome(res: { status: number; headers: Headers; body: any }, status: number, code: string, expression?: string) {
    expect(res.status, JSON.stringify(res.body)).to.equal(status);
    expect(res.headers.get('content-type')).to.match(/^application\/fhir\+json/);
    expect(res.body.resourceType).to.equal('OperationOutcome');
    expect(res.body.issue[0]).to.include({ severity: 'error', code });
    if (expression) expect(res.body.issue[0].expression).to.deep.equal([expression]);
    expect(fhirErrors(res.body)).to.deep.equal([]);
  }

  it('when anyone asks for the metadata, then the CapabilityStatement lists what is routed: Patient read, Immunization search by patient and date, $export', async () => {
    const res = await get('metadata', null);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/fhir\+json/);
    const cs = res.body;
    expect(fhirErrors(cs)).to.deep.equal([]);
    expect(cs).to.include({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1', kind: 'instance' });
    expect(cs.format).to.include('application/fhir+json');
    const byType = Object.fromEntries(cs.rest[0].resource.map((r: any) => [r.type, r]));
    expect(Object.keys(byType).sort()).to.deep.equal(['Immunization', 'Patient']);
    expect(byType.Patient.interaction.map((i: any) => i.code)).to.deep.equal(['read']);
    expect(byType.Patient.profile).to.equal(JP.patientProfile);
    expect(byType.Patient.operation.map((o: any) => o.name)).to.deep.equal(['export']);
    expect(byType.Immunization.interaction.map((i: any) => i.code)).to.deep.equal(['search-type']);
    expect(byType.Immunization.profile).to.equal(JP.immunizationProfile);
    expect(byType.Immunization.searchParam.map((p: any) => [p.name, p.type])).to.deep.equal([['patient', 'reference'], ['date', 'date']]);
    expect(byType.Immunization.documentation).to.match(/meta\.source/);
    expect(cs.rest[0].operation.map((o: any) => o.name)).to.deep.equal(['export']);
  });

  it('when a clerk reads a Patient, then it is JP_Patient with kanji and kana names, its id is opaque, no My Number appears, and the read is logged', async () => {
    const { a, id, myNumber } = await residentWithDoses();
    const res = await get(`Patient/${id}`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/fhir\+json/);
    const p = res.body;
    expect(fhirErrors(p)).to.deep.equal([]);
    expect(p.id).to.equal(id);
    expect(p.identifier.map((i: any) => i.value)).to.deep.equal([a]);
    expect(p.name.map((n: any) => [n.extension[0].valueCode, n.family, n.given[0]])).to.deep.equal([['IDE', '田中', '花子'], ['SYL', 'タナカ', 'ハナコ']]);
    const text = JSON.stringify(p);
    expect(text).not.to.include(myNumber);
    expect(twelveDigitRuns(text)).to.deep.equal([]);
    const log = await m.ctx.models.AccessLog.findAll({ where: { subject: a, action: Actions.RESIDENT_READ }, raw: true });
    expect(log.map((e) => JSON.parse(e.details))).to.deep.include({ format: 'fhir' });
    expect(readMyNumber(m.ctx, (await findResidentByAddressee(m.ctx, a))!)).to.equal(myNumber);
  });

  it('when a clerk searches Immunizations with date prefixes, then each prefix selects by the calendar day and references resolve to the Patient route', async () => {
    const { id } = await residentWithDoses();
    const days = async (...dates: string[]) => {
      const q = new URLSearchParams({ patient: `Patient/${id}` });
      for (const d of dates) q.append('date', d);
      const res = await get(`Immunization?${q}`);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return (res.body.entry ?? []).map((e: any) => e.resource.occurrenceDateTime);
    };
    expect(await days()).to.deep.equal(['2021-06-01', '2021-07-01', '2022-01-15']);
    expect(await days('ge2021-07-01')).to.deep.equal(['2021-07-01', '2022-01-15']);
    expect(await days('gt2021-07-01')).to.deep.equal(['2022-01-15']);
    expect(await days('le2021-07-01')).to.deep.equal(['2021-06-01', '2021-07-01']);
    expect(await days('lt2021-07')).to.deep.equal(['2021-06-01']);
    expect(await days('eq2021')).to.deep.equal(['2021-06-01', '2021-07-01']);
    expect(await days('2021-07')).to.deep.equal(['2021-07-01']);
    expect(await days('ne2021-07-01')).to.deep.equal(['2021-06-01', '2022-01-15']);
    expect(await days('ge2021-06-15', 'le2021-12-31')).to.deep.equal(['2021-07-01']);
    const res = await get(`Immunization?patient=${id}`);
    for (const e of res.body.entry) {
      expect(fhirErrors(e.resource)).to.deep.equal([]);
      expect(e.fullUrl).to.equal(`${base}/Immunization/${e.resource.id}`);
      const patient = await api('GET', `${base}/${e.resource.patient.reference}`, { token: clerk });
      expect(patient.body).to.include({ resourceType: 'Patient', id });
    }
  });

  it('when a search is paged with _count, then total counts all matches, the next links, followed, give each record once, and each page is a record read in the access log naming its records', async () => {
    const { a, id } = await residentWithDoses();
    let url: string | undefined = `${base}/Immunization?patient=${id}&_count=2`;
    const seen: string[] = [];
    let pages = 0;
    const pageIds: string[][] = [];
    while (url) {
      const res: { status: number; body: any } = await api('GET', url, { token: clerk });
      expect(res.status).to.equal(200);
      expect(res.body.total).to.equal(3);
      expect(res.body.link.find((l: any) => l.relation === 'self').url).to.be.a('string');
      pageIds.push(res.body.entry.map((e: any) => e.resource.id));
      seen.push(...pageIds.at(-1)!);
      url = res.body.link.find((l: any) => l.relation === 'next')?.url;
      pages += 1;
    }
    expect(pages).to.equal(2);
    expect(new Set(seen).size).to.equal(3);
    // Every read is access-logged where the data is read (DESIGN.md §5): one record read per page, FHIR format, its records named.
    const reads = await m.ctx.models.AccessLog.findAll({ where: { subject: a, action: Actions.RECORD_READ }, order: [['seq', 'ASC']], raw: true });
    const fhirReads = reads.filter((e) => JSON.parse(e.details).format === 'fhir');
    expect(fhirReads.map((e) => [e.outcome, JSON.parse(e.recordIds)])).to.deep.equal(pageIds.map((ids) => ['allowed', ids]));
    expect(fhirReads.map((e) => JSON.parse(e.details).total)).to.deep.equal([3, 3]);
  });

  it('when nothing matches, then the Bundle has total 0 and no entry; _summary=count gives the total alone; _elements subsets and tags SUBSETTED', async () => {
    const { id } = await residentWithDoses();
    const none = await get(`Immunization?patient=${id}&date=lt2000`);
    expect(none.body).to.include({ resourceType: 'Bundle', type: 'searchset', total: 0 });
    expect(none.body).not.to.have.property('entry');
    expect(fhirErrors(none.body)).to.deep.equal([]);
    const unknownPatient = await get(`Immunization?patient=${randomUUID()}`);
    expect(unknownPatient.body.total).to.equal(0);
    expect(unknownPatient.body).not.to.have.property('entry');
    const count = await get(`Immunization?patient=${id}&_summary=count`);
    expect(count.body.total).to.equal(3);
    expect(count.body).not.to.have.property('entry');
    const subset = await get(`Immunization?patient=${id}&_elements=lotNumber`);
    const r = subset.body.entry[0].resource;
    expect(r.lotNumber).to.be.a('string');
    expect(r).not.to.have.property('location');
    expect(r.meta.tag.map((t: any) => t.code)).to.include('SUBSETTED');
    expect(fhirErrors(r)).to.deep.equal([]);
  });

  it('when a search or read is malformed, then 400 OperationOutcome names the parameter and nothing changes', async () => {
    const { id } = await residentWithDoses();
    const before = await rowCounts(m);
    expectOutcome(await get('Immunization'), 400, 'invalid', 'patient');
    expectOutcome(await get(`Immunization?patient=${id}&date=2021-13-01`), 400, 'invalid', 'date');
    expectOutcome(await get(`Immunization?patient=${id}&date=ap2021`), 400, 'invalid', 'date');
    expectOutcome(await get(`Immunization?patient=${id}&date=2021-02-30`), 400, 'invalid', 'date');
    // The project's one date validator (shared/platform/dates.ts): real calendar days in the plausible range only.
    for (const [value, rule] of [['0000-01-01', 'must not be before 1890-01-01'], ['0001', 'must not be before 1890-01-01'], ['ge1889-12', 'must not be before 1890-01-01'], ['9999', 'must not be after 2199-12-31']] as const) {
      const res = await get(`Immunization?patient=${id}&date=${value}`);
      expectOutcome(res, 400, 'invalid', 'date');
      expect(res.body.issue[0].diagnostics, value).to.include(`(date: ${rule})`);
    }
    expectOutcome(await get(`Immunization?patient=${id}&_count=0`), 400, 'invalid', '_count');
    expectOutcome(await get(`Immunization?patient=${id}&_summary=true`), 400, 'invalid', '_summary');
    expectOutcome(await get(`Immunization?patient=${id}&_elements=myNumber`), 400, 'invalid', '_elements');
    expectOutcome(await get(`Immunization?patient=${id}&vaccine-code=x`), 400, 'invalid', 'vaccine-code');
    expectOutcome(await get('Immunization?patient=Observation/1'), 400, 'invalid', 'patient');
    expectOutcome(await get(`Immunization?patient=${id}&patient=${id}`), 400, 'invalid', 'patient');
    expect(await rowCounts(m)).to.deep.equal(before);
  });

  it('when a request under the FHIR base is refused before any FHIR route (bad query encoding, non-JSON or FHIR-JSON body, malformed JSON, gzip), then it is an OperationOutcome naming the field, and nothing changes', async () => {
    const { id } = await residentWithDoses();
    const before = await rowCounts(m);
    const send = (method: string, path: string, headers: Record<string, string>, raw?: string) =>
      api(method, `${base}/${path}`, { token: clerk, headers, raw, openapi: false });
    // Each of these is answered by the app's common front (shared/platform/http.ts), not by a FHIR route.
    expectOutcome(await send('GET', `Immunization?patient=${id}&date=%ZZ`, {}), 400, 'invalid', 'query');
    expectOutcome(await send('POST', 'Immunization', { 'content-type': 'text/plain' }, 'hello'), 415, 'not-supported', 'content-type');
    expectOutcome(await send('POST', 'Immunization', { 'content-type': 'application/fhir+json' }, '{"resourceType":"Immunization"}'), 415, 'not-supported', 'content-type');
    expectOutcome(await send('POST', 'Immunization', { 'content-type': 'application/json' }, '{"resourceType":'), 400, 'invalid', 'body');
    expectOutcome(await send('POST', 'Immunization', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, 'not really gzip'), 415, 'not-supported', 'content-encoding');
    // Outside the base the same refusals stay problem+json.
    const staff = await api('POST', `${m.url}/residents`, { token: clerk, headers: { 'content-type': 'text/plain' }, raw: 'hello', openapi: false });
    expect(staff.status).to.equal(415);
    expect(staff.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(await rowCounts(m)).to.deep.equal(before);
  });

  it('when an export names an impossible or implausible _since, then 400 OperationOutcome names _since and the rule, and no export starts', async () => {
    const before = await m.ctx.models.FhirExportJob.count();
    const kickOff = (since: string) => api('GET', `${base}/$export?_since=${encodeURIComponent(since)}`, { token: clerk, headers: { prefer: 'respond-async' } });
    for (const [since, rule] of [
      ['2026-02-30T00:00:00Z', 'must be a calendar date YYYY-MM-DD'],
      ['0000-01-01T00:00:00Z', 'must not be before 1890-01-01'],
      ['9999-12-31T00:00:00Z', 'must not be after 2199-12-31'],
      ['2024-04-01', 'must be a FHIR instant, e.g. 2024-04-01T00:00:00Z'],
    ] as const) {
      const res = await kickOff(since);
      expectOutcome(res, 400, 'invalid', '_since');
      expect(res.body.issue[0].diagnostics, since).to.include(`(_since: ${rule})`);
    }
    expect(await m.ctx.models.FhirExportJob.count()).to.equal(before);
  });

  it('when the caller is not a signed-in clerk of this municipality, or the Patient is unknown, then 401, 403 and 404 are OperationOutcomes', async () => {
    const { id } = await residentWithDoses();
    expectOutcome(await get(`Patient/${id}`, null), 401, 'login');
    expectOutcome(await get(`Immunization?patient=${id}`, 'not-a-token'), 401, 'login');
    for (const role of ['operator', 'privacy_officer', 'admin'] as const) {
      expectOutcome(await get(`Patient/${id}`, await m.tokenFor(role)), 403, 'forbidden');
    }
    expectOutcome(await get(`Patient/${randomUUID()}`), 404, 'not-found');
    expectOutcome(await get('Observation?patient=1'), 404, 'not-found');
  });

  it('when a record was imported from another municipality, then its Immunization keeps the provenance in meta.source and primarySource false', async () => {
    const { a, id } = await residentWithDoses();
    const row = (await findResidentByAddressee(m.ctx, a))!;
    const imported = (vaccineCode: string, occurrenceDate: string) => ({
      sourceRecordId: randomUUID(), sourceVersion: 1, occurrenceDate, vaccineCode, lotNumber: null, doseNumber: 1, place: null,
      status: 'completed' as const, reason: null, originMunicipality: null,
    });
    await inTransaction(m.ctx.sequelize, (t) => importRecords(m.ctx, t, row.id, { sourceMunicipality: '343692', importRequestId: 'req-import-1', retrievedAt: '2024-04-01T00:00:00.000Z' }, [
      imported('covid19-daichirona', '2019-10-01'), imported('covid19-comirnaty', '2019-11-01'),
    ]));
    const res = await get(`Immunization?patient=${id}&date=2019`);
    const [uncoded, coded] = res.body.entry.map((e: any) => e.resource);
    for (const r of [uncoded, coded]) {
      expect(fhirErrors(r)).to.deep.equal([]);
      expect(r.meta.source).to.equal('urn:hikitsugi:municipality:343692');
      expect(r.primarySource).to.equal(false);
    }
    expect(uncoded.vaccineCode).not.to.have.property('coding');
    expect(uncoded.vaccineCode.text).to.match(/ダイチロナ/);
    expect(uncoded.note.map((n: any) => n.text).join(' ')).to.match(/^vaccineCode is text only, .*two presentations.*182129101.*182161101/);
    // An imported coded record gains the Japanese codes of its product, CVX after them.
    expect(coded.vaccineCode.coding.map((c: any) => [c.system, c.code])).to.deep.equal([
      [JP.vaccineSystems[0], '182110901'], [JP.vaccineSystems[2], '631341DA1025'], [JP.cvx, '208'],
    ]);
  });
});
