/**
 * The independent FHIR check used by the FHIR API tests must itself refuse what is wrong: a
 * resource that breaks the R4 schema, a Patient without JP Core's name forms, an Immunization
 * coded with a system JP Core does not name.
 */
import { expect } from 'chai';
import { fhirErrors, twelveDigitRuns } from '../fixtures/fhir-validator.ts';

const patient = {
  resourceType: 'Patient', id: 'p1', meta: { profile: ['http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient'] },
  identifier: [{ system: 'urn:example:ids', value: '1' }],
  name: [
    { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation', valueCode: 'IDE' }], text: '山田　太郎', family: '山田', given: ['太郎'] },
    { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation', valueCode: 'SYL' }], text: 'ヤマダ　タロウ' },
  ],
  gender: 'male', birthDate: '1980-01-01',
};
const immunization = {
  resourceType: 'Immunization', id: 'i1', meta: { profile: ['http://jpfhir.jp/fhir/core/StructureDefinition/JP_Immunization'] }, status: 'completed',
  vaccineCode: { coding: [{ system: 'http://medis.or.jp/CodeSystem/master-HOT9', code: '182110901', display: 'コミナティ筋注' }] },
  patient: { reference: 'Patient/p1' }, occurrenceDateTime: '2021-07-01',
};

describe('the FHIR check of the tests', () => {
  it('when a JP Core Patient and Immunization are well formed, then no error is found', () => {
    expect(fhirErrors(patient)).to.deep.equal([]);
    expect(fhirErrors(immunization)).to.deep.equal([]);
  });

  it('when a resource breaks the R4 schema, then errors name the element', () => {
    expect(fhirErrors({ ...patient, gender: 'f' }).join(' ')).to.match(/gender/);
    expect(fhirErrors({ ...patient, birthDate: '1980-13-01' }).join(' ')).to.match(/birthDate/);
    expect(fhirErrors({ ...immunization, vaccineCode: { coding: [] }, myNumber: '123456789018' }).length).to.be.greaterThan(0);
    expect(fhirErrors({ ...immunization, patient: undefined }).join(' ')).to.match(/patient/);
  });

  it('when JP Core constraints are broken, then each is named', () => {
    expect(fhirErrors({ ...patient, name: [patient.name[0]] }).join(' ')).to.match(/kana \(SYL\)/);
    expect(fhirErrors({ ...patient, meta: {} }).join(' ')).to.match(/JP_Patient/);
    expect(fhirErrors({ ...patient, identifier: undefined }).join(' ')).to.match(/identifier is required/);
    expect(fhirErrors({ ...immunization, vaccineCode: { coding: [{ system: 'https://example.org/made-up', code: 'x' }] } }).join(' ')).to.match(/neither a JP Core vaccine code system nor CVX/);
    expect(fhirErrors({ ...immunization, meta: {} }).join(' ')).to.match(/JP_Immunization/);
  });

  it('when a text holds a 12-digit run, then the check finds it, and a UUID whose last group is all digits is not one', () => {
    expect(twelveDigitRuns('{"id":"5f0c1e2a-9b7d-4c3e-8a1f-022817826592","value":"123456789018"}')).to.deep.equal(['123456789018']);
    expect(twelveDigitRuns('1234567890123 and 12345678901')).to.deep.equal([]);
  });
});
