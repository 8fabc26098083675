/**
 * Beyond VRS (docs/DESIGN.md §4.6, §4.7) on real processes (issuer, gateway, three municipalities over mTLS): minimal disclosure
 * per purpose, read back from the copy Toda imported, and the move-in capability on the real
 * wiring. The capability's chains and windows and resident-signed consent have their own suites
 * (test/integration/capability.test.ts, resident-consent.test.ts) on an in-process federation.
 */
import { expect } from 'chai';
import type { Purpose } from '../../shared/federation/protocol.ts';
import type { GeneratedResident } from '../../services/municipality/seed.ts';
import { DISCLOSURE_POLICY } from '../../services/municipality/answering/disclosure-policy.ts';
import { claimResident, mainFederation, type RunningFederation } from '../fixtures/federation.ts';
import { api } from '../fixtures/http.ts';

const A = '293610'; // Tawaramoto: answers
const B = '112241'; // Toda: asks
const C = '343692'; // Akiota
const DAY = 86_400_000;

interface CopyView {
  recordId: string;
  version: number;
  vaccineCode: string;
  doseNumber: number;
  occurrenceDate: string;
  status: string;
  lotNumber: string | null;
  place: string | null;
  provenance: { sourceMunicipality: string; sourceVersion: number; purpose: string | null } | null;
}

describe('beyond VRS: minimal disclosure per purpose and the move-in capability (real processes)', function () {
  this.timeout(120_000);
  let fed: RunningFederation;
  let clerkA: string;
  let clerkB: string;

  before(async function () {
    this.timeout(180_000);
    fed = await mainFederation();
    [clerkA, clerkB] = await Promise.all([fed.login(A, 'clerk1'), fed.login(B, 'clerk1')]);
  });

  /** A seeded Tawaramoto resident with records, moved to Toda with consent for `purpose`; Toda's addressee number. */
  async function mover(purpose: Purpose): Promise<{ person: GeneratedResident; atB: string }> {
    const person = await claimResident(fed, A, (r) => r.records.length >= 1);
    const out = await api('POST', `${fed.url(A)}/residents/${person.addresseeNumber}/move-out`, {
      token: clerkA, body: { moveOutDate: new Date().toISOString().slice(0, 10), destination: B, destinationAddress: '埼玉県戸田市上戸田1-1-1' },
    });
    expect(out.status).to.equal(201);
    const moved = await api('POST', `${fed.url(B)}/move-ins`, {
      token: clerkB, body: {
        certificate: out.body.certificate, myNumber: person.myNumber, address: '埼玉県戸田市上戸田1-1-1',
        consent: { purpose, expiresAt: new Date(Date.now() + 30 * DAY).toISOString(), method: 'written' },
      },
    });
    expect(moved.status).to.equal(201);
    await fed.waitForCodes(B);
    return { person, atB: moved.body.resident.addresseeNumber };
  }

  const query = (atB: string, purpose: Purpose, source = A) =>
    api('POST', `${fed.url(B)}/exchange/queries`, { token: clerkB, body: { purpose, subjects: [{ addresseeNumber: atB, source }] } });
  const copies = async (atB: string) =>
    (await api('GET', `${fed.url(B)}/residents/${atB}/vaccinations`, { token: clerkB })).body.records as CopyView[];
  const key = (r: { vaccineCode: string; doseNumber: number; occurrenceDate: string }) => `${r.vaccineCode}#${r.doseNumber}@${r.occurrenceDate}`;

  /** Asks under `purpose` and returns Toda's copies matched to Tawaramoto's originals, and what Tawaramoto logged as released. */
  async function askAndRead(purpose: Purpose) {
    const { person, atB } = await mover(purpose);
    const res = await query(atB, purpose);
    expect(res.body.results[0]).to.include({ status: 'ok', recordCount: person.records.length, imported: person.records.length });
    const held = await copies(atB);
    expect(held.map(key).sort()).to.deep.equal(person.records.map(key).sort());
    const originals = new Map(person.records.map((r) => [key(r), r]));
    const logged = await fed.rows<{ details: string }>(A, `SELECT details FROM access_log WHERE "requestId" = ? AND action = 'exchange.query.answer'`, [res.body.requestId]);
    return { atB, held: held.map((c) => ({ copy: c, original: originals.get(key(c))! })), elements: JSON.parse(logged[0]!.details).elements as string[] };
  }

  it('when Toda asks for next-dose scheduling, then it receives vaccine, date, dose number and status, and neither lot nor place', async () => {
    const { atB, held, elements } = await askAndRead('next-dose-scheduling');
    expect(elements).to.deep.equal(['status', 'vaccineCode', 'occurrenceDateTime', 'protocolApplied']);
    for (const { copy } of held) {
      expect(copy).to.include({ status: 'completed', lotNumber: null, place: null });
      expect(copy.provenance).to.include({ sourceMunicipality: A, purpose: 'next-dose-scheduling' });
    }
    const fhir = await api('GET', `${fed.url(B)}/residents/${atB}/immunizations`, { token: clerkB });
    for (const e of fhir.body.entry as { resource: Record<string, unknown> }[]) {
      expect(e.resource).to.include.keys('vaccineCode', 'occurrenceDateTime', 'protocolApplied', 'status');
      expect(e.resource).not.to.have.any.keys('lotNumber', 'location', 'performer');
    }
  });

  it('when Toda asks for certificate issuance, then the lot number comes too, and the place does not', async () => {
    const { held, elements } = await askAndRead('certificate-issuance');
    expect(elements).to.deep.equal([...DISCLOSURE_POLICY['certificate-issuance']]);
    for (const { copy, original } of held) {
      expect(copy).to.include({ lotNumber: original.lotNumber, place: null });
      expect(copy.provenance).to.include({ purpose: 'certificate-issuance' });
    }
  });

  it('when Toda asks for adverse-event follow-up, then lot and place come as well', async () => {
    const { held, elements } = await askAndRead('adverse-event-follow-up');
    expect(elements).to.include.members(['lotNumber', 'location', 'performer']);
    for (const { copy, original } of held) {
      expect(copy).to.include({ lotNumber: original.lotNumber, place: original.place });
      expect(copy.provenance).to.include({ purpose: 'adverse-event-follow-up' });
    }
  });

  it('when a copy held for scheduling is asked again for certificate issuance, then a new version adds the lot, and the first version stays without it', async () => {
    const { person, atB } = await mover('next-dose-scheduling');
    expect((await query(atB, 'next-dose-scheduling')).body.results[0]).to.include({ status: 'ok' });
    const consent = await api('POST', `${fed.url(B)}/residents/${atB}/consents`, {
      token: clerkB, body: { purpose: 'certificate-issuance', sources: [A], expiresAt: new Date(Date.now() + 30 * DAY).toISOString(), method: 'written' },
    });
    expect(consent.status).to.equal(201);
    const wider = await query(atB, 'certificate-issuance');
    expect(wider.body.results[0]).to.include({ status: 'ok', imported: person.records.length });
    expect((await query(atB, 'certificate-issuance')).body.results[0], 'asked again: nothing new').to.include({ imported: 0 });
    expect((await query(atB, 'next-dose-scheduling')).body.results[0], 'a narrower purpose adds nothing').to.include({ imported: 0 });
    for (const copy of await copies(atB)) {
      expect(copy).to.include({ version: 2 });
      expect(copy.lotNumber).to.be.a('string');
      expect(copy.provenance).to.include({ purpose: 'certificate-issuance' });
      const history = await api('GET', `${fed.url(B)}/residents/${atB}/vaccinations/${copy.recordId}/history`, { token: clerkB });
      expect(history.body.versions.map((v: CopyView) => [v.version, v.lotNumber === null, v.provenance?.purpose])).to.deep.equal([
        [1, true, 'next-dose-scheduling'], [2, false, 'certificate-issuance'],
      ]);
    }
  });

  it('when Toda asks a municipality the resident did not come from, then Toda refuses before signing and logs it; the window and chains are in the capability suite', async () => {
    const { atB } = await mover('next-dose-scheduling');
    const consent = await api('POST', `${fed.url(B)}/residents/${atB}/consents`, {
      token: clerkB, body: { purpose: 'next-dose-scheduling', sources: [C], expiresAt: new Date(Date.now() + 30 * DAY).toISOString(), method: 'written' },
    });
    expect(consent.status).to.equal(201);
    const res = await query(atB, 'next-dose-scheduling', C);
    expect(res.body.results[0]).to.include({ status: 'denied', reason: 'source_not_on_move_chain', imported: 0 });
    const logged = await fed.rows<{ outcome: string; reason: string }>(B, `SELECT outcome, reason FROM access_log WHERE "requestId" = ? AND action = 'exchange.query.send'`, [res.body.requestId]);
    expect(logged).to.deep.equal([{ outcome: 'denied', reason: 'source_not_on_move_chain' }]);
    expect(await fed.rows(C, 'SELECT seq FROM access_log WHERE "requestId" = ?', [res.body.requestId]), 'Akiota never heard of it').to.have.length(0);
  });
});
