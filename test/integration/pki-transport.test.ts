import { expect } from 'chai';
import { currentClientRequestId } from '../../shared/platform/context.ts';
import type { Server } from 'node:https';
import { createLogger } from '../../shared/platform/log.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import {
  closeMemberServer, createMemberClient, createMemberServer, isPeerUnavailable, listenMember, memberIdentity, memberOf, requireMember,
  type MemberClient,
} from '../../shared/federation/member-http.ts';
import type { MemberCredentials } from '../../shared/federation/pki.ts';
import { copyTestPki, expiredCredentials, foreignCredentials, type OwnTestPki } from '../fixtures/pki.ts';
import { expectHandshakeRefused, expectRefusal, Handshake, rawRequest, tlsHandshake } from '../fixtures/refusals.ts';

/** Why the client gave up on a peer: a 503 peer-unavailable and its reason; anything else fails. */
async function unavailable(request: Promise<unknown>): Promise<string> {
  try {
    await request;
  } catch (err) {
    expect(isPeerUnavailable(err), String(err)).to.equal(true);
    expect((err as { status: number }).status).to.equal(503);
    return String((err as { extra: { reason: unknown } }).extra.reason);
  }
  return expect.fail('the client accepted the peer');
}

describe('mutual TLS between members', () => {
  let pki: OwnTestPki;
  let server: Server;
  let url: string;
  let toda: MemberCredentials;
  let client: MemberClient;
  let slowServer: Server;
  let slowUrl: string;

  before(async () => {
    pki = await copyTestPki();
    await pki.revoke('343692');
    toda = pki.credentials('112241');
    const logger = createLogger({ name: 'test-transport', level: 'silent' });
    const app = createBaseApp(logger);
    app.use(memberIdentity({ directory: await pki.memberDirectory(), logger }));
    app.get('/whoami', (req, res) => {
      const member = memberOf(req);
      res.json({ id: member.id, kind: member.kind, serial: member.serial, requestId: res.getHeader('x-request-id'), clientRequestId: currentClientRequestId() });
    });
    app.get('/gateway-only', requireMember(['gateway']), (_req, res) => { res.json({ ok: true }); });
    app.use(notFoundHandler);
    app.use(errorHandler(logger));
    server = createMemberServer(app, pki.credentials('gateway'), { logger });
    url = await listenMember(server, 0);

    const slow = createBaseApp(logger);
    slow.get('/slow', () => { /* never answers */ });
    slowServer = createMemberServer(slow, pki.credentials('293610'));
    slowUrl = await listenMember(slowServer, 0);
    client = createMemberClient(toda);
  });

  after(async () => {
    client.close();
    slowServer.closeAllConnections();
    await closeMemberServer(server);
    await closeMemberServer(slowServer);
    pki.remove();
  });

  it('when a member with a federation certificate connects, then it is identified by its certificate CN, not by a header', async () => {
    const res = await client.getJson<{ id: string; kind: string; serial: string }>(`${url}/whoami`, { expectPeer: 'gateway' });
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ id: '112241', kind: 'municipality', serial: toda.serial });
    const spoof = await rawRequest(`${url}/whoami`, { ca: toda.ca, cert: toda.tls.cert, key: toda.tls.key, headers: { 'x-member': '293610', 'x-client-cn': '293610' } });
    expect(JSON.parse(spoof.body).id).to.equal('112241');
  });

  it('when plain HTTP is sent to a member port, then the connection is dropped without an HTTP answer', async () => {
    await expectHandshakeRefused(rawRequest(url.replace('https:', 'http:') + '/whoami'), Handshake.NOT_TLS);
  });

  it('when TLS is used without a client certificate, then the handshake ends with certificate_required', async () => {
    await expectHandshakeRefused(tlsHandshake(url, { ca: toda.ca }), Handshake.CERTIFICATE_REQUIRED);
  });

  it('when the client certificate comes from another CA, then the server closes the connection after the handshake, before any request', async () => {
    const rogue = foreignCredentials('112241');
    await expectHandshakeRefused(tlsHandshake(url, { ca: toda.ca, cert: rogue.tls.cert, key: rogue.tls.key }), Handshake.CLOSED_AFTER_HANDSHAKE);
  });

  it('when the client certificate has expired, then the server closes the connection after the handshake, before any request', async () => {
    const expired = expiredCredentials('112241');
    await expectHandshakeRefused(tlsHandshake(url, { ca: toda.ca, cert: expired.tls.cert, key: expired.tls.key }), Handshake.CLOSED_AFTER_HANDSHAKE);
    // Control: the same handshake with the member's valid certificate is accepted.
    expect(await tlsHandshake(url, { ca: toda.ca, cert: toda.tls.cert, key: toda.tls.key })).to.equal('accepted');
  });

  it('when the client certificate is revoked, then 403 problem+json names the rule', async () => {
    const akiota = createMemberClient(pki.credentials('343692'));
    try {
      const res = await akiota.getJson<{ type: string; rule: string }>(`${url}/whoami`);
      expectRefusal(res, 403, 'certificate-revoked');
      expect(res.body.rule).to.equal('must not be revoked');
    } finally {
      akiota.close();
    }
  });

  it('when a member of the wrong kind calls a gateway-only route, then 403', async () => {
    expectRefusal(await client.getJson(`${url}/gateway-only`), 403, 'forbidden');
  });

  it('when the server is not the member the client expects, then the client refuses it before sending', async () => {
    expect(await unavailable(client.getJson(`${url}/whoami`, { expectPeer: '293610' }))).to.equal('peer certificate names gateway, expected 293610');
  });

  it('when the server certificate is not from the federation CA, then the client refuses the handshake', async () => {
    const rogue = foreignCredentials('gateway');
    const rogueServer = createMemberServer(createBaseApp(createLogger({ name: 'rogue', level: 'silent' })), rogue);
    const rogueUrl = await listenMember(rogueServer, 0);
    try {
      expect(await unavailable(client.getJson(`${rogueUrl}/whoami`))).to.equal(Handshake.UNTRUSTED_SERVER);
    } finally {
      await closeMemberServer(rogueServer);
    }
  });

  it('when a peer is down or does not answer in time, then the client raises peer-unavailable naming why', async () => {
    const closed = createMemberServer(createBaseApp(createLogger({ name: 'closed', level: 'silent' })), pki.credentials('293610'));
    const closedUrl = await listenMember(closed, 0);
    await closeMemberServer(closed);
    expect(await unavailable(client.postJson(`${closedUrl}/x`, {}))).to.equal('ECONNREFUSED');
    expect(await unavailable(client.getJson(`${slowUrl}/slow`, { timeoutMs: 200 }))).to.equal('timeout');
  });

  it('when a request id is given, then it travels in X-Request-Id and the receiver keeps it apart from its own correlation id', async () => {
    const res = await client.getJson<{ requestId: string; clientRequestId: string }>(`${url}/whoami`, { requestId: 'trace-0001-abcd' });
    expect(res.body.clientRequestId).to.equal('trace-0001-abcd');
    expect(res.body.requestId).to.be.a('string').and.not.equal('trace-0001-abcd');
  });
});
