import { expect } from 'chai';
import { claimResident, mainFederation, type RunningFederation } from '../fixtures/federation.ts';
import { api } from '../fixtures/http.ts';

describe('a local federation of real processes (smoke)', () => {
  let fed: RunningFederation;
  let moved: { mover: ReturnType<RunningFederation['residents']>[number]; todaAddressee: string };
  before(async function () {
    this.timeout(180_000);
    fed = await mainFederation();
  });

  it('when a resident moves from Tawaramoto to Toda with consent, then Toda imports the prior records once', async () => {
    const tClerk = await fed.login('293610', 'clerk1');
    const dClerk = await fed.login('112241', 'clerk1');
    const mover = await claimResident(fed, '293610', (r) => r.records.length > 0);
    const atTawaramoto = await api('GET', `${fed.url('293610')}/residents/${mover.addresseeNumber}/vaccinations`, { token: tClerk });
    const count = atTawaramoto.body.records.length as number;
    expect(count, 'the claimed resident has records at Tawaramoto').to.be.greaterThan(0);
    const out = await api('POST', `${fed.url('293610')}/residents/${mover.addresseeNumber}/move-out`, {
      token: tClerk, body: { moveOutDate: '2026-11-20', destination: '112241', destinationAddress: '埼玉県戸田市上戸田1-1-1' },
    });
    expect(out.status).to.equal(201);
    const moveIn = await api('POST', `${fed.url('112241')}/move-ins`, {
      token: dClerk,
      body: {
        certificate: out.body.certificate, myNumber: mover.myNumber, address: '埼玉県戸田市上戸田1-1-1',
        consent: { purpose: 'next-dose-scheduling', expiresAt: new Date(Date.now() + 30 * 864e5).toISOString(), method: 'written' },
      },
    });
    expect(moveIn.status).to.equal(201);
    await fed.waitForCodes('112241');
    const body = { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moveIn.body.resident.addresseeNumber, source: '293610' }] };
    const first = await api('POST', `${fed.url('112241')}/exchange/queries`, { token: dClerk, body });
    expect(first.status).to.equal(200);
    expect(first.body.results[0]).to.include({ status: 'ok', recordCount: count, imported: count });
    const again = await api('POST', `${fed.url('112241')}/exchange/queries`, { token: dClerk, body });
    expect(again.body.results[0]).to.include({ status: 'ok', recordCount: count, imported: 0 });
    const held = await api('GET', `${fed.url('112241')}/residents/${moveIn.body.resident.addresseeNumber}/vaccinations`, { token: dClerk });
    expect(held.body.records).to.have.length(count);
    moved = { mover, todaAddressee: moveIn.body.resident.addresseeNumber };
  });

  it('when the resident moves back to Tawaramoto, then Tawaramoto takes them back as the same resident, never a second row with the same code', async () => {
    const tClerk = await fed.login('293610', 'clerk1');
    const dClerk = await fed.login('112241', 'clerk1');
    const out = await api('POST', `${fed.url('112241')}/residents/${moved.todaAddressee}/move-out`, {
      token: dClerk, body: { moveOutDate: '2026-11-22', destination: '293610', destinationAddress: '奈良県磯城郡田原本町890' },
    });
    expect(out.status).to.equal(201);
    const back = await api('POST', `${fed.url('293610')}/move-ins`, {
      token: tClerk, body: { certificate: out.body.certificate, myNumber: moved.mover.myNumber, address: '奈良県磯城郡田原本町890' },
    });
    expect(back.status).to.equal(201);
    expect(back.body.resident.addresseeNumber).to.equal(moved.mover.addresseeNumber);
    const resident = await api('GET', `${fed.url('293610')}/residents/${moved.mover.addresseeNumber}`, { token: tClerk });
    expect(resident.body).to.include({ status: 'resident', address: '奈良県磯城郡田原本町890', previousMunicipality: '112241' });
    const rows = await fed.rows<{ n: number }>('293610', 'SELECT COUNT(*) AS n FROM residents WHERE code = (SELECT code FROM residents WHERE "addresseeNumber" = ?)', [moved.mover.addresseeNumber]);
    expect(Number(rows[0]!.n)).to.equal(1);
  });
});
