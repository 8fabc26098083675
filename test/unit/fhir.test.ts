import { expect } from 'chai';
import fc from 'fast-check';
import { AppError } from '../../shared/platform/errors.ts';
import { readFileSync } from 'node:fs';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { allProducts, CATALOGUE_SYSTEM, codeLists, CVX_SYSTEM, findProduct, parseCatalogue } from '../../services/municipality/vaccinations/catalogue.ts';
import {
  fromImmunization, immunizationBundle, PROVENANCE_EXTENSION, toImmunization, toJpImmunization, type ImmunizationSource,
} from '../../services/municipality/vaccinations/fhir.ts';

/** JP Core's system URIs (NamingSystem jp-medis-medicationcodehot9-namingsystem; JP_Immunization notes, 用語定義: YJコード). */
const HOT9_SYSTEM = 'http://medis.or.jp/CodeSystem/master-HOT9';
const YJ_SYSTEM = 'http://capstandard.jp/iyaku.info/CodeSystem/YJ-code';

const local: ImmunizationSource = {
  recordId: '6f1c1e7a-3c1b-4d7e-9a59-0c7f4a1b2c3d',
  version: 2,
  occurrenceDate: '2021-06-22',
  vaccineCode: 'covid19-comirnaty',
  lotNumber: 'FF3620',
  doseNumber: 2,
  place: '田原本町保健センター',
  status: 'completed',
  reason: 'lot number corrected',
  createdAt: '2021-06-23T01:02:03.000Z',
  sourceMunicipality: null,
  sourceRecordId: null,
  sourceVersion: null,
  importRequestId: null,
  retrievedAt: null,
};

function refusal(resource: unknown): { field: string; rule: string } {
  try {
    fromImmunization(resource);
  } catch (err) {
    expect(err).to.be.instanceOf(AppError);
    expect((err as AppError).status).to.equal(422);
    expect((err as AppError).code).to.equal('invalid-immunization');
    return (err as AppError).extra as { field: string; rule: string };
  }
  throw new Error('resource was accepted');
}

describe('FHIR Immunization mapping', () => {
  it('when a local record is mapped, then id, version, status, codings, date, lot, dose and place land in their elements', () => {
    const r = toImmunization(local);
    expect(r).to.deep.include({
      resourceType: 'Immunization', id: local.recordId, status: 'completed', occurrenceDateTime: '2021-06-22', lotNumber: 'FF3620', primarySource: true,
    });
    expect(r.meta).to.deep.equal({ versionId: '2', lastUpdated: '2021-06-23T01:02:03.000Z' });
    expect(r.vaccineCode.coding.map((c) => [c.system, c.code])).to.deep.equal([[CATALOGUE_SYSTEM, 'covid19-comirnaty'], [CVX_SYSTEM, '208']]);
    expect(r.protocolApplied).to.deep.equal([{ series: 'covid-19', doseNumberPositiveInt: 2 }]);
    expect(r.location).to.deep.equal({ display: '田原本町保健センター' });
    expect(r.performer).to.deep.equal([{ actor: { display: '田原本町保健センター' } }]);
    expect(r.patient).to.deep.equal({ type: 'Patient', display: 'resident' });
    expect(r).not.to.have.property('extension');
    expect(r).not.to.have.property('note');
  });

  it('when a product has no CVX code, then only the catalogue coding is given', () => {
    const r = toImmunization({ ...local, vaccineCode: 'covid19-daichirona', lotNumber: 'DA012' });
    expect(r.vaccineCode.coding.map((c) => c.system)).to.deep.equal([CATALOGUE_SYSTEM]);
  });

  it('when a record is voided, then status is entered-in-error and the reason is a note', () => {
    const r = toImmunization({ ...local, status: 'entered-in-error', reason: 'registered on the wrong resident' });
    expect(r.status).to.equal('entered-in-error');
    expect(r.note).to.deep.equal([{ text: 'registered on the wrong resident' }]);
  });

  it('when an imported copy is mapped, then meta.source and the provenance extension say where it came from', () => {
    const r = toImmunization({
      ...local, sourceMunicipality: '343692', sourceRecordId: 'abc-1', sourceVersion: 3, importRequestId: 'req-12345678', retrievedAt: '2024-04-01T00:00:00.000Z',
    }, { reference: 'Patient/1234567897' });
    expect(r.meta.source).to.equal('urn:hikitsugi:municipality:343692');
    expect(r.primarySource).to.equal(false);
    expect(r.patient).to.deep.equal({ reference: 'Patient/1234567897' });
    expect(r.extension![0]!.url).to.equal(PROVENANCE_EXTENSION);
    expect(r.extension![0]!.extension).to.deep.include({ url: 'sourceVersion', valueInteger: 3 });
    expect(r.extension![0]!.extension).to.deep.include({ url: 'sourceMunicipality', valueString: '343692' });
  });

  it('when records are bundled, then the Bundle is a searchset with one entry per record', () => {
    const bundle = immunizationBundle([local, { ...local, recordId: 'b2', version: 1 }]);
    expect(bundle).to.include({ resourceType: 'Bundle', type: 'searchset', total: 2 });
    expect(bundle.entry.map((e) => e.fullUrl)).to.deep.equal([`urn:uuid:${local.recordId}`, 'urn:uuid:b2']);
    expect(bundle.entry.every((e) => e.resource.resourceType === 'Immunization' && e.search.mode === 'match')).to.equal(true);
  });

  it('when any catalogue record is mapped to FHIR and parsed back, then the same fields come back (property)', () => {
    const products = allProducts();
    fc.assert(fc.property(
      fc.constantFrom(...products), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 99 }), fc.constantFrom('completed', 'entered-in-error'),
      fc.integer({ min: 1, max: 8 }),
      (product, day, version, status, doseSeed) => {
        const doseNumber = ((doseSeed - 1) % product.maxDoses) + 1;
        const occurrenceDate = new Date(Date.UTC(2015, 0, 1) + day * 86_400_000).toISOString().slice(0, 10);
        const record = { ...local, vaccineCode: product.code, lotNumber: product.lotExample, doseNumber, occurrenceDate, version, status: status as 'completed' };
        const back = fromImmunization(JSON.parse(JSON.stringify(toImmunization(record))));
        expect(back).to.deep.include({
          sourceRecordId: local.recordId, sourceVersion: version, vaccineCode: product.code, lotNumber: product.lotExample,
          doseNumber, occurrenceDate, place: local.place, status,
        });
      },
    ));
  });

  it('when only a CVX coding is present, then it maps to the one catalogue product with that code', () => {
    const r = toImmunization(local) as unknown as Record<string, any>;
    r.vaccineCode.coding = [{ system: CVX_SYSTEM, code: '208' }];
    expect(fromImmunization(r).vaccineCode).to.equal('covid19-comirnaty');
  });

  it('when only a Japanese coding (HOT9, or YJ) is present, as a clinic system following JP Core sends, then it maps to its product; an unknown code is refused naming vaccineCode', () => {
    const r = toImmunization(local) as unknown as Record<string, any>;
    r.vaccineCode.coding = [{ system: 'http://medis.or.jp/CodeSystem/master-HOT9', code: '182110901' }];
    expect(fromImmunization(r).vaccineCode).to.equal('covid19-comirnaty');
    r.vaccineCode.coding = [{ system: 'http://capstandard.jp/iyaku.info/CodeSystem/YJ-code', code: '631341DA1025' }];
    expect(fromImmunization(r).vaccineCode).to.equal('covid19-comirnaty');
    r.vaccineCode.coding = [{ system: 'http://medis.or.jp/CodeSystem/master-HOT9', code: '999999999' }];
    expect(() => fromImmunization(r)).to.throw().with.property('extra').that.deep.includes({ field: 'Immunization.vaccineCode' });
  });

  it('when an imported resource was itself an imported copy, then its origin municipality is read from meta.source', () => {
    const r = toImmunization({ ...local, sourceMunicipality: '112241', sourceRecordId: 'x', sourceVersion: 1, importRequestId: null, retrievedAt: null });
    expect(fromImmunization(r).originMunicipality).to.equal('112241');
    expect(fromImmunization(toImmunization(local)).originMunicipality).to.equal(null);
  });

  it('when a resource breaks a rule, then a 422 names the element and the rule', () => {
    const good = () => JSON.parse(JSON.stringify(toImmunization(local)));
    const cases: [string, (r: any) => unknown, RegExp][] = [
      ['not an object', () => 'Immunization', /resource/],
      ['wrong resourceType', (r) => ({ ...r, resourceType: 'Patient' }), /resourceType/],
      ['bad id', (r) => ({ ...r, id: 'has spaces in it' }), /^Immunization\.id$/],
      ['no versionId', (r) => ({ ...r, meta: {} }), /meta\.versionId/],
      ['versionId 0', (r) => ({ ...r, meta: { versionId: '0' } }), /meta\.versionId/],
      ['status not-done', (r) => ({ ...r, status: 'not-done' }), /status/],
      ['no coding', (r) => ({ ...r, vaccineCode: { coding: [] } }), /vaccineCode/],
      ['unknown coding', (r) => ({ ...r, vaccineCode: { coding: [{ system: 'urn:x', code: 'y' }] } }), /vaccineCode/],
      ['unknown CVX code', (r) => ({ ...r, vaccineCode: { coding: [{ system: CVX_SYSTEM, code: '999' }] } }), /vaccineCode/],
      ['bad date', (r) => ({ ...r, occurrenceDateTime: '2021-02-30' }), /occurrenceDateTime/],
      ['future date', (r) => ({ ...r, occurrenceDateTime: '2999-01-01' }), /occurrenceDate/],
      ['lot format', (r) => ({ ...r, lotNumber: 'nope' }), /lotNumber/],
      ['dose 0', (r) => ({ ...r, protocolApplied: [{ doseNumberPositiveInt: 0 }] }), /protocolApplied\.0\.doseNumberPositiveInt/],
      ['dose above max', (r) => ({ ...r, protocolApplied: [{ doseNumberPositiveInt: 9 }] }), /doseNumber/],
      ['no dose', (r) => ({ ...r, protocolApplied: [] }), /protocolApplied/],
    ];
    for (const [name, mutate, field] of cases) {
      const problem = refusal(mutate(good()));
      expect(problem.field, name).to.match(/^Immunization\./);
      expect(problem.field, name).to.match(field);
      expect(problem.rule, name).to.be.a('string').and.not.equal('');
    }
  });

  it('when a peer sends an occurrence date that is no real date in range, or a time that is no ISO date-time with its zone, then the one date validator refuses it', () => {
    const good = () => JSON.parse(JSON.stringify(toImmunization(local)));
    for (const [value, rule] of [
      ['0001-01-01', 'must not be before 1890-01-01'], ['2021-06-01Tgarbage', 'must be an ISO 8601 date-time, e.g. 2025-04-01T00:00:00Z'],
      ['2021-06-01T10:00:00', 'must be an ISO 8601 date-time, e.g. 2025-04-01T00:00:00Z'], ['2021-02-29T10:00:00+09:00', 'must be an ISO 8601 date-time, e.g. 2025-04-01T00:00:00Z'],
      ['0001-01-01T00:00:00Z', 'must not be before 1890-01-01'], ['2021-6-1', 'must be an ISO 8601 date-time, e.g. 2025-04-01T00:00:00Z'],
    ]) {
      expect(refusal({ ...good(), occurrenceDateTime: value }), value).to.deep.equal({ field: 'Immunization.occurrenceDateTime', rule });
    }
    expect(fromImmunization({ ...good(), occurrenceDateTime: '2021-06-01T10:00:00+09:00' }).occurrenceDate).to.equal('2021-06-01');
  });

  it('when a peer\'s record carries a My Number in any notation in any free-text element, then it is refused naming the element and the rule', () => {
    const good = () => JSON.parse(JSON.stringify(toImmunization(local)));
    const n = completeMyNumber('87654321098');
    const notations = [n, `${n.slice(0, 4)}-${n.slice(4, 8)}-${n.slice(8)}`, n.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d))),
      `${n.slice(0, 4)}/${n.slice(4, 8)}/${n.slice(8)}`, `(${n.slice(0, 4)})${n.slice(4, 8)},${n.slice(8)}`, `${n.slice(0, 4)}\u200B${n.slice(4, 8)}\u200B${n.slice(8)}`];
    const elements: [string, (r: any, v: string) => unknown][] = [
      ['Immunization.location.display', (r, v) => ({ ...r, location: { display: `会場 ${v}` } })],
      ['Immunization.performer.0.actor.display', (r, v) => ({ ...r, performer: [{ actor: { display: `医師 ${v}` } }] })],
      ['Immunization.lotNumber', (r, v) => ({ ...r, lotNumber: v.slice(0, 20) })],
      ['Immunization.note.0.text', (r, v) => ({ ...r, note: [{ text: `確認 ${v}` }] })],
    ];
    for (const [field, put] of elements) {
      for (const v of notations) expect(refusal(put(good(), v)), `${field} ${v}`).to.deep.equal({ field, rule: 'must not contain a My Number' });
    }
    expect(fromImmunization({ ...good(), note: [{ text: '確認 1234-5678-9019' }] }).reason).to.equal('確認 1234-5678-9019');
  });

  it('when a release purpose withheld the lot and the place, then the resource imports with both null (minimal disclosure)', () => {
    const { lotNumber: _lot, location: _l, performer: _p, ...rest } = JSON.parse(JSON.stringify(toImmunization(local)));
    expect(fromImmunization(rest)).to.include({ lotNumber: null, place: null });
  });
});

describe('vaccine codes of the JP Core form (docs/VACCINE-CODES.md)', () => {
  const patient = { reference: 'Patient/p1', type: 'Patient' };
  const systemOf: Record<string, string> = { hot9: HOT9_SYSTEM, yj: YJ_SYSTEM };

  it('when Comirnaty is mapped, then its codings are HOT9 182110901, YJ 631341DA1025 and CVX 208, each with its own list\'s display', () => {
    const r = toJpImmunization(local, patient);
    expect(r.vaccineCode.coding).to.deep.equal([
      { system: HOT9_SYSTEM, code: '182110901', display: 'コミナティ筋注' },
      { system: YJ_SYSTEM, code: '631341DA1025', display: 'コミナティ筋注（１価：起源株）' },
      { system: CVX_SYSTEM, code: '208', display: 'COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose' },
    ]);
    expect(r.vaccineCode.text).to.equal('コミナティ筋注 (Pfizer/BioNTech)');
    expect(r).not.to.have.property('note');
  });

  it('when any catalogue product is mapped, then its codings are the catalogue\'s codes in order (HOT9, YJ, then CVX) with the JP Core systems, Japanese displays on JP codes and the CVX English display on CVX', () => {
    expect(codeLists().hot9!.system).to.equal(HOT9_SYSTEM);
    expect(codeLists().yj!.system).to.equal(YJ_SYSTEM);
    let coded = 0;
    for (const p of allProducts()) {
      const expected = [
        ...['hot9', 'yj'].flatMap((list) => (p.codes ?? []).filter((c) => c.list === list).map((c) => ({ system: systemOf[list]!, code: c.code, display: c.display }))),
        ...(p.cvx ? [{ system: CVX_SYSTEM, code: p.cvx, display: p.cvxDisplay! }] : []),
      ];
      const r = toJpImmunization({ ...local, vaccineCode: p.code, lotNumber: p.lotExample, doseNumber: 1 }, patient);
      if (expected.length === 0) {
        expect(r.vaccineCode, p.code).not.to.have.property('coding');
        continue;
      }
      coded += 1;
      expect(r.vaccineCode.coding, p.code).to.deep.equal(expected);
      for (const c of r.vaccineCode.coding!) {
        // No Japanese text in a CVX display; Japanese text in every Japanese list's display.
        if (c.system === CVX_SYSTEM) expect(c.display, `${p.code} CVX`).to.match(/^[\x20-\x7e]+$/);
        else expect(c.display, `${p.code} ${c.system}`).to.match(/[\u3040-\u30ff\u4e00-\u9fff\uff00-\uffef]/);
      }
    }
    expect(coded).to.equal(allProducts().filter((p) => p.cvx || p.codes?.length).length).and.be.greaterThan(20);
  });

  it('when any product with a CVX code is mapped to the exchange form, then the CVX display is the catalogue\'s English cvxDisplay', () => {
    for (const p of allProducts().filter((x) => x.cvx)) {
      const r = toImmunization({ ...local, vaccineCode: p.code, lotNumber: p.lotExample, doseNumber: 1 });
      expect(r.vaccineCode.coding.find((c) => c.system === CVX_SYSTEM), p.code).to.deep.equal({ system: CVX_SYSTEM, code: p.cvx, display: p.cvxDisplay });
    }
  });

  it('when a product has no published code (Daichirona, Kostaive), then its vaccineCode is text only and the note gives the catalogue\'s reason', () => {
    for (const code of ['covid19-daichirona', 'covid19-kostaive']) {
      const p = findProduct(code)!;
      expect(p.uncoded, code).to.match(/two presentations/);
      const r = toJpImmunization({ ...local, vaccineCode: code, lotNumber: p.lotExample, doseNumber: 1 }, patient);
      expect(r.vaccineCode).to.deep.equal({ text: p.display });
      expect(r.note!.map((n) => n.text)).to.deep.equal([`vaccineCode is text only, no HOT9, YJ or CVX code is given: ${p.uncoded}`]);
      expect(r.note![0]!.text).not.to.match(/is known/);
    }
    expect(findProduct('covid19-daichirona')!.uncoded).to.include('182129101').and.include('182161101');
    expect(findProduct('covid19-kostaive')!.uncoded).to.include('182143701').and.include('182148201');
  });

  describe('catalogue rules checked at load', () => {
    const document = () => JSON.parse(readFileSync(new URL('../../services/municipality/vaccinations/catalogue.json', import.meta.url), 'utf8'));
    const issues = (mutate: (d: any) => void) => {
      const d = document();
      mutate(d);
      const parsed = parseCatalogue(d);
      return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const at = (d: any, code: string) => d.products.find((p: any) => p.code === code);

    it('when the catalogue is as shipped, then it passes', () => {
      expect(issues(() => {})).to.deep.equal([]);
    });

    it('when a product with a cvx code has no cvxDisplay, then the catalogue is refused naming cvxDisplay', () => {
      const i = document().products.findIndex((p: any) => p.code === 'hepb');
      expect(issues((d) => { delete at(d, 'hepb').cvxDisplay; })).to.deep.equal([`products.${i}.cvxDisplay: is required with a cvx code (the CVX list's English display)`]);
    });

    it('when a product with no published code has no uncoded reason, then the catalogue is refused naming uncoded; a coded product may not carry one', () => {
      const d0 = document();
      const i = d0.products.findIndex((p: any) => p.code === 'covid19-kostaive');
      const j = d0.products.findIndex((p: any) => p.code === 'hib');
      expect(issues((d) => { delete at(d, 'covid19-kostaive').uncoded; })).to.deep.equal([`products.${i}.uncoded: is required for a product with no published code (say why none is given)`]);
      expect(issues((d) => { at(d, 'hib').uncoded = 'several presentations, none chosen by the catalogue'; })).to.deep.equal([`products.${j}.uncoded: must be absent for a product with a published code`]);
    });
  });
});
