/**
 * Liveness and readiness, the same on every member. `GET /health` says the process answers.
 * `GET /ready` says whether it can do its own work: its database is reachable and its revocation
 * list is current (both required), and
 * which peers it can reach now (reported, never required — a municipality whose gateway is down
 * still serves its own residents and queues outgoing work, so it must stay in rotation).
 */
import type { RequestHandler } from 'express';
import type { Sequelize } from 'sequelize';
import { AppError, sendProblem } from './errors.ts';

export interface PeerCheck {
  name: string;
  /** Resolves when the peer answered healthy; rejects (or times out) otherwise. */
  probe: () => Promise<void>;
}

export interface ReadinessOptions {
  member: string;
  sequelize: Sequelize;
  /** Peers to report on; a function when the list changes (the gateway's directory). */
  peers?: PeerCheck[] | (() => Promise<PeerCheck[]>);
  /** Extra facts for operators (queued work, counts); never personal data. */
  details?: () => Promise<Record<string, unknown>>;
  /** Per-check time limit. */
  timeoutMs?: number;
  /**
   * The member's revocation list: required when given, because a member whose list is stale or
   * missing refuses federation traffic (docs/PROTOCOL.md §1) and so cannot do its work.
   */
  revocations?: RevocationReadiness;
}

/**
 * What readiness reads of the member's revocation list: the status of the guard every member
 * holds (shared/federation/revocation.ts), described here so platform/ stays below federation/.
 */
export interface RevocationReadiness {
  status(): { state: 'fresh' | 'grace' | 'stale' | 'missing'; number?: number; issuedAt?: string; nextUpdate?: string; trustedUntil?: string };
}

export interface CheckResult {
  status: 'up' | 'down';
  ms: number;
  reason?: string;
}

export const PROBE_TIMEOUT_MS = 2000;

async function timed(probe: () => Promise<unknown>, timeoutMs: number): Promise<CheckResult> {
  const started = process.hrtime.bigint();
  const elapsed = () => Math.round(Number(process.hrtime.bigint() - started) / 1e6);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), timeoutMs); }),
    ]);
    return { status: 'up', ms: elapsed() };
  } catch (err) {
    // Only a short code: a peer's error text is not ours to repeat.
    const e = err as { code?: string; extra?: { reason?: unknown }; message?: string };
    const reason = String(e.extra?.reason ?? e.code ?? e.message ?? 'error').slice(0, 80);
    return { status: 'down', ms: elapsed(), reason };
  } finally {
    clearTimeout(timer);
  }
}

/** Checks the database and peers; ready = the database answers. */
export async function checkReadiness(options: ReadinessOptions) {
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  let checks: PeerCheck[] = [];
  try {
    checks = typeof options.peers === 'function' ? await options.peers() : (options.peers ?? []);
  } catch {
    checks = [];
  }
  const [database, ...peerResults] = await Promise.all([
    timed(() => options.sequelize.query('SELECT 1'), timeoutMs),
    ...checks.map((p) => timed(p.probe, timeoutMs)),
  ]);
  const peers = Object.fromEntries(checks.map((p, i) => [p.name, peerResults[i]!]));
  const revocations = options.revocations?.status();
  const trusted = !revocations || revocations.state === 'fresh' || revocations.state === 'grace';
  let details: Record<string, unknown> = {};
  if (database!.status === 'up' && options.details) {
    try {
      details = await options.details();
    } catch {
      details = {};
    }
  }
  return {
    ready: database!.status === 'up' && trusted,
    member: options.member,
    database: database!,
    ...(revocations ? { revocations } : {}),
    peers,
    degraded: Object.values(peers).some((p) => p.status === 'down'),
    ...details,
  };
}

export const liveness = (member: string): RequestHandler => (_req, res) => {
  res.json({ status: 'ok', member });
};

/** 200 with the checks when ready; 503 problem+json with the same checks when not. */
export function readiness(options: ReadinessOptions): RequestHandler {
  return async (_req, res) => {
    const report = await checkReadiness(options);
    if (report.ready) {
      res.json({ status: 'ready', ...report });
      return;
    }
    const [field, rule] = report.database.status !== 'up'
      ? ['database', 'must be reachable']
      : ['revocations', `the revocation list must be current (it is ${report.revocations?.state})`];
    sendProblem(res, new AppError(503, 'not-ready', 'Not ready', { field, rule, checks: report }).toProblem('/ready'));
  };
}
