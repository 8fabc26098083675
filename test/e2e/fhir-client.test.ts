/**
 * A real FHIR client library (fhir-kit-client) against a municipality's FHIR base: it reads the
 * CapabilityStatement, searches a resident's Immunizations and pages through them, runs a Bulk
 * Data export and reads its NDJSON. Every Patient and Immunization that comes back is checked
 * with the HL7 R4 JSON schema and JP Core's constraints (test/fixtures/fhir-validator.ts); the
 * counts are printed.
 */
import { expect } from 'chai';
import { Client } from 'fhir-kit-client';
import { randomUUID } from 'node:crypto';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { findResidentByAddressee } from '../../services/municipality/residents/service.ts';
import { createStaff } from '../../services/municipality/staff/service.ts';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, TEST_PASSWORD, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';
import { createResidentVia, postRecord } from '../fixtures/factories.ts';
import { fhirErrors, schemaErrors, twelveDigitRuns } from '../fixtures/fhir-validator.ts';
import { startTestFederation, type RunningFederation } from '../fixtures/federation.ts';
import { DEMO_MUNICIPALITIES as NPM_START_MUNICIPALITIES } from '../../scripts/demo.ts';
import { DEMO_RESIDENTS } from '../../scripts/seed.ts';

describe('a FHIR client library against a municipality', () => {
  let m: RunningMunicipality;
  let clerk: string;
  let base: string;
  const myNumbers: string[] = [];
  const residentIds: string[] = [];

  before(async () => {
    // Compile the R4 schema first: compiling takes seconds of CPU, long enough for the server to
    // drop the client's idle keep-alive socket if it happened between two requests.
    schemaErrors({ resourceType: 'Basic' });
    m = await startMunicipality(DEMO_MUNICIPALITIES.toda);
    clerk = await m.tokenFor('clerk');
    base = `${m.url}/fhir/R4`;
    // Three residents; the first with every product of a series and a voided record, the others with one dose each.
    const doses: [string, number, string, string][] = [
      ['covid19-comirnaty', 1, '2021-06-01', 'FF3620'], ['covid19-comirnaty', 2, '2021-06-22', 'FF3620'], ['covid19-spikevax', 3, '2022-01-20', '3004217'],
      ['covid19-daichirona', 4, '2023-12-10', 'DA012'], ['covid19-kostaive', 5, '2024-11-01', 'K0123'],
    ];
    for (let i = 0; i < 3; i += 1) {
      const { resident, input } = await createResidentVia(m, clerk, { birthDate: '1960-04-01', name: `戸田 ${['太郎', '次郎', '三郎'][i]}`, kana: `トダ ${['タロウ', 'ジロウ', 'サブロウ'][i]}` });
      myNumbers.push(input.myNumber);
      residentIds.push((await findResidentByAddressee(m.ctx, resident.addresseeNumber))!.id);
      for (const [vaccineCode, doseNumber, occurrenceDate, lotNumber] of i === 0 ? doses : doses.slice(0, 1)) {
        const res = await postRecord(m, clerk, resident.addresseeNumber, { vaccineCode, doseNumber, occurrenceDate, lotNumber });
        expect(res.status, JSON.stringify(res.body)).to.equal(201);
      }
    }
  });
  after(async () => {
    await m.stop();
    removeDir(m.dir);
  });

  const validated = { Patient: 0, Immunization: 0 };
  function check(resource: any) {
    expect(fhirErrors(resource), `${resource.resourceType}/${resource.id}`).to.deep.equal([]);
    const text = JSON.stringify(resource);
    for (const n of myNumbers) expect(text).not.to.include(n);
    expect(twelveDigitRuns(text)).to.deep.equal([]);
    validated[resource.resourceType as 'Patient' | 'Immunization'] += 1;
  }

  it('when the client connects, reads the capabilities, searches and pages, then every resource is valid R4 and JP Core and references resolve', async () => {
    const client = new Client({ baseUrl: base, bearerToken: clerk });
    const cs: any = await client.capabilityStatement();
    const immunization = cs.rest[0].resource.find((r: any) => r.type === 'Immunization');
    expect(immunization.searchParam.map((p: any) => p.name)).to.include.members(['patient', 'date']);

    const patientId = residentIds[0]!;
    let bundle: any = await client.search({ resourceType: 'Immunization', searchParams: { patient: `Patient/${patientId}`, date: 'ge2021-06-01', _count: 2 } });
    expect(bundle.total).to.equal(5);
    const ids: string[] = [];
    let pages = 0;
    while (bundle) {
      pages += 1;
      for (const e of bundle.entry ?? []) {
        check(e.resource);
        ids.push(e.resource.id);
        const patient: any = await client.resolve({ reference: e.resource.patient.reference });
        expect(patient.id).to.equal(patientId);
      }
      bundle = await client.nextPage({ bundle });
    }
    expect(pages).to.equal(3);
    expect(new Set(ids).size).to.equal(5);
    check(await client.read({ resourceType: 'Patient', id: patientId }));

    // A refusal reaches the client as an OperationOutcome naming the parameter.
    const refused = await client.search({ resourceType: 'Immunization', searchParams: { patient: patientId, date: 'soon' } }).then(() => undefined, (err: any) => err.response);
    expect(refused.status).to.equal(400);
    expect(refused.data.issue[0].expression).to.deep.equal(['date']);
    console.log(`      FHIR client: ${pages} pages, ${ids.length} Immunizations of one Patient; refused search answered ${refused.status} naming ${refused.data.issue[0].expression}`);
  });

  it('when the client runs a Bulk Data export, then it polls to a manifest, reads NDJSON with every resident and record, and DELETE removes the files', async () => {
    const client = new Client({ baseUrl: base, bearerToken: clerk });
    const kickOff: any = await client.operation({
      name: '$export', resourceType: 'Patient', method: 'GET', input: { _type: 'Patient,Immunization' },
      options: { headers: { prefer: 'respond-async', accept: 'application/fhir+json' } },
    });
    const { response } = Client.httpFor(kickOff);
    expect(response!.status).to.equal(202);
    const statusUrl = response!.headers.get('content-location')!;
    expect(statusUrl).to.match(new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\$export-status/`));

    let manifest: any;
    let polls = 0;
    for (;;) {
      const status: any = await client.request(statusUrl);
      const http = Client.httpFor(status).response!;
      polls += 1;
      if (http.status === 200) { manifest = status; break; }
      expect(http.status).to.equal(202);
      expect(http.headers.get('x-progress')).to.be.a('string');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(manifest.requiresAccessToken).to.equal(true);
    const lines: Record<string, any[]> = { Patient: [], Immunization: [] };
    for (const out of manifest.output) {
      const res = await fetch(out.url, { headers: { authorization: `Bearer ${clerk}`, accept: 'application/fhir+ndjson' } });
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^application\/fhir\+ndjson/);
      const text = await res.text();
      const resources = text.trim().split('\n').map((l) => JSON.parse(l));
      expect(resources).to.have.length(out.count);
      for (const r of resources) {
        expect(r.resourceType).to.equal(out.type);
        check(r);
        lines[out.type]!.push(r);
      }
    }
    expect(lines.Patient!.map((p) => p.id).sort()).to.deep.equal([...residentIds].sort());
    expect(lines.Immunization).to.have.length(7);
    for (const r of lines.Immunization!) expect(residentIds).to.include(r.patient.reference.replace('Patient/', ''));
    const uncoded = lines.Immunization!.filter((r) => !r.vaccineCode.coding);
    expect(uncoded.map((r) => r.vaccineCode.text).join(' ')).to.match(/ダイチロナ.*コスタイベ|コスタイベ.*ダイチロナ/);

    const downloads = await m.ctx.models.AccessLog.count({ where: { action: Actions.FHIR_EXPORT_DOWNLOAD } });
    expect(downloads).to.equal(manifest.output.length);
    expect(await m.ctx.models.AccessLog.count({ where: { action: Actions.FHIR_EXPORT_RUN } })).to.be.at.least(1);

    await client.request(statusUrl, { method: 'DELETE' });
    const gone = await api('GET', statusUrl, { token: clerk });
    expect(gone.status).to.equal(404);
    expect(gone.body.resourceType).to.equal('OperationOutcome');
    const file = await api('GET', manifest.output[0].url, { token: clerk });
    expect(file.status).to.equal(404);
    console.log(`      Bulk export: ${polls} polls, ${manifest.output.length} files, ${lines.Patient!.length} Patients, ${lines.Immunization!.length} Immunizations (${uncoded.length} text-only)`);
    console.log(`      validated with the HL7 R4 JSON schema and JP Core checks: ${validated.Patient} Patients, ${validated.Immunization} Immunizations, 0 errors`);
  });

  it('when an export is still running, then its status is 202 with X-Progress to its clerk alone; another role, another clerk, a bad kick-off and an unknown job are refused as OperationOutcomes', async () => {
    const id = randomUUID();
    const staff = (await m.ctx.models.Staff.findOne({ where: { username: 'clerk1' }, raw: true }))!;
    await m.ctx.models.FhirExportJob.create({
      id, level: 'system', types: 'Patient', since: null, requestedBy: staff.id, requestedByRole: 'clerk',
      requestUrl: `${base}/$export`, transactionTime: new Date().toISOString(), progress: '0 of 3 residents read', status: 'in-progress',
    });
    const running = await api('GET', `${base}/$export-status/${id}`, { token: clerk });
    expect(running.status).to.equal(202);
    expect(running.headers.get('x-progress')).to.equal('0 of 3 residents read');
    const operator = await api('GET', `${base}/$export-status/${id}`, { token: await m.tokenFor('operator') });
    expect(operator.status).to.equal(403);
    expect(operator.body.resourceType).to.equal('OperationOutcome');
    await createStaff(m.ctx, { username: 'clerk2', displayName: 'clerk two', role: 'clerk', password: TEST_PASSWORD });
    const login = await api('POST', `${m.url}/auth/login`, { body: { username: 'clerk2', password: TEST_PASSWORD } });
    const otherClerk = await api('GET', `${base}/$export-status/${id}`, { token: login.body.token });
    expect(otherClerk.status).to.equal(404);
    expect(otherClerk.body.resourceType).to.equal('OperationOutcome');
    const noPrefer = await api('GET', `${base}/$export`, { token: clerk });
    expect(noPrefer.status).to.equal(400);
    expect(noPrefer.body.issue[0].expression).to.deep.equal(['Prefer']);
    const badType = await api('GET', `${base}/$export?_type=Observation`, { token: clerk, headers: { prefer: 'respond-async' } });
    expect(badType.status).to.equal(400);
    expect(badType.body.issue[0].expression).to.deep.equal(['_type']);
    const badSince = await api('GET', `${base}/$export?_since=yesterday`, { token: clerk, headers: { prefer: 'respond-async' } });
    expect(badSince.body.issue[0].expression).to.deep.equal(['_since']);
    const unknown = await api('GET', `${base}/$export-status/${randomUUID()}`, { token: clerk });
    expect(unknown.status).to.equal(404);
    const cancel = await api('DELETE', `${base}/$export-status/${id}`, { token: clerk });
    expect(cancel.status).to.equal(202);
    expect((await api('GET', `${base}/$export-status/${id}`, { token: clerk })).status).to.equal(404);
  });
});

/**
 * The same client against the federation `npm start` runs: the same launcher, the same demo
 * municipalities and the same demo size (DEMO_RESIDENTS per municipality, the seed generator's
 * demo seed), as real processes. It searches and pages a resident's Immunizations at each
 * municipality, then exports every municipality's whole demo data and checks each Patient and
 * Immunization with the independent validator (docs/DESIGN.md, "FHIR API").
 */
describe('a FHIR client library against the demo federation', function () {
  this.timeout(600_000);
  let fed: RunningFederation;
  const municipalities = NPM_START_MUNICIPALITIES.map(({ code, name }) => ({ code, name }));

  before(async () => {
    schemaErrors({ resourceType: 'Basic' });
    const started = Date.now();
    fed = await startTestFederation({ municipalities, residents: DEMO_RESIDENTS });
    console.log(`      demo federation (${municipalities.length} × ${DEMO_RESIDENTS} residents) seeded and started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
  after(async () => {
    await fed?.close();
  });

  it('when the client searches a resident\'s Immunizations at each municipality and follows nextPage, then every page is valid, pages give each record once, and each page is a record read in the access log', async () => {
    for (const { code } of municipalities) {
      const token = await fed.login(code, 'clerk1');
      const client = new Client({ baseUrl: `${fed.url(code)}/fhir/R4`, bearerToken: token });
      // The seeded resident with the most records: several pages at _count=3.
      const resident = [...fed.residents(code)].sort((a, b) => b.records.length - a.records.length)[0]!;
      const [row] = await fed.rows<{ id: string }>(code, 'SELECT id FROM residents WHERE "addresseeNumber" = ?', [resident.addresseeNumber]);
      let bundle: any = await client.search({ resourceType: 'Immunization', searchParams: { patient: `Patient/${row!.id}`, _count: 3 } });
      expect(bundle.total, code).to.equal(resident.records.length);
      const ids: string[] = [];
      const pages: string[][] = [];
      while (bundle) {
        const page = (bundle.entry ?? []).map((e: any) => e.resource);
        for (const r of page) {
          expect(fhirErrors(r), `${code} Immunization/${r.id}`).to.deep.equal([]);
          expect(r.patient.reference).to.equal(`Patient/${row!.id}`);
        }
        expect(twelveDigitRuns(JSON.stringify(bundle)), code).to.deep.equal([]);
        expect(JSON.stringify(bundle)).not.to.include(resident.myNumber);
        pages.push(page.map((r: any) => r.id));
        ids.push(...pages.at(-1)!);
        bundle = await client.nextPage({ bundle });
      }
      expect(pages.length, code).to.equal(Math.ceil(resident.records.length / 3));
      expect(new Set(ids).size, code).to.equal(resident.records.length);
      const reads = await fed.rows<{ recordIds: string; details: string }>(code,
        'SELECT "recordIds", details FROM access_log WHERE subject = ? AND action = ? ORDER BY seq', [resident.addresseeNumber, Actions.RECORD_READ]);
      expect(reads.filter((e) => JSON.parse(e.details).format === 'fhir').map((e) => JSON.parse(e.recordIds)), code).to.deep.equal(pages);
      console.log(`      ${code}: searched ${ids.length} Immunizations of one Patient in ${pages.length} pages (nextPage), each page a logged record read`);
    }
  });

  it('when the client exports every municipality\'s demo data, then every Patient and Immunization is valid R4 and JP Core, coded ones carry HOT9, references resolve, the export is logged, and no My Number is in any file', async () => {
    const counts: string[] = [];
    let patients = 0;
    let immunizations = 0;
    let coded = 0;
    for (const { code } of municipalities) {
      const token = await fed.login(code, 'clerk1');
      const base = `${fed.url(code)}/fhir/R4`;
      const client = new Client({ baseUrl: base, bearerToken: token });
      const cs: any = await client.capabilityStatement();
      expect(cs.resourceType).to.equal('CapabilityStatement');
      const kickOff: any = await client.operation({
        name: '$export', method: 'GET', input: { _type: 'Patient,Immunization' },
        options: { headers: { prefer: 'respond-async', accept: 'application/fhir+json' } },
      });
      const statusUrl = Client.httpFor(kickOff).response!.headers.get('content-location')!;
      const jobId = statusUrl.split('/').at(-1)!;
      let manifest: any;
      for (;;) {
        const status: any = await client.request(statusUrl);
        if (Client.httpFor(status).response!.status === 200) { manifest = status; break; }
        await new Promise((r) => setTimeout(r, 100));
      }
      const byType: Record<string, any[]> = { Patient: [], Immunization: [] };
      const myNumbers = fed.residents(code).map((r) => r.myNumber);
      // Every file read first: validating one takes seconds of this process's time, long enough for
      // the server to close the kept-alive connection the next download would have reused.
      const files = await Promise.all(manifest.output.map(async (out: any) => ({
        out, text: await (await fetch(out.url, { headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+ndjson' } })).text(),
      })));
      // The export request is in the access log, by the clerk who asked, naming the job.
      const requests = await fed.rows<{ details: string; outcome: string }>(code, 'SELECT details, outcome FROM access_log WHERE action = ?', [Actions.FHIR_EXPORT_REQUEST]);
      expect(requests.filter((e) => JSON.parse(e.details).jobId === jobId).map((e) => e.outcome), code).to.deep.equal(['allowed']);
      // Removed before the files are validated, for the same reason as above.
      await client.request(statusUrl, { method: 'DELETE' });
      for (const { out, text } of files) {
        for (const n of myNumbers) expect(text, `${code} ${out.type}`).not.to.include(n);
        expect(twelveDigitRuns(text), `${code} ${out.type}`).to.deep.equal([]);
        for (const line of text.trim().split('\n').filter(Boolean)) {
          const resource = JSON.parse(line);
          expect(fhirErrors(resource), `${code} ${resource.resourceType}/${resource.id}`).to.deep.equal([]);
          byType[resource.resourceType]!.push(resource);
        }
      }
      const ids = new Set(byType.Patient!.map((p) => p.id));
      // Every seeded resident, every seeded record (the demo data, all of it).
      expect(byType.Patient!.length, code).to.equal(DEMO_RESIDENTS);
      expect(byType.Immunization!.length, code).to.equal(fed.residents(code).reduce((n, r) => n + r.records.length, 0));
      for (const r of byType.Immunization!) expect(ids.has(r.patient.reference.replace('Patient/', '')), `${code} ${r.id}`).to.equal(true);
      patients += byType.Patient!.length;
      immunizations += byType.Immunization!.length;
      const withHot9 = byType.Immunization!.filter((r) => r.vaccineCode.coding?.some((c: any) => c.system === 'http://medis.or.jp/CodeSystem/master-HOT9')).length;
      coded += withHot9;
      counts.push(`${code}: ${byType.Patient!.length} Patients, ${byType.Immunization!.length} Immunizations (${withHot9} with a HOT9 code)`);
    }
    expect(patients).to.equal(DEMO_RESIDENTS * municipalities.length);
    expect(coded).to.be.greaterThan(0);
    console.log(`      demo federation, validated with the HL7 R4 JSON schema and JP Core checks, 0 errors: ${patients} Patients, ${immunizations} Immunizations (${coded} with a HOT9 code) — ${counts.join('; ')}`);
  });
});
