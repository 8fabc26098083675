/**
 * Process federations shared by the security suites of one mocha run: starting five processes
 * costs more than most suites' own work, and these suites only add data. Two profiles:
 *
 * - `main`: issuer, gateway, three municipalities, default limits (but a sign-in lock only after
 *   100 failures in a row). The gateway captures its
 *   messages (CAPTURE_DIR) for the leak scan, and every member logs at debug level, so the scan
 *   reads the most any log would hold.
 * - `edge`: the same members with low rate limits (a short window, so Retry-After is seconds),
 *   for the rate-limit suite, and a member the transport suite revokes for good.
 *
 * Each suite leaves every member running (a suite that restarts one waits for it);
 * `securityFederation()` restarts any member found dead, so one failed suite does not fail the next.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { E2E_MUNICIPALITIES, startTestFederation, type RunningFederation } from '../fixtures/federation.ts';

export const TAWARAMOTO = '293610';
export const AKIOTA = '343692';
export const TODA = '112241';

/** The edge profile's limits: a staff account may send 3 queries per 6 s, a member 4 per 8 s. */
export const EDGE_LIMITS = { staff: 3, staffWindow: 6, member: 4, memberWindow: 8 };

export interface SecurityFederation extends RunningFederation {
  /** Where the gateway appends every message it receives and sends (main profile). */
  captureDir: string;
}

type Profile = 'main' | 'edge';

// Test-run state only (never in application code): the federations these suites share.
const shared = new Map<Profile, Promise<SecurityFederation>>();
const scratch: string[] = [];

async function start(profile: Profile): Promise<SecurityFederation> {
  const captureDir = mkdtempSync(join(tmpdir(), 'hikitsugi-capture-'));
  scratch.push(captureDir);
  const codes = E2E_MUNICIPALITIES.map((m) => m.code);
  const each = (env: Record<string, string>) => Object.fromEntries(codes.map((c) => [c, env]));
  const fed = profile === 'main'
    ? await startTestFederation({
      residents: 10,
      // The fuzz suite signs in with random wrong passwords as the demo accounts later suites use:
      // a lockout here would be the fuzz suite's doing (lockout is the sessions suite's subject).
      env: { gateway: { LOG_LEVEL: 'debug', CAPTURE_DIR: captureDir }, issuer: { LOG_LEVEL: 'debug' }, ...each({ LOG_LEVEL: 'debug', SIGNIN_LOCKOUT_THRESHOLD: '100' }) },
    })
    : await startTestFederation({
      residents: 6,
      env: {
        gateway: { MEMBER_QUERY_LIMIT: String(EDGE_LIMITS.member), MEMBER_QUERY_WINDOW_SECONDS: String(EDGE_LIMITS.memberWindow) },
        ...each({ STAFF_QUERY_LIMIT: String(EDGE_LIMITS.staff), STAFF_QUERY_WINDOW_SECONDS: String(EDGE_LIMITS.staffWindow) }),
      },
    });
  await Promise.all(codes.map((code) => fed.waitForCodes(code, 60_000)));
  return Object.assign(fed, { captureDir });
}

/** The shared federation of a profile, started on first use; members that died since are started again. */
export async function securityFederation(profile: Profile = 'main'): Promise<SecurityFederation> {
  if (!shared.has(profile)) shared.set(profile, start(profile));
  const fed = await shared.get(profile)!;
  for (const m of fed.members) {
    if (!m.child || m.child.exitCode !== null || m.child.signalCode !== null) await fed.start(m.id);
  }
  return fed;
}

// Registered on mocha's root suite when a spec file first imports this module.
after(async function () {
  this.timeout(60_000);
  for (const running of shared.values()) {
    const fed = await running.catch(() => undefined);
    await fed?.close();
  }
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});
