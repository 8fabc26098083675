/**
 * Trust at the edges of a running federation (docs/PROTOCOL.md §1, SECURITY.md): every member —
 * the gateway, the issuer and a municipality's federation port — refuses a certificate the CA
 * signed for someone who is not in the directory, or over an RSA key; a member the CA revokes while everyone runs is
 * refused within one revocation refresh interval, also on a TLS connection it opened before; a
 * rolled-back list file does not roll back the gateway, even across a restart; and a member whose
 * list is past nextUpdate plus the grace refuses federation traffic and reports not ready.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { pkiPaths, publishRevocations, type MemberCredentials } from '../../shared/federation/pki.ts';
import { api } from '../fixtures/http.ts';
import { AKIOTA, startInProcessFederation, TAWARAMOTO, TODA, type InProcessFederation } from '../fixtures/inprocess-federation.ts';
import { startGateway, type RunningGateway } from '../fixtures/members.ts';
import { rsaMemberCertificate } from '../fixtures/legacy-pki.ts';

const run = promisify(execFile);
/** The refresh interval every member of this federation runs with. */
const REFRESH_SECONDS = 1;
/**
 * Allowance on top of one interval for the refresh itself (the gateway reads the file, a member
 * fetches it over mTLS and verifies the CA's signature) on a shared machine. The property tested
 * is the configured interval, not the speed of the machine.
 */
const FETCH_ALLOWANCE_MS = 4000;
/** A seed as a municipality finalizes it (docs/DESIGN.md §4.2): what the issuer's POST /codes takes. */
const SEED = 'S'.repeat(43);

interface Answer {
  status: number;
  type?: string;
  body: Record<string, unknown>;
  /** The request went out on a TLS connection opened for an earlier request. */
  reused: boolean;
}

/**
 * An mTLS caller with one kept-alive connection per peer, so a test can tell that a refusal came
 * on a connection the TLS handshake had already accepted.
 */
function keptAliveCaller(creds: MemberCredentials) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, cert: creds.tls.cert, key: creds.tls.key, ca: [creds.ca], maxCachedSessions: 0 });
  const call = (method: string, url: string, body?: unknown): Promise<Answer> => new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = https.request(url, {
      method, agent, headers: payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {},
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let parsed: Record<string, unknown> = {};
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, type: typeof parsed.type === 'string' ? parsed.type.split('/').pop() : undefined, body: parsed, reused: req.reusedSocket });
      });
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
  return { call, close: () => agent.destroy() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('federation trust: non-members, revocation while running, rollback, stale lists', function () {
  this.timeout(180_000);
  let fed: InProcessFederation;
  /** The member URLs a municipality's certificate may reach, with one federation route at each. */
  let routes: { name: string; method: string; url: string; body?: unknown }[];

  before(async () => {
    const env = { REVOCATION_REFRESH_SECONDS: String(REFRESH_SECONDS), REVOCATION_GRACE_SECONDS: '0' };
    fed = await startInProcessFederation({ municipalities: [TAWARAMOTO, AKIOTA, TODA], gatewayEnv: env, issuerEnv: env, municipalityEnv: env, ownPki: true });
    routes = [
      { name: 'gateway', method: 'GET', url: `${fed.gateway.url}/directory` },
      { name: 'issuer', method: 'POST', url: `${fed.issuer.url}/codes`, body: { seed: SEED } },
      { name: `municipality ${TAWARAMOTO} (federation port)`, method: 'POST', url: `${fed.member(TAWARAMOTO).federationUrl}/federation/record-requests`, body: { forward: 'x.y.z' } },
    ];
  });
  after(async () => {
    await fed?.close();
  });

  it('when a certificate the CA signed names someone not in the directory, or holds an RSA key, then the gateway, the issuer and a municipality refuse it with 403 not-a-member', async () => {
    const stranger = await fed.pki.issue({ id: '131016', kind: 'municipality', name: 'Chiyoda' });
    // A second gateway certificate the directory does not list (mis-issued, or superseded by the one it does).
    const shadowGateway = await fed.pki.issue({ id: 'gateway', kind: 'gateway', name: 'Gateway' });
    // Toda's name over an RSA key, as certificates were before P-256: TLS accepts it, no trusted entry holds it.
    const rsaToda = { ...fed.pki.credentials(TODA), tls: await rsaMemberCertificate(fed.pki.ca, { id: TODA, kind: 'municipality', name: 'Toda' }) };
    const callers = [['a non-member municipality', stranger], ['an unlisted gateway certificate', shadowGateway], ['a member\'s name over an RSA key', rsaToda]] as const;
    let refused = 0;
    for (const [who, creds] of callers) {
      const caller = keptAliveCaller(creds);
      try {
        for (const route of routes) {
          const res = await caller.call(route.method, route.url, route.body);
          expect(res.status, `${route.name} answered ${who} ${JSON.stringify(res.body)}`).to.equal(403);
          expect(res.type, `${route.name} to ${who}`).to.equal('not-a-member');
          refused += 1;
        }
      } finally {
        caller.close();
      }
    }
    console.log(`      non-members: ${callers.length * routes.length} tried (${callers.length} certificates × ${routes.length} members), ${refused} refused with 403 not-a-member, 0 5xx`);
    // Control: a member listed in the directory gets through at each.
    const toda = keptAliveCaller(fed.pki.credentials(TODA));
    try {
      expect((await toda.call('GET', `${fed.gateway.url}/directory`)).status).to.equal(200);
      expect((await toda.call('GET', `${fed.issuer.url}/health`)).status).to.equal(200);
      expect((await toda.call('GET', `${fed.member(TAWARAMOTO).federationUrl}/health`)).status).to.equal(200);
    } finally {
      toda.close();
    }
  });

  it('when the CA revokes a member while the federation runs, then within one refresh interval its next call on an open connection is refused with 403 certificate-revoked everywhere, and the others keep working', async () => {
    const revoked = keptAliveCaller(fed.pki.credentials(AKIOTA));
    const other = keptAliveCaller(fed.pki.credentials(TODA));
    try {
      // Before: accepted at each, on connections that stay open.
      for (const route of routes) {
        const res = await revoked.call('GET', new URL('/health', route.url).href);
        expect(res.status, `${route.name} accepts ${AKIOTA} before`).to.equal(200);
      }

      // While the CA's command runs, the member keeps its connections alive (servers close idle ones after 5 s).
      const firstRefusal = new Map<string, number>();
      let revoking = true;
      const warm = (async () => {
        while (revoking) {
          for (const route of routes) {
            const res = await revoked.call('GET', new URL('/health', route.url).href);
            if (res.type === 'certificate-revoked' && !firstRefusal.has(route.name)) firstRefusal.set(route.name, Date.now());
          }
          await sleep(200);
        }
      })();
      await run(process.execPath, ['--import', 'tsx', 'scripts/pki.ts', 'revoke', '--dir', fed.pki.dir, '--member', AKIOTA]).finally(() => { revoking = false; });
      await warm;
      // The moment the CA wrote the new list.
      const revokedAt = statSync(pkiPaths(fed.pki.dir).revocations).mtimeMs;
      const deadline = revokedAt + REFRESH_SECONDS * 1000 + FETCH_ALLOWANCE_MS;
      // Its next calls, on the connections opened before (asking in turn keeps each one alive).
      const last = new Map<string, Answer>();
      while (routes.some((r) => last.get(r.name)?.type !== 'certificate-revoked') && Date.now() < deadline) {
        for (const route of routes.filter((r) => last.get(r.name)?.type !== 'certificate-revoked')) {
          const res = await revoked.call(route.method, route.url, route.body);
          last.set(route.name, res);
          if (res.type === 'certificate-revoked' && !firstRefusal.has(route.name)) firstRefusal.set(route.name, Date.now());
        }
        await sleep(100);
      }
      for (const route of routes) {
        const res = last.get(route.name)!;
        expect(res.status, `${route.name}: ${JSON.stringify(res.body)}`).to.equal(403);
        expect(res.type, route.name).to.equal('certificate-revoked');
        expect(res.reused, `${route.name}: refused on the connection opened before the revocation`).to.equal(true);
      }
      console.log(`      revoked ${AKIOTA}: first refused ${routes.map((r) => `by the ${r.name} ${Math.round(firstRefusal.get(r.name)! - revokedAt)} ms`).join(', ')} after the list was written (refresh interval ${REFRESH_SECONDS * 1000} ms)`);

      for (const route of routes) {
        const res = await other.call('GET', new URL('/health', route.url).href);
        expect(res.status, `${route.name} still accepts ${TODA}`).to.equal(200);
      }
      expect((await other.call('GET', `${fed.gateway.url}/directory`)).status).to.equal(200);
    } finally {
      revoked.close();
      other.close();
    }
  });

  it('when the list file is rolled back to an older list and the gateway restarts, then the gateway keeps the newer list it held and relays that one', async () => {
    const file = pkiPaths(fed.pki.dir).revocations;
    const older = readFileSync(file, 'utf8');
    const newer = await publishRevocations(fed.pki.dir, []);
    const toda = fed.client(TODA);
    const relayed = async () => (await toda.getJson<{ revocations: string }>(`${fed.gateway.url}/revocations`)).body.revocations;
    expect(await relayed()).to.equal(newer.jws);

    writeFileSync(file, older);
    const port = Number(new URL(fed.gateway.url).port);
    await fed.gateway.stop();
    let restarted: RunningGateway | undefined;
    try {
      restarted = await startGateway({ ...fed.gateway.config, PORT: port });
      expect(restarted.gateway.ctx.revocations.current()!.number, 'the number kept in the gateway\'s database').to.equal(newer.number);
      expect(await relayed()).to.equal(newer.jws);
      const ready = await toda.getJson<{ revocations: { number: number; state: string } }>(`${fed.gateway.url}/ready`);
      expect(ready.body.revocations).to.include({ number: newer.number, state: 'fresh' });
    } finally {
      writeFileSync(file, newer.jws);
      // The fixture stops what it started; this one is ours.
      fed.gateway.stop = async () => { await restarted?.stop(); };
    }
  });

  it('when every member\'s list is past its next update plus the grace, then each refuses federation traffic with 503 revocation-list-stale and /ready says not ready; a fresh list from the CA restores them', async () => {
    // The CA publishes a list that goes stale 5 s from now (grace 0 in this federation); every member takes it within an interval.
    const shortLived = await publishRevocations(fed.pki.dir, [], { validSeconds: 5 });
    const toda = keptAliveCaller(fed.pki.credentials(TODA));
    const asGateway = keptAliveCaller(fed.pki.credentials('gateway'));
    const tawaramotoReady = `${fed.member(TAWARAMOTO).url}/ready`;
    try {
      await sleep(Math.max(0, shortLived.nextUpdate.getTime() - Date.now()) + 1000);
      const federation = [
        { name: 'gateway', caller: toda, method: 'GET', url: `${fed.gateway.url}/directory` },
        { name: 'issuer', caller: toda, method: 'POST', url: `${fed.issuer.url}/codes`, body: { seed: SEED } },
        { name: `municipality ${TAWARAMOTO}`, caller: asGateway, method: 'POST', url: `${fed.member(TAWARAMOTO).federationUrl}/federation/record-requests`, body: { forward: 'x.y.z' } },
      ];
      for (const f of federation) {
        const res = await f.caller.call(f.method, f.url, f.body);
        expect(res.status, `${f.name}: ${JSON.stringify(res.body)}`).to.equal(503);
        expect(res.type, f.name).to.equal('revocation-list-stale');
      }
      for (const [name, ready] of [
        ['gateway', await toda.call('GET', `${fed.gateway.url}/ready`)],
        ['issuer', await toda.call('GET', `${fed.issuer.url}/ready`)],
      ] as const) {
        expect(ready.status, name).to.equal(503);
        expect(ready.body).to.include({ field: 'revocations' });
        expect((ready.body.checks as { revocations: { state: string } }).revocations.state, name).to.equal('stale');
      }
      const municipalityReady = await api('GET', tawaramotoReady);
      expect(municipalityReady.status).to.equal(503);
      expect(municipalityReady.body.checks.revocations).to.include({ state: 'stale', number: shortLived.number });

      // The CA's next list: every member picks it up on its own schedule.
      const fresh = await publishRevocations(fed.pki.dir, []);
      await sleep(REFRESH_SECONDS * 1000 + FETCH_ALLOWANCE_MS);
      for (const f of federation.slice(0, 2)) {
        expect((await f.caller.call('GET', new URL('/health', f.url).href)).status, f.name).to.equal(200);
        expect((await toda.call('GET', new URL('/ready', f.url).href)).body.revocations).to.include({ number: fresh.number, state: 'fresh' });
      }
      expect((await toda.call('GET', `${fed.gateway.url}/directory`)).status).to.equal(200);
      const back = await api('GET', tawaramotoReady);
      expect(back.status, JSON.stringify(back.body)).to.equal(200);
      expect(back.body.revocations).to.include({ number: fresh.number, state: 'fresh' });
    } finally {
      toda.close();
      asGateway.close();
    }
  });
});
