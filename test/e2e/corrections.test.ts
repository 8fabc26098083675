/**
 * Corrections propagate (docs/DESIGN.md §4.10), on a federation of real processes: when Tawaramoto (A)
 * corrects or voids a record that Toda (B) imported, A signs a notice, the gateway relays it
 * (queueing it while B is down), B verifies A's own signature, stores the new version of its
 * copy with provenance, and a clerk at B sees what changed. Delivered exactly once.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { createMemberClient } from '../../shared/federation/member-http.ts';
import { sealMessage, signMessage } from '../../shared/federation/messages.ts';
import { CORRECTION_NOTICES_PATH, Typ } from '../../shared/federation/protocol.ts';
import { findProduct } from '../../services/municipality/vaccinations/catalogue.ts';
import { startTestFederation, type RunningFederation } from '../fixtures/federation.ts';
import { newKey, EMPTY_HEAD } from '../fixtures/factories.ts';
import { api } from '../fixtures/http.ts';
import { moveResident, type Moved } from '../security/support.ts';

const A = '293610';
const B = '112241';

interface Notice {
  source: string; sourceRecordId: string; sourceVersion: number; change: string; outcome: string; recordId: string; purpose: string;
  changes: { field: string; before: unknown; after: unknown }[];
}

/** Polls until `probe` returns a value (no wall-clock assertion: the suite timeout is the limit). */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`still waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('corrections propagate to municipalities that imported the record', () => {
  let fed: RunningFederation;
  let moved: Moved;
  let aClerk: string;
  let bClerk: string;
  /** A's current records of the moved resident, as B imported them. */
  let records: { recordId: string; version: number; vaccineCode: string; lotNumber: string; status: string }[];
  let correctedId: string;

  before(async function () {
    this.timeout(180_000);
    fed = await startTestFederation({
      municipalities: [{ code: A, name: 'Tawaramoto' }, { code: B, name: 'Toda' }],
      residents: 6,
      env: { gateway: { CORRECTION_RETRY_MAX_SECONDS: '2', CORRECTION_DELIVERY_INTERVAL_SECONDS: '1' } },
    });
    await fed.waitForCodes(A);
    moved = await moveResident(fed, A, B, { purpose: 'certificate-issuance' });
    aClerk = await fed.login(A, 'clerk1');
    bClerk = await fed.login(B, 'clerk1');
    const imported = await api('POST', `${fed.url(B)}/exchange/queries`, {
      token: bClerk, body: { purpose: 'certificate-issuance', subjects: [{ addresseeNumber: moved.toAddressee, source: A }] },
    });
    expect(imported.body.results[0], JSON.stringify(imported.body)).to.include({ status: 'ok' });
    records = (await api('GET', `${fed.url(A)}/residents/${moved.fromAddressee}/vaccinations`, { token: aClerk })).body.records;
    expect(records.length).to.be.at.least(2);
  });
  after(async () => fed?.close());

  const noticesAtB = async (): Promise<Notice[]> => {
    const res = await api('GET', `${fed.url(B)}/residents/${moved.toAddressee}/correction-notices`, { token: bClerk });
    expect(res.status).to.equal(200);
    return res.body.notices;
  };
  const copyAtB = async (sourceRecordId: string) => {
    const res = await api('GET', `${fed.url(B)}/residents/${moved.toAddressee}/vaccinations`, { token: bClerk });
    return (res.body.records as { recordId: string; lotNumber: string | null; status: string; version: number; provenance: { sourceRecordId: string; sourceVersion: number } }[])
      .find((r) => r.provenance?.sourceRecordId === sourceRecordId)!;
  };

  it('when A corrects a record B imported, then B\'s copy becomes a new version with provenance, and B\'s clerk sees what changed', async () => {
    const record = records.find((r) => r.status === 'completed' && findProduct(r.vaccineCode)!.lotExample !== r.lotNumber)!;
    correctedId = record.recordId;
    const newLot = findProduct(record.vaccineCode)!.lotExample;
    const before = await copyAtB(record.recordId);
    expect(before.lotNumber).to.equal(record.lotNumber);

    const fixed = await api('POST', `${fed.url(A)}/residents/${moved.fromAddressee}/vaccinations/${record.recordId}/corrections`, {
      token: aClerk, body: { lotNumber: newLot, reason: '転記誤りの訂正' }, headers: { 'idempotency-key': newKey() },
    });
    expect(fixed.status, JSON.stringify(fixed.body)).to.equal(201);
    expect(fixed.body.version).to.equal(record.version + 1);

    const notice = await eventually(async () => (await noticesAtB()).find((n) => n.sourceRecordId === record.recordId), 'the correction at B');
    expect(notice).to.include({ source: A, sourceVersion: record.version + 1, change: 'corrected', outcome: 'applied', purpose: 'certificate-issuance', recordId: before.recordId });
    expect(notice.changes).to.deep.equal([{ field: 'lotNumber', before: record.lotNumber, after: newLot }]);

    const after = await copyAtB(record.recordId);
    expect(after).to.include({ recordId: before.recordId, version: before.version + 1, lotNumber: newLot });
    expect(after.provenance).to.include({ sourceRecordId: record.recordId, sourceVersion: record.version + 1 });
    const history = await api('GET', `${fed.url(B)}/residents/${moved.toAddressee}/vaccinations/${before.recordId}/history`, { token: bClerk });
    expect(history.body.versions.map((v: { lotNumber: string }) => v.lotNumber)).to.deep.equal([record.lotNumber, newLot]);

    // One trace id on the three logs: A sent it, the gateway relayed and delivered it, B applied it.
    const [sent] = await fed.rows<{ requestId: string; outcome: string }>(A, `SELECT "requestId", outcome FROM access_log WHERE action = 'exchange.correction.send' AND "recordIds" LIKE ?`, [`%${record.recordId}%`]);
    expect(sent).to.include({ outcome: 'allowed' });
    const atGateway = await fed.rows<{ action: string; outcome: string }>('gateway', 'SELECT action, outcome FROM access_log WHERE "requestId" = ? ORDER BY seq', [sent!.requestId]);
    expect(atGateway.map((e) => [e.action, e.outcome])).to.deep.equal([['correction.relay', 'allowed'], ['correction.deliver', 'allowed']]);
    const atB = await fed.rows<{ action: string; subject: string }>(B, 'SELECT action, subject FROM access_log WHERE "requestId" = ? ORDER BY seq', [sent!.requestId]);
    expect(atB.map((e) => [e.action, e.subject])).to.deep.equal([['exchange.correction.receive', moved.toAddressee]]);
    // The gateway kept metadata only; the sealed notice is gone once delivered.
    const relayed = await fed.rows<{ notice: string | null; status: string }>('gateway', 'SELECT notice, status FROM correction_relay WHERE "sourceRecordId" = ?', [record.recordId]);
    expect(relayed).to.deep.equal([{ notice: null, status: 'delivered' }]);
  });

  it('when B is down while A voids a record, then the gateway keeps the notice and delivers it exactly once after B restarts', async function () {
    this.timeout(180_000);
    const record = records.find((r) => r.status === 'completed' && r.recordId !== correctedId)!;
    const before = await copyAtB(record.recordId);
    await fed.stop(B);
    const voided = await api('POST', `${fed.url(A)}/residents/${moved.fromAddressee}/vaccinations/${record.recordId}/void`, {
      token: aClerk, body: { reason: '別人の記録を誤登録' }, headers: { 'idempotency-key': newKey() },
    });
    expect(voided.status, JSON.stringify(voided.body)).to.equal(201);
    // The gateway accepted it and has already failed to reach B at least once.
    const waiting = await eventually(async () => {
      const [row] = await fed.rows<{ status: string; attempts: number }>('gateway', 'SELECT status, attempts FROM correction_relay WHERE "sourceRecordId" = ?', [record.recordId]);
      return row && row.attempts >= 1 ? row : undefined;
    }, 'a failed delivery attempt');
    expect(waiting.status).to.equal('pending');

    await fed.start(B);
    bClerk = await fed.login(B, 'clerk1');
    const notice = await eventually(async () => (await noticesAtB()).find((n) => n.sourceRecordId === record.recordId), 'the void at B');
    expect(notice).to.include({ change: 'voided', outcome: 'applied', sourceVersion: record.version + 1 });
    expect(notice.changes).to.deep.include({ field: 'status', before: 'completed', after: 'entered-in-error' });
    const delivered = await eventually(async () => {
      const [row] = await fed.rows<{ status: string; attempts: number; notice: string | null }>('gateway', 'SELECT status, attempts, notice FROM correction_relay WHERE "sourceRecordId" = ?', [record.recordId]);
      return row?.status === 'delivered' ? row : undefined;
    }, 'the relay to finish');
    expect(delivered.attempts).to.be.at.least(2);
    expect(delivered.notice).to.equal(null);

    // Exactly once at B: one notice, one log entry, one new version of the copy.
    expect((await noticesAtB()).filter((n) => n.sourceRecordId === record.recordId)).to.have.length(1);
    const received = await fed.rows(B, `SELECT seq FROM access_log WHERE action = 'exchange.correction.receive' AND outcome = 'allowed' AND details LIKE ?`, [`%${record.recordId}%`]);
    expect(received).to.have.length(1);
    const after = await copyAtB(record.recordId);
    expect(after).to.include({ recordId: before.recordId, version: before.version + 1, status: 'entered-in-error' });

    // The same version delivered again (a relay whose answer was lost would do this): applied once only.
    const a = fed.credentials(A);
    const fhir = await api('GET', `${fed.url(A)}/residents/${moved.fromAddressee}/immunizations`, { token: aClerk });
    const resource = fhir.body.entry.find((e: { resource: { id: string } }) => e.resource.id === record.recordId).resource;
    const [{ code }] = await fed.rows<{ code: string }>(A, 'SELECT code FROM residents WHERE "addresseeNumber" = ?', [moved.fromAddressee]) as [{ code: string }];
    const jti = randomUUID();
    const rid = randomUUID();
    const sealed = await sealMessage({
      aud: B, jti: randomUUID(), rid, noticeJti: jti, sourceRecordId: record.recordId, sourceVersion: record.version + 1, resource,
    }, a.signer, Typ.CORRECTION_RECORD, fed.credentials(B).encryption, 600);
    const again = await signMessage({
      aud: B, jti, rid, sub: code, sourceRecordId: record.recordId, sourceVersion: record.version + 1, change: 'voided', purpose: 'certificate-issuance', record: sealed, head: EMPTY_HEAD,
    }, a.signer, Typ.CORRECTION, 600);
    const asGateway = createMemberClient(fed.credentials('gateway'));
    try {
      const replay = await asGateway.postJson<{ status: string }>(`${fed.member(B).federationUrl}${CORRECTION_NOTICES_PATH}`, { notice: again });
      expect(replay.status).to.equal(200);
      expect(replay.body.status).to.equal('duplicate');
    } finally {
      asGateway.close();
    }
    expect((await noticesAtB()).filter((n) => n.sourceRecordId === record.recordId)).to.have.length(1);
    expect(await copyAtB(record.recordId)).to.deep.equal(after);
  });

  it('when a notice comes from anyone but its source, or about a code the sender does not hold, then it is refused and nothing changes at B', async () => {
    const record = records[0]!;
    const copy = await copyAtB(record.recordId);
    const notice = (iss: string, signer = fed.credentials(iss).signer, sub = 'A'.repeat(26)) => signMessage({
      aud: B, jti: randomUUID(), rid: randomUUID(), sub, sourceRecordId: record.recordId, sourceVersion: 99, change: 'corrected',
      purpose: 'certificate-issuance', record: 'e30.e30.e30.e30.e30', head: EMPTY_HEAD,
    }, signer, Typ.CORRECTION, 600);

    // Sent by B's certificate in A's name: the gateway refuses (the signer must be the sender).
    const asB = createMemberClient(fed.credentials(B));
    const asA = createMemberClient(fed.credentials(A));
    const asGateway = createMemberClient(fed.credentials('gateway'));
    try {
      const mismatch = await asB.postJson<{ type: string; field: string }>(`${fed.member('gateway').url}/corrections`, { notice: await notice(A) });
      expect(mismatch.status).to.equal(403);
      expect(mismatch.body.field).to.equal('notice.iss');
      // A's own notice about a code that is not A's: 422, logged at the gateway.
      const notYours = await asA.postJson<{ type: string }>(`${fed.member('gateway').url}/corrections`, { notice: await notice(A) });
      expect(notYours.status).to.equal(422);
      expect(notYours.body.type).to.match(/code-not-yours$/);
      // The gateway itself cannot forge A's notice: B checks A's own signature.
      const forged = await asGateway.postJson<{ type: string }>(`${fed.member(B).federationUrl}${CORRECTION_NOTICES_PATH}`, {
        notice: await notice(A, { ...fed.credentials('gateway').signer, id: A }),
      });
      expect(forged.status).to.equal(401);
      expect(forged.body.type).to.match(/invalid-signature$/);
      // Only the gateway may deliver to B's federation port.
      const direct = await asA.postJson(`${fed.member(B).federationUrl}${CORRECTION_NOTICES_PATH}`, { notice: await notice(A) });
      expect(direct.status).to.equal(403);
    } finally {
      asA.close();
      asB.close();
      asGateway.close();
    }
    expect(await copyAtB(record.recordId)).to.deep.equal(copy);
    const refusedAtB = await fed.rows(B, `SELECT seq FROM access_log WHERE action = 'exchange.correction.receive' AND outcome = 'denied'`);
    expect(refusedAtB.length).to.be.at.least(1);
  });
});
