import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueryTypes } from 'sequelize';
import { peekJwt } from '../../shared/crypto.ts';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { createMemberClient, type MemberClient } from '../../shared/federation/member-http.ts';
import {
  blindSeeds, captureLog, gatewayTestConfig, headFrom, issuerTestConfig, startGateway, startIssuer, startIssuerWithoutGateway,
  type CapturedLog, type RunningGateway, type RunningIssuer,
} from '../fixtures/members.ts';
import { testPki, type TestPki } from '../fixtures/pki.ts';
import { databaseContents } from '../fixtures/database.ts';

const SEEDED = ['12345678901', '98765432109', '11122233344'].map(completeMyNumber);

/** The bytes of a SQLite database, WAL included (recent writes may live only there); on PostgreSQL every row as text. */
async function databaseBytes(env: { DATABASE_PATH?: string; DATABASE_URL?: string }): Promise<string> {
  return (await databaseContents(env)).toString('latin1');
}

describe('issuer: pseudonymous codes', () => {
  let pki: TestPki;
  let dir: string;
  let gateway: RunningGateway;
  let issuer: RunningIssuer;
  let issuerLog: CapturedLog;
  let gatewayLog: CapturedLog;
  let toda: MemberClient;
  let tawaramoto: MemberClient;

  /** Which municipality each client speaks for: its log head is signed with that member's key (docs/PROTOCOL.md §3.0). */
  const signers = new Map<MemberClient, string>();
  const signerOf = (client: MemberClient) => pki.credentials(signers.get(client) ?? 'gateway').signer;
  /** POST /codes, with the client's signed head unless the body brings its own. */
  const post = async (client: MemberClient, body: Record<string, unknown>) =>
    client.postJson<{ code: string; attestation: string; head?: string; type?: string; field?: string; rule?: string; retryAfter?: number }>(
      `${issuer.url}/codes`, { head: await headFrom(signerOf(client), 'issuer'), ...body });
  /** A municipality's code for a My Number: the seed derived blind (issuer, then gateway), then POST /codes with it; the rest of `body` rides along. */
  const issue = async (client: MemberClient, { myNumber, ...rest }: { myNumber: string; [key: string]: unknown }) => {
    const [seed] = await blindSeeds(client, { issuer: issuer.url, gateway: gateway.url }, [myNumber], signerOf(client));
    return post(client, { seed, ...rest });
  };

  before(async () => {
    pki = testPki();
    dir = mkdtempSync(join(tmpdir(), 'hikitsugi-issuer-'));
    gatewayLog = captureLog('gateway');
    issuerLog = captureLog('issuer');
    gateway = await startGateway(gatewayTestConfig(pki, dir), gatewayLog.logger);
    issuer = await startIssuer(issuerTestConfig(pki, dir, gateway.url), issuerLog.logger);
    toda = createMemberClient(pki.credentials('112241'));
    tawaramoto = createMemberClient(pki.credentials('293610'));
    signers.set(toda, '112241').set(tawaramoto, '293610');
  });

  after(async () => {
    toda.close();
    tawaramoto.close();
    await issuer.stop();
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('when two municipalities register the same My Number, then their codes differ and the attestations share one link', async () => {
    const atToda = await issue(toda, { myNumber: SEEDED[0]! });
    const atTawaramoto = await issue(tawaramoto, { myNumber: SEEDED[0]! });
    expect(atToda.status).to.equal(200);
    expect(atTawaramoto.status).to.equal(200);
    expect(atToda.body.code).to.match(/^[A-Z2-7]{26}$/);
    expect(atToda.body.code).not.to.equal(atTawaramoto.body.code);
    const a = peekJwt(atToda.body.attestation);
    const b = peekJwt(atTawaramoto.body.attestation);
    expect(a.header).to.include({ typ: 'hikitsugi-code-attestation+jws', kid: pki.credentials('issuer').signer.kid });
    expect(a.claims).to.include({ iss: 'issuer', municipality: '112241', code: atToda.body.code });
    expect(b.claims).to.include({ municipality: '293610', code: atTawaramoto.body.code });
    expect(a.claims.link).to.equal(b.claims.link);
  });

  it('when the same municipality registers the same My Number twice, then the same code comes back and the gateway keeps one row', async () => {
    const first = await issue(toda, { myNumber: SEEDED[1]! });
    const second = await issue(toda, { myNumber: SEEDED[1]! });
    expect(second.body.code).to.equal(first.body.code);
    const rows = await gateway.gateway.ctx.models.Correspondence.count({ where: { municipality: '112241', code: first.body.code } });
    expect(rows).to.equal(1);
  });

  it('when a different My Number is registered, then its code differs', async () => {
    const one = await issue(toda, { myNumber: SEEDED[0]! });
    const other = await issue(toda, { myNumber: SEEDED[2]! });
    expect(other.body.code).not.to.equal(one.body.code);
  });

  it('when the municipality is named in the body, then it is ignored: the certificate says who asks', async () => {
    const plain = await issue(toda, { myNumber: SEEDED[0]! });
    const spoofed = await issue(toda, { myNumber: SEEDED[0]!, municipality: '293610' });
    expect(spoofed.body.code).to.equal(plain.body.code);
    expect(peekJwt(spoofed.body.attestation).claims.municipality).to.equal('112241');
  });

  it('when the seed is malformed, or a My Number is sent instead, then 400 validation names seed without echoing the value, and nothing is registered', async () => {
    const before = await gateway.gateway.ctx.models.Correspondence.count();
    for (const seed of [SEEDED[0], '1234', 123456789018, undefined, 'A'.repeat(44)]) {
      const res = await post(toda, { seed });
      expect(res.status, String(seed)).to.equal(400);
      expect(res.headers['content-type']).to.match(/application\/problem\+json/);
      expect(res.body.type).to.match(/\/validation$/);
      expect(res.body).to.include({ field: 'seed', rule: 'must be a base64url seed of 32 bytes' });
      expect(JSON.stringify(res.body)).not.to.contain(SEEDED[0]);
      expect(JSON.stringify(res.body)).not.to.contain('123456789018');
    }
    expect(await gateway.gateway.ctx.models.Correspondence.count()).to.equal(before);
  });

  it('when a member that is not a municipality asks for a code, then 403', async () => {
    const asGateway = createMemberClient(pki.credentials('gateway'));
    try {
      const res = await post(asGateway, { seed: 'S'.repeat(43) });
      expect(res.status).to.equal(403);
      expect(res.body.type).to.match(/\/forbidden$/);
    } finally {
      asGateway.close();
    }
  });

  it('when the gateway cannot be reached, then 503 with retryAfter, and the refusal is in the issuer log', async () => {
    const lonelyDir = mkdtempSync(join(tmpdir(), 'hikitsugi-issuer-lonely-'));
    const lonely = await startIssuerWithoutGateway(pki, lonelyDir, { GATEWAY_TIMEOUT_MS: '500' });
    try {
      const res = await toda.postJson<{ type: string; retryAfter: number }>(`${lonely.url}/codes`, { seed: 'S'.repeat(43), head: await headFrom(signerOf(toda), 'issuer') });
      expect(res.status).to.equal(503);
      expect(res.body.type).to.match(/gateway-unavailable$/);
      expect(res.body.retryAfter).to.be.a('number');
      const rows = await lonely.issuer.ctx.sequelize.query<{ action: string; outcome: string; reason: string }>(
        'SELECT action, outcome, reason FROM access_log ORDER BY seq', { type: QueryTypes.SELECT });
      // What it was about to send, logged before the call; then the refusal it met.
      expect(rows).to.deep.equal([{ action: 'code.send', outcome: 'allowed', reason: null }, { action: 'code.issue', outcome: 'denied', reason: 'gateway_unavailable' }]);
    } finally {
      await lonely.stop();
      rmSync(lonelyDir, { recursive: true, force: true });
    }
  });

  it('when codes are issued, then the issuer logs each with the municipality as actor and the code as subject', async () => {
    const res = await issue(tawaramoto, { myNumber: SEEDED[2]! });
    const rows = await issuer.issuer.ctx.sequelize.query<{ actorId: string; actorType: string; subject: string; action: string }>(
      'SELECT "actorType", "actorId", subject, action FROM access_log WHERE subject = ?', { replacements: [res.body.code], type: QueryTypes.SELECT });
    expect(rows[0]).to.deep.equal({ actorType: 'member', actorId: '293610', subject: res.body.code, action: 'code.issue' });
  });

  it('when the gateway is asked to record a correspondence by anyone but the issuer, or with a forged attestation, then it refuses', async () => {
    const code = (await issue(toda, { myNumber: SEEDED[0]! })).body;
    const body = { linkId: 'A'.repeat(43), municipality: '112241', code: code.code, attestation: code.attestation };
    const byMunicipality = await toda.postJson<{ type: string }>(`${gateway.url}/correspondence`, body);
    expect(byMunicipality.status).to.equal(403);
    const asIssuer = createMemberClient(pki.credentials('issuer'));
    try {
      const wrongCode = await asIssuer.postJson<{ field: string; rule: string }>(`${gateway.url}/correspondence`, { ...body, code: 'B'.repeat(26) });
      expect(wrongCode.status).to.equal(400);
      expect(wrongCode.body).to.include({ field: 'attestation', rule: 'must name the same municipality and code' });
      const unknown = await asIssuer.postJson<{ field: string }>(`${gateway.url}/correspondence`, { ...body, municipality: '131016' });
      expect(unknown.status).to.equal(400);
      expect(unknown.body.field).to.equal('municipality');
      const taken = await asIssuer.postJson<{ type: string }>(`${gateway.url}/correspondence`, body);
      expect(taken.status).to.equal(409);
    } finally {
      asIssuer.close();
    }
  });

  it('when a client without a federation certificate connects to the issuer or the gateway, then the handshake is refused', async () => {
    for (const url of [`${issuer.url}/health`, `${gateway.url}/health`]) {
      const outcome = await new Promise<string>((resolve) => {
        const req = https.request(url, { ca: pki.ca.cert, agent: false }, (res) => resolve(`status ${res.statusCode}`));
        req.on('error', (err) => resolve(`refused: ${(err as { code?: string }).code ?? err.message}`));
        req.end();
      });
      expect(outcome, url).to.match(/^refused/);
    }
  });

  it('when the issuer is asked for its health over mTLS, then it answers', async () => {
    const res = await toda.getJson<{ status: string }>(`${issuer.url}/health`);
    expect(res.body.status).to.equal('ok');
  });

  it('when everything above has run, then no seeded My Number is in the issuer or gateway databases or logs', async () => {
    const haystacks = {
      issuerDb: await databaseBytes(issuer.config),
      gatewayDb: await databaseBytes(gateway.config),
      issuerLog: issuerLog.text(),
      gatewayLog: gatewayLog.text(),
    };
    expect(issuerLog.lines.length).to.be.greaterThan(0);
    expect(haystacks.gatewayDb).to.contain('correspondence');
    for (const [where, text] of Object.entries(haystacks)) {
      for (const myNumber of SEEDED) expect(text.includes(myNumber), `${where} holds a My Number`).to.equal(false);
    }
  });
});
