/**
 * Transport: every member port (the gateway, the issuer, a municipality's federation port) is
 * mutual TLS against the federation CA. Plain HTTP, TLS without a client certificate, a
 * certificate from another CA and an expired member certificate must fail there; and once the
 * CA revokes a member (`scripts/pki.ts revoke`, the real command), the gateway, the issuer and the
 * other municipalities refuse it as soon as they hold the new list — its connections and the
 * messages it signed. Here they are restarted (a restart keeps the newest list and takes the file's);
 * test/integration/federation-trust.test.ts shows the same while everyone keeps running.
 * Controls show the same member is accepted before, and others after.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createMemberClient } from '../../shared/federation/member-http.ts';
import type { MemberCredentials } from '../../shared/federation/pki.ts';
import { GATEWAY_ID, ISSUER_ID } from '../../shared/federation/protocol.ts';
import { api } from '../fixtures/http.ts';
import { expiredCredentials, foreignCredentials } from '../fixtures/pki.ts';
import { AKIOTA, edgeFederation, TAWARAMOTO, TODA } from './federation.ts';
import type { RunningFederation } from '../fixtures/federation.ts';
import { AttackTally, credentialsOf, heldResidents, pkiDir } from './support.ts';
import { Handshake, isRefusal, rawRequest, rejectionOf, tlsHandshake } from '../fixtures/refusals.ts';

const run = promisify(execFile);
/** The member the CA revokes (for good: this suite runs on the `edge` federation). */
const REVOKED = AKIOTA;
const OTHER = TAWARAMOTO;

describe('security: transport', function () {
  this.timeout(240_000);
  const tally = new AttackTally('transport');
  let fed: RunningFederation;
  let endpoints: [string, string][];
  let revoked: MemberCredentials;

  /** A handshake with a TLS identity that must end as named (a TLS alert, or the server closing at once). */
  async function handshake(label: string, url: string, tls: { ca?: string; cert?: string; key?: string }, expected: string) {
    const outcome = await tlsHandshake(url, tls);
    tally.check(label, outcome === expected, outcome);
  }

  /** GET /health that must be refused with this problem (after the handshake). */
  async function refusedAtHttp(label: string, url: string, tls: { ca?: string; cert?: string; key?: string }, status: number, code: string) {
    const res = await rawRequest(`${url}/health`, { ...tls, timeoutMs: 10_000 });
    const body = res.contentType.includes('json') ? JSON.parse(res.body) as unknown : res.body;
    tally.check(label, isRefusal({ status: res.status, headers: { 'content-type': res.contentType }, body }, status, code), res);
  }

  before(async () => {
    fed = await edgeFederation();
    endpoints = [['gateway', fed.member(GATEWAY_ID).url], ['issuer', fed.member(ISSUER_ID).url], [`municipality ${OTHER} (federation port)`, fed.member(OTHER).federationUrl!]];
    revoked = credentialsOf(fed, REVOKED);
  });
  after(() => tally.print());

  it('when a member port is reached by plain HTTP, by TLS without a client certificate, with a certificate of another CA or an expired one, then the connection is refused', async () => {
    const foreign = foreignCredentials(REVOKED);
    const expired = expiredCredentials(REVOKED);
    for (const [name, url] of endpoints) {
      // Control: the member's own certificate is accepted.
      const ok = await rawRequest(`${url}/health`, { ca: revoked.ca, cert: revoked.tls.cert, key: revoked.tls.key });
      expect(ok.status, `${name} accepts a valid member certificate`).to.equal(200);
      expect(await tlsHandshake(url, { ca: revoked.ca, cert: revoked.tls.cert, key: revoked.tls.key }), `${name}: the handshake probe sees an acceptance`).to.equal('accepted');
      const plain = await rejectionOf(rawRequest(`${url.replace('https:', 'http:')}/health`));
      tally.check(`${name}: plain HTTP`, plain === Handshake.NOT_TLS, plain);
      await handshake(`${name}: TLS without a client certificate`, url, { ca: revoked.ca }, Handshake.CERTIFICATE_REQUIRED);
      await handshake(`${name}: certificate of another CA (same CN)`, url, { ca: revoked.ca, cert: foreign.tls.cert, key: foreign.tls.key }, Handshake.CLOSED_AFTER_HANDSHAKE);
      await handshake(`${name}: expired member certificate`, url, { ca: revoked.ca, cert: expired.tls.cert, key: expired.tls.key }, Handshake.CLOSED_AFTER_HANDSHAKE);
    }
  });

  it('when the CA revokes a member, then the gateway, the issuer and another municipality refuse its certificate and its signed messages', async () => {
    // A move-out certificate the soon-revoked member signs now, and a control one used before the revocation.
    const clerk = await fed.login(REVOKED, 'clerk1');
    const certificates: string[] = [];
    const myNumbers = new Map(fed.residents(REVOKED).map((r) => [r.addresseeNumber, r.myNumber]));
    const moved: string[] = [];
    for (const r of (await heldResidents(fed, REVOKED)).filter((x) => x.status === 'resident').slice(0, 2)) {
      moved.push(myNumbers.get(r.addresseeNumber)!);
      const out = await api('POST', `${fed.url(REVOKED)}/residents/${r.addresseeNumber}/move-out`, {
        token: clerk, body: { moveOutDate: new Date().toISOString().slice(0, 10), destination: OTHER, destinationAddress: '田原本町 1-1' },
      });
      expect(out.status, JSON.stringify(out.body)).to.equal(201);
      certificates.push(out.body.certificate);
    }
    const otherClerk = await fed.login(OTHER, 'clerk1');
    const moveIn = (certificate: string, myNumber: string) => api('POST', `${fed.url(OTHER)}/move-ins`, { token: otherClerk, body: { certificate, myNumber, address: '田原本町 1-1' } });
    expect((await moveIn(certificates[0]!, moved[0]!)).status, 'control: accepted before the revocation').to.equal(201);

    await run(process.execPath, ['--import', 'tsx', 'scripts/pki.ts', 'revoke', '--dir', pkiDir(fed), '--member', REVOKED]);
    // Each member takes the new list at start (the gateway from REVOCATION_FILE, the others from the gateway).
    await Promise.all([fed.stop(GATEWAY_ID), fed.stop(ISSUER_ID), fed.stop(OTHER)]);
    // The gateway first: the others fetch the list from it as they start.
    await fed.start(GATEWAY_ID);
    await Promise.all([fed.start(ISSUER_ID), fed.start(OTHER)]);

    const tls = { ca: revoked.ca, cert: revoked.tls.cert, key: revoked.tls.key };
    for (const [name, url] of endpoints) await refusedAtHttp(`${name}: revoked member certificate`, url, tls, 403, 'certificate-revoked');
    const client = createMemberClient(revoked);
    try {
      const query = await client.postJson(`${fed.member(GATEWAY_ID).url}/queries`, { query: 'eyJhbGciOiJQUzI1NiJ9.e30.c2ln' });
      tally.check('gateway: a query from the revoked member', isRefusal(query, 403, 'certificate-revoked'), query.body);
      const code = await client.postJson(`${fed.member(ISSUER_ID).url}/codes`, { seed: 'S'.repeat(43) });
      tally.check('issuer: a code request from the revoked member', isRefusal(code, 403, 'certificate-revoked'), code.body);
    } finally {
      client.close();
    }
    const late = await moveIn(certificates[1]!, moved[1]!);
    // A revoked member is no longer in the directory: its signed certificate names a municipality outside the federation.
    tally.check(`municipality ${OTHER}: a move-out certificate signed by the revoked member`, isRefusal(late, 422, 'unknown-municipality'), late.body);

    // Only the revoked member is refused: another one still gets in everywhere.
    const other = credentialsOf(fed, TODA);
    for (const [name, url] of endpoints) {
      const res = await rawRequest(`${url}/health`, { ca: other.ca, cert: other.tls.cert, key: other.tls.key });
      expect(res.status, `${name} still accepts ${TODA}`).to.equal(200);
    }
  });
});
