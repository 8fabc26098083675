/**
 * Resident notification (docs/DESIGN.md §4.11): every cross-municipality access to a resident's data — a
 * release at the source, an import at the asker — becomes a notice in the resident's disclosure
 * report and an outbox entry for delivery, handed to a pluggable sender that sees the addressee
 * number and the access metadata only. Real gateway, issuer and two municipalities in-process
 * over mTLS, each with its own SQLite file.
 */
import { expect } from 'chai';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { deliverNotices, type NoticeDelivery, type NoticeSender } from '../../services/municipality/notices/service.ts';
import { api } from '../fixtures/http.ts';
import { moveResident, startInProcessFederation, type InProcessFederation, type MovedResident } from '../fixtures/inprocess-federation.ts';

const A = '293610';
const B = '112241';

/** A sender that keeps what it was given, and fails while `failing` is set. */
function recordingSender() {
  const sent: NoticeDelivery[] = [];
  const sender: NoticeSender & { sent: NoticeDelivery[]; failing: boolean } = {
    sent,
    failing: false,
    async send(d) {
      if (this.failing) throw new Error('print shop offline');
      sent.push(d);
    },
  };
  return sender;
}

describe('resident notices of cross-municipality access', () => {
  let fed: InProcessFederation;
  const senders = { [A]: recordingSender(), [B]: recordingSender() };
  let moved: MovedResident;
  let bClerk: string;

  before(async function () {
    this.timeout(120_000);
    fed = await startInProcessFederation({ municipalities: [A, B], noticeSenders: senders });
    moved = await moveResident(fed, A, B);
    bClerk = await fed.member(B).login('clerk1');
  });
  after(async () => fed?.close());

  const query = () => api('POST', `${fed.member(B).url}/exchange/queries`, {
    token: bClerk, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moved.toAddressee, source: A }] },
  });
  const disclosure = async (code: string, addressee: string) =>
    api('GET', `${fed.member(code).url}/residents/${addressee}/disclosure`, { token: await fed.member(code).login('privacyofficer1') });

  it('when B imports A\'s records, then the resident has a notice at both ends, each with a pending outbox entry', async () => {
    const res = await query();
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.results[0]).to.include({ status: 'ok' });

    const atA = await disclosure(A, moved.fromAddressee);
    expect(atA.status).to.equal(200);
    const released = atA.body.notices.filter((n: { kind: string }) => n.kind === 'records-released');
    expect(released).to.have.length(1);
    expect(released[0]).to.include({ otherMunicipality: B, purpose: 'next-dose-scheduling', outcome: 'allowed', requestId: res.body.requestId });
    expect(released[0].delivery).to.include({ channel: 'mail', status: 'pending' });
    // The notice points at the log entry it reports.
    const entry = atA.body.items.find((i: { reference: number }) => i.reference === released[0].reference);
    expect(entry).to.include({ action: Actions.QUERY_ANSWER });

    const atB = await disclosure(B, moved.toAddressee);
    const imported = atB.body.notices.filter((n: { kind: string }) => n.kind === 'records-imported');
    expect(imported).to.have.length(1);
    expect(imported[0]).to.include({ otherMunicipality: A, requestId: res.body.requestId, recordCount: moved.recordIds.length });
    expect(imported[0].delivery).to.include({ channel: 'mail', status: 'pending' });
  });

  it('when the delivery worker runs, then each notice reaches the sender once with the addressee number and no other personal data', async () => {
    for (const code of [A, B]) {
      const run = await api('POST', `${fed.member(code).url}/notices/outbox/run`, { token: await fed.member(code).login('operator1') });
      expect(run.status).to.equal(200);
      expect(run.body.delivered).to.be.at.least(1);
      const again = await api('POST', `${fed.member(code).url}/notices/outbox/run`, { token: await fed.member(code).login('operator1') });
      expect(again.body).to.include({ delivered: 0 });
    }
    expect(senders[A].sent.map((d) => [d.addresseeNumber, d.kind, d.otherMunicipality])).to.deep.equal([[moved.fromAddressee, 'records-released', B]]);
    expect(senders[B].sent.map((d) => [d.addresseeNumber, d.kind, d.otherMunicipality])).to.deep.equal([[moved.toAddressee, 'records-imported', A]]);
    const text = JSON.stringify([...senders[A].sent, ...senders[B].sent]);
    for (const secret of [moved.myNumber, moved.kana, 'タナカ', '田中', '1985-07-14']) expect(text).not.to.include(secret);

    const listed = await api('GET', `${fed.member(A).url}/residents/${moved.fromAddressee}/notices`, { token: await fed.member(A).login('clerk1') });
    expect(listed.status).to.equal(200);
    expect(listed.body.notices[0].delivery).to.include({ status: 'delivered', attempts: 1 });
    expect(listed.body.notices[0].delivery.deliveredAt).to.be.a('string');
  });

  it('when A refuses a query about the resident, then A still tells the resident; B, which imported nothing, makes no new notice', async () => {
    // B's register now disagrees with A's on the kana: A's identity check refuses the release.
    const patched = await api('PATCH', `${fed.member(B).url}/residents/${moved.toAddressee}`, { token: bClerk, body: { kana: 'スズキ ハナコ', reason: '届出による訂正' } });
    expect(patched.status, JSON.stringify(patched.body)).to.equal(200);
    const res = await query();
    expect(res.body.results[0]).to.include({ status: 'identity_mismatch' });
    const atA = await disclosure(A, moved.fromAddressee);
    const refused = atA.body.notices.filter((n: { kind: string }) => n.kind === 'query-refused');
    expect(refused).to.have.length(1);
    expect(refused[0]).to.include({ otherMunicipality: B, outcome: 'denied', recordCount: 0, requestId: res.body.requestId });
    const atB = await disclosure(B, moved.toAddressee);
    expect(atB.body.notices.map((n: { kind: string }) => n.kind)).to.deep.equal(['records-imported']);
    await api('PATCH', `${fed.member(B).url}/residents/${moved.toAddressee}`, { token: bClerk, body: { kana: moved.kana, reason: '元に戻す' } });
  });

  it('when staff only read the resident locally, or the report is made twice, then no notice is added', async () => {
    const aClerk = await fed.member(A).login('clerk1');
    await api('GET', `${fed.member(A).url}/residents/${moved.fromAddressee}/vaccinations`, { token: aClerk });
    const first = await disclosure(A, moved.fromAddressee);
    const second = await disclosure(A, moved.fromAddressee);
    expect(second.body.notices.map((n: { id: string }) => n.id)).to.deep.equal(first.body.notices.map((n: { id: string }) => n.id));
    expect(first.body.notices.map((n: { kind: string }) => n.kind)).to.deep.equal(['records-released', 'query-refused']);
    const printable = await api('GET', `${fed.member(A).url}/residents/${moved.fromAddressee}/disclosure.html`, { token: await fed.member(A).login('privacyofficer1') });
    expect(printable.body).to.include('接種記録を他自治体へ提供').and.to.include('あなたについての照会を拒否');
  });

  it('when the sender fails, then the notice stays pending with the error and is delivered on a later round', async () => {
    await query();
    const m = fed.member(B).municipality;
    senders[B].failing = true;
    const failed = await deliverNotices(m.ctx, senders[B]);
    expect(failed).to.include({ made: 1, delivered: 0, deferred: 1 });
    const pending = await api('GET', `${fed.member(B).url}/residents/${moved.toAddressee}/notices`, { token: bClerk });
    const last = pending.body.notices.at(-1);
    expect(last.kind).to.equal('records-imported');
    expect(last.delivery).to.include({ status: 'pending', attempts: 1 });
    senders[B].failing = false;
    // The retry is due after the backoff; a round at that time delivers it.
    const later = await deliverNotices(m.ctx, senders[B], { now: new Date(Date.now() + 60_000) });
    expect(later).to.include({ delivered: 1, deferred: 0 });
    expect(senders[B].sent.at(-1)).to.include({ noticeId: last.id, addresseeNumber: moved.toAddressee });
  });

  it('when the notices are asked for without a token, by the wrong role, or for an unknown resident, then 401, 403, 404', async () => {
    const url = `${fed.member(A).url}/residents/${moved.fromAddressee}/notices`;
    expect((await api('GET', url)).status).to.equal(401);
    const forbidden = await api('GET', url, { token: await fed.member(A).login('operator1') });
    expect(forbidden.status).to.equal(403);
    expect(forbidden.headers.get('content-type')).to.match(/problem\+json/);
    const unknown = await api('GET', `${fed.member(A).url}/residents/9999999999/notices`, { token: await fed.member(A).login('clerk1') });
    expect(unknown.status).to.equal(404);
    const bad = await api('GET', `${fed.member(A).url}/residents/not-a-number/notices`, { token: await fed.member(A).login('clerk1') });
    expect(bad.status).to.equal(400);
    expect(bad.body.field).to.equal('addresseeNumber');
    expect((await api('POST', `${fed.member(A).url}/notices/outbox/run`, { token: await fed.member(A).login('clerk1') })).status).to.equal(403);
  });
});
