/**
 * Rate limits on the query routes: per federation member at the gateway (keyed by the client
 * certificate's CN) and per staff account at a municipality (single and bulk queries share one
 * budget). Over the limit: 429 application/problem+json naming the rule, with Retry-After; after
 * waiting that long the same caller is served again; other members and accounts are never
 * affected. The `edge` federation runs with low limits and short windows; the defaults stay
 * generous, so ordinary use (every other suite) never meets them.
 */
import { newOprfKey } from '../../shared/crypto.ts';
import { expect } from 'chai';
import { gatewayConfigSchema } from '../../gateway/config.ts';
import { municipalityConfigSchema } from '../../services/municipality/config.ts';
import type { MemberResponse } from '../../shared/federation/member-http.ts';
import { createRateLimiter } from '../../shared/platform/rate-limit.ts';
import { GATEWAY_ID } from '../../shared/federation/protocol.ts';
import { api, type ApiResponse } from '../fixtures/http.ts';
import { EDGE_LIMITS, edgeFederation, TAWARAMOTO, TODA } from './federation.ts';
import type { RunningFederation } from '../fixtures/federation.ts';
import { clientOf, credentialsOf, figure, heldResidents, looseSubject, moveResident, randomCode, signQuery } from './support.ts';
import { isRefusal } from '../fixtures/refusals.ts';

const Y = TAWARAMOTO;
const Z = TODA;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const retryAfterOf = (res: ApiResponse | MemberResponse): number => {
  const h = res.headers as Headers | Record<string, unknown>;
  return Number(typeof (h as Headers).get === 'function' ? (h as Headers).get('retry-after') : (h as Record<string, unknown>)['retry-after']);
};

describe('security: rate limits', function () {
  this.timeout(180_000);
  let fed: RunningFederation;
  const figures = { limited: 0, served: 0 };

  /** 429 problem+json with the rule, and a Retry-After within the window. */
  function expectLimited(res: ApiResponse | MemberResponse, scope: string, window: number): number {
    expect(isRefusal(res, 429, 'rate-limited'), JSON.stringify(res.body)).to.equal(true);
    expect((res.body as { field?: string }).field).to.equal(scope);
    const retryAfter = retryAfterOf(res);
    expect(retryAfter).to.be.within(1, window);
    figures.limited += 1;
    return retryAfter;
  }

  before(async () => {
    fed = await edgeFederation();
  });
  after(() => {
    const gw = gatewayConfigSchema.parse({ PORT: '0', CERT_DIR: 'x', DIRECTORY_FILE: 'x', REVOCATION_FILE: 'x', DATABASE_PATH: 'x', OPRF_KEY: newOprfKey() });
    figure(`rate limits: ${figures.limited} requests over a limit refused with 429 + Retry-After, ${figures.served} under it served`
      + ` (defaults: ${gw.MEMBER_QUERY_LIMIT} queries per ${gw.MEMBER_QUERY_WINDOW_SECONDS} s per member, ${defaults().STAFF_QUERY_LIMIT} per ${defaults().STAFF_QUERY_WINDOW_SECONDS} s per staff account)`);
  });

  it('when requests come faster than the bucket refills, then the limiter refuses with a Retry-After that counts down, per key', () => {
    let now = 0;
    const limiter = createRateLimiter({ limit: 3, windowSeconds: 6, now: () => now });
    expect([1, 2, 3].map(() => limiter.take('a').allowed)).to.deep.equal([true, true, true]);
    expect(limiter.take('a')).to.include({ allowed: false, retryAfter: 2 });
    expect(limiter.take('b').allowed, 'another key has its own bucket').to.equal(true);
    now = 1000;
    expect(limiter.take('a')).to.include({ allowed: false, retryAfter: 1 });
    now = 2000;
    expect(limiter.take('a').allowed, 'one request refilled after 2 s').to.equal(true);
    expect(limiter.take('a').allowed).to.equal(false);
    now = 60_000;
    expect([1, 2, 3, 4].map(() => limiter.take('a').allowed), 'never more than the limit at once').to.deep.equal([true, true, true, false]);
  });

  it('when a staff account exceeds its query limit, then it gets 429 with Retry-After on single and bulk queries, other accounts are served, and it is served again after waiting', async () => {
    const [clerk1, clerk2] = [await fed.login(Y, 'clerk1'), await fed.login(Y, 'clerk2')];
    const resident = (await heldResidents(fed, Y)).find((r) => r.status === 'resident')!;
    const ask = (token: string) => api('POST', `${fed.url(Y)}/exchange/queries`, {
      token, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: resident.addresseeNumber, source: Z }] },
    });
    for (let i = 0; i < EDGE_LIMITS.staff; i++) {
      const res = await ask(clerk1);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      figures.served += 1;
    }
    const retryAfter = expectLimited(await ask(clerk1), 'staff account', EDGE_LIMITS.staffWindow);
    expectLimited(await api('POST', `${fed.url(Y)}/exchange/bulk-queries`, { token: clerk1, body: {} }), 'staff account', EDGE_LIMITS.staffWindow);
    const other = await ask(clerk2);
    expect(other.status, 'another staff account is not limited').to.equal(200);
    figures.served += 1;
    await sleep(retryAfter * 1000 + 200);
    const again = await ask(clerk1);
    expect(again.status, 'served again after Retry-After').to.equal(200);
    figures.served += 1;
  });

  it('when a member exceeds its query limit at the gateway, then it gets 429 with Retry-After, its staff see source_unavailable, other members are served, and it is served again after waiting', async () => {
    // A resident who moved from Z to Y with consent: Y's query for it goes out to the gateway.
    const movedIn = await moveResident(fed, Z, Y);
    const asY = clientOf(fed, Y);
    const asZ = clientOf(fed, Z);
    const y = credentialsOf(fed, Y);
    const z = credentialsOf(fed, Z);
    const gateway = fed.member(GATEWAY_ID).url;
    const send = async (client: typeof asY, creds: typeof y) =>
      client.postJson(`${gateway}/queries`, (await signQuery(creds, [looseSubject(Y === creds.id ? Z : Y, randomCode())])).body, { timeoutMs: 30_000 });
    // Signed in before the burst: the staff query below must reach the gateway inside the same window.
    const clerk = await fed.login(Y, 'operator1');
    try {
      for (let i = 0; i < EDGE_LIMITS.member; i++) {
        const res = await send(asY, y);
        expect(res.status, JSON.stringify(res.body)).to.equal(200);
        figures.served += 1;
      }
      const retryAfter = expectLimited(await send(asY, y), 'member', EDGE_LIMITS.memberWindow);

      // Y's own staff, asking through Y, meet the member's limit as an unavailable source (never a 500).
      const viaStaff = await api('POST', `${fed.url(Y)}/exchange/queries`, {
        token: clerk, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: movedIn.toAddressee, source: Z }] },
      });
      expect(viaStaff.status).to.equal(200);
      expect(viaStaff.body.results[0]).to.include({ status: 'source_unavailable' });
      expect(viaStaff.body.results[0].retryAfter).to.be.greaterThan(0);
      figures.limited += 1;

      const other = await send(asZ, z);
      expect(other.status, 'another member is not limited').to.equal(200);
      figures.served += 1;
      await sleep(retryAfter * 1000 + 200);
      const again = await send(asY, y);
      expect(again.status, 'served again after Retry-After').to.equal(200);
      figures.served += 1;
    } finally {
      asY.close();
      asZ.close();
    }
  });
});

function defaults() {
  return municipalityConfigSchema.parse({
    MUNICIPALITY_CODE: TAWARAMOTO, MUNICIPALITY_NAME: 'x', PORT: '0', DATABASE_PATH: 'x', DATA_KEY: '0'.repeat(64), SESSION_SECRET: '1'.repeat(64),
  });
}
