/**
 * Minimal disclosure per purpose (docs/DESIGN.md §4.7): the table itself, and what the source actually signs
 * and seals. A test acting as Toda (its real keys) asks Tawaramoto through the real gateway under
 * each purpose and opens the released records with Toda's decryption key, so it sees exactly what
 * left Tawaramoto, before Toda's own import applies the table a second time.
 */
import { expect } from 'chai';
import { createPublicKey } from 'node:crypto';
import { openMessage } from '../../shared/federation/messages.ts';
import { PURPOSES, recordsClaimsSchema, Typ, type Purpose } from '../../shared/federation/protocol.ts';
import { DISCLOSURE_ELEMENTS, DISCLOSURE_POLICY, discloseImmunization, withheldFor } from '../../services/municipality/answering/disclosure-policy.ts';
import { fromImmunization, toImmunization } from '../../services/municipality/vaccinations/fhir.ts';
import { randomMyNumber } from '../fixtures/factories.ts';
import {
  TAWARAMOTO, TODA, craftAndSend, moveIn, moveOut, registerCodes, residentWithRecords, startInProcessFederation, type InProcessFederation,
} from '../fixtures/inprocess-federation.ts';

const ALWAYS = ['resourceType', 'id', 'meta', 'patient'];

const fullRecord = {
  recordId: 'rec-1', version: 3, occurrenceDate: '2021-06-01', vaccineCode: 'covid19-comirnaty', lotNumber: 'FF3620', doseNumber: 1,
  place: '田原本町保健センター', status: 'entered-in-error' as const, reason: '別人の記録として登録されていた', createdAt: '2021-06-02T00:00:00.000Z',
  sourceMunicipality: null, sourceRecordId: null, sourceVersion: null, importRequestId: null, retrievedAt: null,
};

describe('minimal disclosure: the purpose → elements table', () => {
  it('when the table is read, then every purpose has an entry, scheduling is the narrowest, and each wider purpose only adds', () => {
    expect(Object.keys(DISCLOSURE_POLICY).sort()).to.deep.equal([...PURPOSES].sort());
    expect(DISCLOSURE_POLICY['next-dose-scheduling']).to.deep.equal(['status', 'vaccineCode', 'occurrenceDateTime', 'protocolApplied']);
    expect(DISCLOSURE_POLICY['certificate-issuance']).to.include.members([...DISCLOSURE_POLICY['next-dose-scheduling'], 'lotNumber']);
    expect(withheldFor('certificate-issuance')).to.deep.equal(['location', 'performer', 'note']);
    expect(withheldFor('adverse-event-follow-up')).to.deep.equal([]);
    for (const purpose of PURPOSES) expect(DISCLOSURE_ELEMENTS).to.include.members([...DISCLOSURE_POLICY[purpose]]);
  });

  it('when an Immunization is cut for scheduling, then only the allow-list and the identifiers remain, and the requester\'s import keeps lot and place empty', () => {
    const cut = discloseImmunization(toImmunization(fullRecord) as unknown as Record<string, unknown>, 'next-dose-scheduling');
    expect(Object.keys(cut).sort()).to.deep.equal([...ALWAYS, ...DISCLOSURE_POLICY['next-dose-scheduling']].sort());
    expect(cut.meta).to.deep.equal({ versionId: '3' });
    const imported = fromImmunization(cut);
    expect(imported).to.include({ sourceRecordId: 'rec-1', sourceVersion: 3, status: 'entered-in-error', lotNumber: null, place: null, reason: null, doseNumber: 1 });
    const forFollowUp = fromImmunization(discloseImmunization(toImmunization(fullRecord) as unknown as Record<string, unknown>, 'adverse-event-follow-up'));
    expect(forFollowUp).to.include({ lotNumber: 'FF3620', place: '田原本町保健センター', reason: '別人の記録として登録されていた' });
  });

  it('when an element is added to the mapping later, then it stays home: the cut is built from the allow-list, not by removing keys', () => {
    const withExtra = { ...toImmunization(fullRecord), reasonCode: [{ text: 'travel' }], extension: [{ url: 'x' }] } as unknown as Record<string, unknown>;
    for (const purpose of PURPOSES) expect(discloseImmunization(withExtra, purpose)).not.to.have.any.keys('reasonCode', 'extension', 'primarySource');
  });
});

describe('minimal disclosure: what the source signs and seals, per purpose (real federation in one process)', function () {
  this.timeout(120_000);
  let fed: InProcessFederation;
  let atToda: string;

  before(async () => {
    fed = await startInProcessFederation({ municipalities: [TAWARAMOTO, TODA] });
    const [t, d] = [await fed.clerk(TAWARAMOTO), await fed.clerk(TODA)];
    const myNumber = randomMyNumber();
    const { addresseeNumber } = await residentWithRecords(fed.m(TAWARAMOTO), t, { kana: 'サイショウ ゲンコウ', myNumber });
    atToda = await moveIn(fed.m(TODA), d, await moveOut(fed.m(TAWARAMOTO), t, addresseeNumber, TODA), myNumber);
    for (const code of [TAWARAMOTO, TODA]) await registerCodes(fed.m(code));
  });
  after(async () => fed?.close());

  /** Asks as Toda under `purpose` and opens what Tawaramoto released, verifying Tawaramoto's signature. */
  async function released(purpose: Purpose) {
    const sent = await craftAndSend(fed, TODA, { addresseeNumber: atToda, source: TAWARAMOTO, purpose, sealed: { moveIn: { movedInAt: new Date().toISOString() } } });
    expect(sent.source, purpose).to.include({ status: 'ok' });
    const claims = await openMessage(sent.records!, fed.pki.credentials(TODA).decryption.key, recordsClaimsSchema, {
      key: createPublicKey(fed.pki.credentials(TAWARAMOTO).signer.key), issuer: TAWARAMOTO, audience: TODA, typ: Typ.RECORDS,
    });
    expect(claims.subjects.map((x) => x.ref)).to.deep.equal(['0']);
    const resources = (claims.subjects[0]!.bundle.entry ?? []).map((e) => e.resource);
    expect(resources).to.have.length(2);
    return { claims, resources };
  }

  for (const purpose of PURPOSES) {
    it(`when Toda asks for ${purpose}, then Tawaramoto signs only that purpose's elements and names them`, async () => {
      const { claims, resources } = await released(purpose);
      expect(claims.purpose).to.equal(purpose);
      expect(claims.elements).to.deep.equal([...DISCLOSURE_POLICY[purpose]]);
      expect(resources).to.have.length(2);
      for (const r of resources) {
        expect(Object.keys(r).sort(), purpose).to.deep.equal([...ALWAYS, ...DISCLOSURE_POLICY[purpose].filter((e) => e !== 'note')].sort());
        expect(r.meta).to.have.keys('versionId');
        expect(r.patient).to.deep.equal({ type: 'Patient', display: 'resident' });
        for (const withheld of withheldFor(purpose)) expect(r, `${purpose} withholds ${withheld}`).not.to.have.property(withheld);
      }
    });
  }
});
