/**
 * The process federations the security suites use, shared per mocha process
 * (test/fixtures/federation.ts): these suites only add data.
 *
 * - `main`: the main shared federation (also used by end-to-end suites that only add data):
 *   every member logs at debug level and the gateway captures its messages for the leak scan.
 * - `edge`: the same members with low rate limits (a short window, so Retry-After is seconds),
 *   for the rate-limit suite, and a member the transport suite revokes for good.
 *
 * Each suite leaves every member running (a suite that restarts one waits for it).
 */
import { E2E_MUNICIPALITIES, mainFederation, sharedFederation, type MainFederation, type RunningFederation } from '../fixtures/federation.ts';

export const TAWARAMOTO = '293610';
export const AKIOTA = '343692';
export const TODA = '112241';

/** The edge profile's limits: a staff account may send 3 queries per 6 s, a member 4 per 8 s. */
export const EDGE_LIMITS = { staff: 3, staffWindow: 6, member: 4, memberWindow: 8 };

export type SecurityFederation = MainFederation;

/** The main shared federation (see test/fixtures/federation.ts). */
export const securityFederation = (): Promise<SecurityFederation> => mainFederation();

/** The edge profile, started on first use in this process; members that died since are started again. */
export function edgeFederation(): Promise<RunningFederation> {
  const each = (env: Record<string, string>) => Object.fromEntries(E2E_MUNICIPALITIES.map((m) => [m.code, env]));
  return sharedFederation('edge', {
    residents: 6,
    env: {
      gateway: { MEMBER_QUERY_LIMIT: String(EDGE_LIMITS.member), MEMBER_QUERY_WINDOW_SECONDS: String(EDGE_LIMITS.memberWindow) },
      ...each({ STAFF_QUERY_LIMIT: String(EDGE_LIMITS.staff), STAFF_QUERY_WINDOW_SECONDS: String(EDGE_LIMITS.staffWindow) }),
    },
  });
}
