/**
 * A consent revoked at the requester reaches the gateway and the source (docs/DESIGN.md §4.4,
 * docs/PROTOCOL.md §3.9), on a real federation in one process: Toda (B) revokes, its outbox signs
 * and sends the revocation, the gateway records and relays it to Tawaramoto (A). From then on a
 * query carrying the revoked consent's terms is refused at the gateway, and at A on its own, with
 * `no_consent`/`consent_revoked`, whatever B (or a rogue B) signs. Forged revocations are refused;
 * a revocation sent again is recorded once; delivery while the gateway or A is down happens later.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { signMessage } from '../../shared/federation/messages.ts';
import { closeMemberServer, listenMember, type MemberResponse } from '../../shared/federation/member-http.ts';
import type { Signer } from '../../shared/federation/messages.ts';
import { CONSENT_REVOCATIONS_GATEWAY_PATH, CONSENT_REVOCATIONS_PATH, GATEWAY_ID, Typ } from '../../shared/federation/protocol.ts';
import { relayConsentRevocations } from '../../gateway/consent-revocations/service.ts';
import { processRevocationOutbox } from '../../services/municipality/consents/revocations.ts';
import { EMPTY_HEAD } from '../fixtures/factories.ts';
import { api } from '../fixtures/http.ts';
import {
  AKIOTA, TAWARAMOTO, TODA, answersLogged, ask, craftAndSend, moveResident, startInProcessFederation,
  type InProcessFederation, type MovedResident,
} from '../fixtures/inprocess-federation.ts';
import { expectRefusal } from '../fixtures/refusals.ts';

const A = TAWARAMOTO;
const B = TODA;
const C = AKIOTA;
/** An hour on: every backoff of a retried delivery is due (the rounds take `now`; nothing sleeps). */
const later = () => new Date(Date.now() + 3600_000);

const problem = (res: MemberResponse) => res.body as { field?: string; rule?: string };

/** Polls `probe` until it returns a value, at most `tries` times 100 ms apart; fails naming `what`. */
async function eventually<T>(what: string, probe: () => Promise<T | null | undefined | false>, tries = 100): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const got = await probe();
    if (got) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not within ${tries} polls: ${what}`);
}

describe('consent revocation: from the requester to the gateway and the source', function () {
  this.timeout(180_000);
  let fed: InProcessFederation;
  let moved: MovedResident;
  let clerkB: string;

  const gw = () => fed.gateway.gateway.ctx;
  const consentsOf = async (addressee: string) =>
    (await api('GET', `${fed.m(B).url}/residents/${addressee}/consents`, { token: clerkB })).body.consents as { id: string; sources: string[]; revokedAt: string | null }[];
  const revoke = (addressee: string, id: string) =>
    api('POST', `${fed.m(B).url}/residents/${addressee}/consents/${id}/revoke`, { token: clerkB, body: { reason: '本人の申出により撤回' } });
  const heldAtGateway = (id: string, requester: string = B) => gw().models.RevokedConsent.count({ where: { requester, consentId: id } });
  const heldAtA = (id: string, requester: string = B) => fed.m(A).ctx.models.ReceivedRevocation.count({ where: { requester, consentId: id } });
  const outboxOf = (id: string) => fed.m(B).ctx.models.RevocationOutbox.findOne({ where: { consentId: id }, raw: true });

  /** A revocation message as `signer` signs it (B's real key for a genuine one). */
  const revocation = (signer: Signer, claims: Record<string, unknown> = {}) => signMessage({
    aud: GATEWAY_ID, jti: randomUUID(), requester: B, consentId: randomUUID(), sources: [A], revokedAt: new Date().toISOString(), head: EMPTY_HEAD, ...claims,
  }, signer, Typ.CONSENT_REVOCATION, 30 * 86_400);
  const toGateway = (as: string, body: unknown): Promise<MemberResponse> =>
    fed.client(as).postJson(`${fed.gateway.url}${CONSENT_REVOCATIONS_GATEWAY_PATH}`, body, { expectPeer: GATEWAY_ID });
  /** Plays the gateway relaying to A (its real certificate), as a rogue or a lagging gateway could. */
  const toA = (body: unknown): Promise<MemberResponse> =>
    fed.client(GATEWAY_ID).postJson(`${fed.m(A).federationUrl}${CONSENT_REVOCATIONS_PATH}`, body, { expectPeer: A });

  before(async () => {
    fed = await startInProcessFederation({ municipalities: [A, B, C] });
    clerkB = await fed.clerk(B);
    moved = await moveResident(fed, A, B);
  });
  after(() => fed?.close());

  it('when B revokes a consent, then the revocation reaches the gateway and A, and a query carrying its terms is refused at the gateway with consent_revoked', async () => {
    const [held] = await consentsOf(moved.toAddressee);
    expect(held!.sources).to.deep.equal([A]);
    // Control: the consent releases the records before it is revoked.
    expect((await ask(fed.m(B), clerkB, moved.toAddressee, A)).status).to.equal('ok');

    const res = await revoke(moved.toAddressee, held!.id);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.revokedAt).to.be.a('string');

    await eventually('the gateway records the revocation', async () => (await heldAtGateway(held!.id)) === 1);
    await eventually('A records the relayed revocation', async () => (await heldAtA(held!.id)) === 1);
    const sent = await eventually('B\'s outbox marks it sent', async () => ((await outboxOf(held!.id))?.status === 'sent' ? outboxOf(held!.id) : null));
    expect(sent!.sources).to.equal(JSON.stringify([A]));
    const relayed = await eventually('the gateway logs the delivery to A', () => gw().models.AccessLog.findOne({ where: { action: 'consent_revocation.relay', consentId: held!.id }, raw: true }));
    expect(relayed).to.include({ outcome: 'allowed', actingMunicipality: B, subject: null });
    expect(JSON.parse(relayed.details)).to.include({ recipient: A });
    const recorded = (await gw().models.AccessLog.findAll({ where: { action: 'consent_revocation.record', consentId: held!.id }, raw: true }))[0]!;
    expect(recorded).to.include({ outcome: 'allowed', actorId: B, subject: null });
    expect((await fed.m(A).ctx.models.AccessLog.findAll({ where: { action: 'exchange.consent_revocation.receive', consentId: held!.id }, raw: true }))
      .map((e) => e.outcome)).to.deep.equal(['allowed']);
    expect((await fed.m(B).ctx.models.AccessLog.findAll({ where: { action: 'exchange.consent_revocation.send', consentId: held!.id }, raw: true }))
      .map((e) => e.outcome)).to.deep.equal(['allowed']);

    // B's own service refuses before signing; a B that signs the revoked terms anyway is refused at the gateway.
    expect(await ask(fed.m(B), clerkB, moved.toAddressee, A)).to.include({ status: 'no_consent', reason: 'consent_revoked' });
    const crafted = await craftAndSend(fed, B, { addresseeNumber: moved.toAddressee, source: A, consent: { id: held!.id } });
    expect(crafted.gateway).to.include({ status: 'no_consent', reason: 'consent_revoked' });
    expect(crafted.source, 'never forwarded to A').to.equal(undefined);
    const routed = await gw().models.AccessLog.findAll({ where: { requestId: crafted.rid, action: 'query.route' }, raw: true });
    expect(routed.map((e) => [e.outcome, e.reason, e.consentId])).to.deep.equal([['denied', 'consent_revoked', held!.id]]);
    expect(await answersLogged(fed.m(A), crafted.rid)).to.have.length(0);
  });

  it('when a query reaches A carrying a consent A holds B\'s revocation of (the gateway not having heard), then A refuses it with consent_revoked and logs it', async () => {
    const consentId = randomUUID();
    // B's genuine signed revocation, handed to A the way the gateway relays it.
    const res = await toA({ revocation: await revocation(fed.pki.credentials(B).signer, { consentId }) });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    expect(await heldAtGateway(consentId)).to.equal(0);

    const crafted = await craftAndSend(fed, B, { addresseeNumber: moved.toAddressee, source: A, consent: { id: consentId } });
    expect(crafted.source, 'A\'s own signed answer').to.include({ status: 'no_consent', reason: 'consent_revoked' });
    const logged = await answersLogged(fed.m(A), crafted.rid);
    expect(logged.map((e) => [e.outcome, e.reason, e.consentId])).to.deep.equal([['denied', 'consent_revoked', consentId]]);

    // The same consent id revoked by another requester does not touch B's queries, and vice versa: kept per requester.
    expect(await heldAtA(consentId, C)).to.equal(0);
  });

  it('when a revocation is forged (signed by another municipality for B\'s consent, in B\'s name with another key, or by the gateway), then it is refused with its problem and nothing is recorded', async () => {
    const consentId = randomUUID();
    const c = fed.pki.credentials(C).signer;
    // C signs, naming B as the requester.
    let res = await toGateway(C, { revocation: await revocation(c, { consentId }) });
    expectRefusal(res, 403, 'requester-mismatch', 'C revokes B\'s consent');
    expect(problem(res).field).to.equal('revocation.requester');
    // C's key, B's name, over B's own connection.
    res = await toGateway(B, { revocation: await revocation({ ...c, id: B }, { consentId }) });
    expectRefusal(res, 401, 'invalid-signature', 'B\'s name, C\'s key');
    // A B-signed message sent over C's connection.
    res = await toGateway(C, { revocation: await revocation(fed.pki.credentials(B).signer, { consentId }) });
    expectRefusal(res, 403, 'requester-mismatch', 'B\'s message from C');
    expect(problem(res).field).to.equal('revocation.iss');
    expect(await heldAtGateway(consentId)).to.equal(0);
    const denied = await gw().models.AccessLog.count({ where: { action: 'consent_revocation.record', outcome: 'denied' } });
    expect(denied).to.be.at.least(3);

    // The gateway cannot forge B's revocation at A: its own key in B's name breaks B's signature.
    res = await toA({ revocation: await revocation({ ...fed.pki.credentials(GATEWAY_ID).signer, id: B }, { consentId }) });
    expectRefusal(res, 401, 'invalid-signature', 'the gateway in B\'s name');
    // Nor may any other member relay one to A.
    res = await fed.client(C).postJson(`${fed.m(A).federationUrl}${CONSENT_REVOCATIONS_PATH}`, { revocation: await revocation(fed.pki.credentials(B).signer, { consentId }) }, { expectPeer: A });
    expectRefusal(res, 403, 'forbidden', 'relayed by C');
    // A genuine revocation that does not name A as a source is not A's to hold.
    res = await toA({ revocation: await revocation(fed.pki.credentials(B).signer, { consentId, sources: [C] }) });
    expectRefusal(res, 400, 'invalid-claims', 'A not a source');
    expect(problem(res).field).to.equal('revocation.sources');
    expect(await heldAtA(consentId)).to.equal(0);
    expect(await fed.m(A).ctx.models.AccessLog.count({ where: { action: 'exchange.consent_revocation.receive', outcome: 'denied' } })).to.be.at.least(2);
  });

  it('when the input is bad, then a 4xx problem names the field and rule, never a 5xx', async () => {
    const b = fed.pki.credentials(B).signer;
    const cases: [unknown, number, string, string][] = [
      [{}, 400, 'validation', 'revocation'],
      [{ revocation: 'not a jws' }, 400, 'invalid-token', 'revocation'],
      [{ revocation: await revocation(b), extra: 1 }, 400, 'validation', 'body'],
      [{ revocation: await revocation(b, { sources: [B] }) }, 400, 'invalid-claims', 'sources'],
      [{ revocation: await revocation(b, { revokedAt: 'yesterday' }) }, 400, 'invalid-claims', 'revokedAt'],
      [{ revocation: await revocation(b, { aud: A }) }, 401, 'invalid-signature', 'token'],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await toGateway(B, body);
      expectRefusal(res, status, code, JSON.stringify(body).slice(0, 80));
      expect(problem(res).field, code).to.equal(field);
      expect(problem(res).rule, code).to.be.a('string').and.not.equal('');
    }
  });

  it('when the same revocation is sent again, to the gateway or to A, then it is recorded once and answered 200', async () => {
    const message = await revocation(fed.pki.credentials(B).signer);
    const consentId = (JSON.parse(Buffer.from(message.split('.')[1]!, 'base64url').toString()) as { consentId: string }).consentId;
    const first = await toGateway(B, { revocation: message });
    expect(first.status, JSON.stringify(first.body)).to.equal(201);
    const again = await toGateway(B, { revocation: message });
    expect(again.status).to.equal(200);
    expect(again.body).to.deep.equal({ consentId, status: 'already_recorded' });
    expect(await heldAtGateway(consentId)).to.equal(1);
    expect(await gw().models.RevocationRelay.count({ where: { consentId } })).to.equal(1);
    await eventually('A records it', async () => (await heldAtA(consentId)) === 1);
    const replayed = await toA({ revocation: message });
    expect(replayed.status).to.equal(200);
    expect(replayed.body).to.deep.equal({ status: 'already_recorded' });
    expect(await heldAtA(consentId)).to.equal(1);
  });

  it('when the gateway is down as B revokes, and A is down as the gateway relays, then each delivery succeeds once its peer is back', async () => {
    const other = await moveResident(fed, A, B, { kana: 'テイシ ジロウ' });
    const [held] = await consentsOf(other.toAddressee);
    if (!held) throw new Error('no consent at B');
    const server = fed.gateway.gateway.server;
    const port = Number(new URL(fed.gateway.url).port);
    const federationServer = fed.m(A).federationServer!;
    const aPort = Number(new URL(fed.m(A).federationUrl).port);
    try {
      // The gateway stops answering: the revocation is committed at B all the same and waits.
      server.closeAllConnections();
      await closeMemberServer(server);
      const res = await revoke(other.toAddressee, held.id);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const run = await processRevocationOutbox(fed.m(B).ctx, fed.m(B).federation!.link, { now: later() });
      expect(run.sent).to.equal(0);
      const waiting = await outboxOf(held.id);
      expect(waiting).to.include({ status: 'pending' });
      expect(waiting!.attempts).to.be.at.least(1);
      expect(await heldAtGateway(held.id)).to.equal(0);

      // A stops answering too; the gateway comes back and takes the revocation.
      federationServer.closeAllConnections();
      await closeMemberServer(federationServer);
      await listenMember(server, port);
      await eventually('B\'s outbox delivers to the gateway', async () => {
        await processRevocationOutbox(fed.m(B).ctx, fed.m(B).federation!.link, { now: later() });
        return (await outboxOf(held.id))?.status === 'sent';
      });
      expect(await heldAtGateway(held.id)).to.equal(1);
      const round = await relayConsentRevocations(gw(), later());
      expect(round.delivered).to.equal(0);
      const queued = await gw().models.RevocationRelay.findOne({ where: { consentId: held.id }, raw: true });
      expect(queued).to.include({ status: 'pending', recipient: A });
      expect(await heldAtA(held.id)).to.equal(0);

      // A comes back: the queued relay reaches it.
      await listenMember(federationServer, aPort);
      await eventually('the gateway relays to A', async () => {
        await relayConsentRevocations(gw(), later());
        return (await heldAtA(held.id)) === 1;
      });
      expect((await gw().models.RevocationRelay.findOne({ where: { consentId: held.id }, raw: true }))).to.include({ status: 'delivered', message: null });
    } finally {
      if (!server.listening) await listenMember(server, port);
      if (!federationServer.listening) await listenMember(federationServer, aPort);
    }
  });
});
