import { expect } from 'chai';
import http from 'node:http';
import https from 'node:https';
import type { Server } from 'node:https';
import { createLogger } from '../../shared/platform/log.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import {
  closeMemberServer, createMemberClient, createMemberServer, isPeerUnavailable, listenMember, memberIdentity, memberOf, requireMember,
  type MemberClient,
} from '../../shared/federation/member-http.ts';
import type { MemberCredentials, RevocationList } from '../../shared/federation/pki.ts';
import { copyTestPki, expiredCredentials, foreignCredentials, type OwnTestPki } from '../fixtures/pki.ts';

/** A request with whatever TLS options a test wants; resolves with the status or rejects. */
function rawRequest(url: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { method: 'GET', agent: false, ...options }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function refused(promise: Promise<unknown>): Promise<void> {
  try {
    const res = await promise as { status: number };
    expect.fail(`connection was accepted with status ${res.status}`);
  } catch (err) {
    expect((err as Error).message).not.to.match(/connection was accepted/);
  }
}

describe('mutual TLS between members', () => {
  let pki: OwnTestPki;
  let server: Server;
  let url: string;
  let revocations: RevocationList;
  let toda: MemberCredentials;
  let client: MemberClient;
  let slowServer: Server;
  let slowUrl: string;

  before(async () => {
    pki = await copyTestPki();
    await pki.revoke('343692');
    revocations = await pki.revocations();
    toda = pki.credentials('112241');
    const logger = createLogger({ name: 'test-transport', level: 'silent' });
    const app = createBaseApp(logger);
    app.use(memberIdentity({ isRevoked: revocations.isRevoked, logger }));
    app.get('/whoami', (req, res) => {
      const member = memberOf(req);
      res.json({ id: member.id, kind: member.kind, serial: member.serial, requestId: res.getHeader('x-request-id') });
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

  it('when plain HTTP is sent to a member port, then it is refused', async () => {
    await refused(rawRequest(url.replace('https:', 'http:') + '/whoami'));
  });

  it('when TLS is used without a client certificate, then the handshake is refused', async () => {
    await refused(rawRequest(`${url}/whoami`, { ca: toda.ca }));
  });

  it('when the client certificate comes from another CA, then the handshake is refused', async () => {
    const rogue = foreignCredentials('112241');
    await refused(rawRequest(`${url}/whoami`, { ca: toda.ca, cert: rogue.tls.cert, key: rogue.tls.key }));
  });

  it('when the client certificate has expired, then the handshake is refused', async () => {
    const expired = expiredCredentials('112241');
    await refused(rawRequest(`${url}/whoami`, { ca: toda.ca, cert: expired.tls.cert, key: expired.tls.key }));
  });

  it('when the client certificate is revoked, then 403 problem+json names the rule', async () => {
    const akiota = createMemberClient(pki.credentials('343692'));
    try {
      const res = await akiota.getJson<{ type: string; rule: string }>(`${url}/whoami`);
      expect(res.status).to.equal(403);
      expect(res.headers['content-type']).to.match(/application\/problem\+json/);
      expect(res.body.type).to.match(/certificate-revoked$/);
      expect(res.body.rule).to.equal('must not be revoked');
    } finally {
      akiota.close();
    }
  });

  it('when a member of the wrong kind calls a gateway-only route, then 403', async () => {
    const res = await client.getJson<{ type: string }>(`${url}/gateway-only`);
    expect(res.status).to.equal(403);
    expect(res.body.type).to.match(/forbidden$/);
  });

  it('when the server is not the member the client expects, then the client refuses it', async () => {
    try {
      await client.getJson(`${url}/whoami`, { expectPeer: '293610' });
      expect.fail('accepted a server naming another member');
    } catch (err) {
      expect(isPeerUnavailable(err)).to.equal(true);
    }
  });

  it('when the server certificate is not from the federation CA, then the client refuses it', async () => {
    const rogue = foreignCredentials('gateway');
    const rogueServer = createMemberServer(createBaseApp(createLogger({ name: 'rogue', level: 'silent' })), rogue);
    const rogueUrl = await listenMember(rogueServer, 0);
    try {
      await client.getJson(`${rogueUrl}/whoami`);
      expect.fail('accepted a foreign server');
    } catch (err) {
      expect(isPeerUnavailable(err)).to.equal(true);
    } finally {
      await closeMemberServer(rogueServer);
    }
  });

  it('when a peer is down or does not answer in time, then the client raises peer-unavailable', async () => {
    const closed = createMemberServer(createBaseApp(createLogger({ name: 'closed', level: 'silent' })), pki.credentials('293610'));
    const closedUrl = await listenMember(closed, 0);
    await closeMemberServer(closed);
    for (const attempt of [client.postJson(`${closedUrl}/x`, {}), client.getJson(`${slowUrl}/slow`, { timeoutMs: 200 })]) {
      try {
        await attempt;
        expect.fail('no error');
      } catch (err) {
        expect(isPeerUnavailable(err)).to.equal(true);
        expect((err as { status: number }).status).to.equal(503);
      }
    }
  });

  it('when a request id is given, then it travels in X-Request-Id', async () => {
    const res = await client.getJson<{ requestId: string }>(`${url}/whoami`, { requestId: 'trace-0001-abcd' });
    expect(res.body.requestId).to.equal('trace-0001-abcd');
  });
});
