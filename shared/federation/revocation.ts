/**
 * The federation's revocation list (docs/PROTOCOL.md §1, "Revocation list"): a JWS signed with
 * the CA key over `{ iss, number, iat, nextUpdate, serials }`. `number` only ever grows (like a
 * CRL number, RFC 5280 §5.2.3) and `nextUpdate` says when the CA will have published the next
 * one (RFC 5280 §5.1.2.5). Every member holds the newest list it has verified, keeps it in its
 * own database across restarts, re-reads its source every REVOCATION_REFRESH_SECONDS, refuses a
 * list with a lower number (a rollback by whoever relays it), and fails closed once its list is
 * past nextUpdate plus REVOCATION_GRACE_SECONDS.
 *
 * Only node:crypto and jose (through shared/crypto.ts): no certificate library, so the list does
 * not change when certificates move to another one.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { QueryTypes, type Sequelize } from 'sequelize';
import { z } from 'zod';
import { signPayload, verifyPayload } from '../crypto.ts';
import { inTransaction } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { MemberClient } from './member-client.ts';
import { GATEWAY_ID, Typ } from './protocol.ts';

export const CA_ISSUER = 'federation-ca';
/** How long a list is valid when the CA does not say: the CA re-signs well before (daily, docs/PROTOCOL.md §1). */
export const DEFAULT_LIST_VALID_SECONDS = 7 * 24 * 3600;
export const DEFAULT_REFRESH_SECONDS = 60;
export const DEFAULT_GRACE_SECONDS = 24 * 3600;
/** The table where a member keeps every list it accepted (append-only). */
export const REVOCATION_LIST_TABLE = 'revocation_lists';

/** Serial numbers compare as uppercase hex without separators or leading zeros (encoders differ). */
export function normalizeSerial(serial: string): string {
  return serial.replace(/:/g, '').toUpperCase().replace(/^0+(?=.)/, '');
}

/* ---------- the list ---------- */

const listSchema = z.object({
  iss: z.literal(CA_ISSUER),
  number: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  iat: z.number().int().min(0),
  nextUpdate: z.number().int().min(0),
  serials: z.array(z.string().regex(/^[0-9A-Fa-f:]{1,64}$/)).max(100_000),
}).strict().refine((l) => l.nextUpdate > l.iat, { message: 'nextUpdate must be after iat', path: ['nextUpdate'] });

export interface RevocationList {
  /** Monotonic: a later list always has a higher number. */
  number: number;
  issuedAt: Date;
  nextUpdate: Date;
  serials: ReadonlySet<string>;
  isRevoked(serial: string): boolean;
  /** The signed list as received (what is kept and relayed). */
  jws: string;
}

export interface SignListOptions {
  number: number;
  serials: Iterable<string>;
  issuedAt?: Date;
  nextUpdate?: Date;
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** Signs a revocation list with the CA key (`kid` = the CA certificate's kid). */
export async function signRevocationList(ca: { key: KeyObject; kid: string }, options: SignListOptions): Promise<string> {
  const issuedAt = options.issuedAt ?? new Date();
  const nextUpdate = options.nextUpdate ?? new Date(issuedAt.getTime() + DEFAULT_LIST_VALID_SECONDS * 1000);
  const payload = {
    iss: CA_ISSUER,
    number: options.number,
    iat: seconds(issuedAt),
    nextUpdate: seconds(nextUpdate),
    serials: [...new Set([...options.serials].map(normalizeSerial))].sort(),
  };
  listSchema.parse(payload);
  return signPayload(payload, { key: ca.key, kid: ca.kid, typ: Typ.REVOCATIONS });
}

const invalid = (rule: string) => new AppError(400, 'invalid-revocations', 'Revocation list refused', { field: 'revocations', rule });

/** Verifies a list with the CA certificate: signed by the CA, the shape above. Anything else is a 400 `invalid-revocations`. */
export async function verifyRevocationList(jws: string, caPem: string): Promise<RevocationList> {
  let caKey: KeyObject;
  try {
    caKey = new X509Certificate(caPem).publicKey;
  } catch {
    throw new AppError(400, 'invalid-certificate', 'Certificate malformed', { field: 'ca', rule: 'must be a PEM X.509 certificate' });
  }
  const text = typeof jws === 'string' ? jws.trim() : '';
  let payload: unknown;
  try {
    payload = await verifyPayload(text, caKey, Typ.REVOCATIONS);
  } catch {
    throw invalid('must be a JWS signed by the federation CA');
  }
  const parsed = listSchema.safeParse(payload);
  if (!parsed.success) throw invalid('must carry iss, number, iat, nextUpdate and serials (docs/PROTOCOL.md §1)');
  const set = new Set(parsed.data.serials.map(normalizeSerial));
  return {
    number: parsed.data.number,
    issuedAt: new Date(parsed.data.iat * 1000),
    nextUpdate: new Date(parsed.data.nextUpdate * 1000),
    serials: set,
    isRevoked: (serial) => set.has(normalizeSerial(serial)),
    jws: text,
  };
}

/* ---------- where a member gets lists from, and where it keeps them ---------- */

/** Returns the source's current list, or undefined when there is nothing new to look at. */
export type RevocationSource = () => Promise<string | undefined>;

/** A file (the gateway's REVOCATION_FILE), read again only when it changed. */
export function fileRevocationSource(path: string): RevocationSource {
  let seen = '';
  return async () => {
    const stat = statSync(path);
    const stamp = `${stat.mtimeMs}:${stat.size}`;
    if (stamp === seen) return undefined;
    const text = readFileSync(path, 'utf8');
    seen = stamp;
    return text;
  };
}

/** The list the gateway relays at GET /revocations (the peer must be the gateway); 404 = none yet. */
export function gatewayRevocationSource(client: MemberClient, gatewayUrl: string, timeoutMs = 10_000): RevocationSource {
  const url = `${gatewayUrl.replace(/\/+$/, '')}/revocations`;
  return async () => {
    const res = await client.getJson<unknown>(url, { expectPeer: GATEWAY_ID, timeoutMs });
    if (res.status === 404) return undefined;
    const body = z.object({ revocations: z.string().min(1).max(10_000_000) }).safeParse(res.body);
    if (res.status !== 200 || !body.success) {
      throw new AppError(502, 'invalid-revocations', 'Revocation list unavailable', { field: 'revocations', rule: `gateway answered ${res.status}` });
    }
    return body.data.revocations;
  };
}

/** Where a member keeps the lists it accepted, so a restart does not forget the newest number. */
export interface RevocationKeeper {
  /** The newest list kept, as signed. */
  latest(): Promise<string | undefined>;
  keep(list: RevocationList): Promise<void>;
}

/** The member's own database (table `revocation_lists`, append-only: one row per accepted list). */
export function databaseKeeper(sequelize: Sequelize): RevocationKeeper {
  return {
    async latest() {
      const rows = await sequelize.query<{ jws: string }>(
        `SELECT jws FROM ${REVOCATION_LIST_TABLE} ORDER BY list_number DESC LIMIT 1`, { type: QueryTypes.SELECT },
      );
      return rows[0]?.jws;
    },
    async keep(list) {
      // One transaction: the check and the row together, so two writers cannot both insert.
      await inTransaction(sequelize, async (transaction) => {
        const held = await sequelize.query<{ n: number | string | null }>(
          `SELECT MAX(list_number) AS n FROM ${REVOCATION_LIST_TABLE}`, { type: QueryTypes.SELECT, transaction },
        );
        if (Number(held[0]?.n ?? 0) >= list.number) return;
        await sequelize.query(
          `INSERT INTO ${REVOCATION_LIST_TABLE} (list_number, issued_at, next_update, accepted_at, jws) VALUES ($1, $2, $3, $4, $5)`,
          { bind: [list.number, list.issuedAt.toISOString(), list.nextUpdate.toISOString(), new Date().toISOString(), list.jws], transaction },
        );
      });
    },
  };
}

/* ---------- the guard every member holds ---------- */

export type RevocationState = 'fresh' | 'grace' | 'stale' | 'missing';

export interface RevocationStatus {
  state: RevocationState;
  number?: number;
  issuedAt?: string;
  nextUpdate?: string;
  /** When the held list stops being trusted (nextUpdate + grace). */
  trustedUntil?: string;
}

export interface RevocationGuard {
  /** Against the held list (even a stale one: a serial once revoked stays revoked). */
  isRevoked(serial: string): boolean;
  current(): RevocationList | undefined;
  status(): RevocationStatus;
  /** Throws 503 `revocation-list-stale` or `revocation-list-missing` when the held list cannot be trusted. */
  assertFresh(): void;
  /**
   * Offers a signed list: accepted when its number is higher than the held one. Refusals are
   * named: `invalid-revocations` (not the CA's, malformed), `revocation-list-rollback` (lower
   * number), `revocation-list-conflict` (same number, other content).
   */
  offer(jws: string): Promise<'accepted' | 'unchanged'>;
  /** Asks the source once; refusals and an unreachable source are logged and thrown. */
  refresh(): Promise<void>;
  /** Adopts what the keeper holds (if newer) and keeps every list accepted from now on. */
  attach(keeper: RevocationKeeper): Promise<void>;
  /** Called after each accepted list. */
  onChange(listener: (list: RevocationList) => void): void;
  /** Refreshes every `refreshSeconds` until stopped. */
  start(): void;
  stop(): Promise<void>;
}

export interface RevocationGuardOptions {
  ca: string;
  source: RevocationSource;
  refreshSeconds?: number;
  graceSeconds?: number;
  logger?: Logger;
  /** Milliseconds since the epoch (tests move the clock). */
  now?: () => number;
}

/** How soon a member holding no list asks its source again. */
const MISSING_RETRY_MS = 2_000;

export function createRevocationGuard(options: RevocationGuardOptions): RevocationGuard {
  const graceMs = (options.graceSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
  const refreshMs = (options.refreshSeconds ?? DEFAULT_REFRESH_SECONDS) * 1000;
  const now = options.now ?? Date.now;
  const keepers: RevocationKeeper[] = [];
  const listeners: ((list: RevocationList) => void)[] = [];
  let held: RevocationList | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  let running: Promise<void> | undefined;
  // Offers are taken one at a time, so two sources racing cannot both "win".
  let queue: Promise<unknown> = Promise.resolve();

  function status(): RevocationStatus {
    if (!held) return { state: 'missing' };
    const t = now();
    const trustedUntil = held.nextUpdate.getTime() + graceMs;
    const state: RevocationState = t <= held.nextUpdate.getTime() ? 'fresh' : t <= trustedUntil ? 'grace' : 'stale';
    return {
      state, number: held.number, issuedAt: held.issuedAt.toISOString(), nextUpdate: held.nextUpdate.toISOString(),
      trustedUntil: new Date(trustedUntil).toISOString(),
    };
  }

  async function accept(list: RevocationList, keepersToTell: RevocationKeeper[]): Promise<void> {
    held = list;
    for (const keeper of keepersToTell) {
      try {
        await keeper.keep(list);
      } catch (err) {
        options.logger?.error({ err: (err as Error).message, number: list.number }, 'revocation list could not be kept');
      }
    }
    for (const listener of listeners) listener(list);
  }

  function offer(jws: string): Promise<'accepted' | 'unchanged'> {
    const step = queue.then(async () => {
      const list = await verifyRevocationList(jws, options.ca);
      if (held && list.number < held.number) {
        throw new AppError(409, 'revocation-list-rollback', 'Older revocation list refused', {
          field: 'revocations.number', rule: `must not be lower than the list held (${held.number}); got ${list.number}`,
        });
      }
      if (held && list.number === held.number) {
        if (list.jws === held.jws) return 'unchanged' as const;
        throw new AppError(409, 'revocation-list-conflict', 'Conflicting revocation list refused', {
          field: 'revocations.number', rule: `list ${list.number} is already held with other content`,
        });
      }
      const previous = held?.number;
      await accept(list, keepers);
      options.logger?.info({ number: list.number, previous, revoked: list.serials.size, nextUpdate: list.nextUpdate.toISOString() }, 'revocation list accepted');
      return 'accepted' as const;
    });
    queue = step.catch(() => undefined);
    return step;
  }

  async function refresh(): Promise<void> {
    const jws = await options.source();
    if (jws === undefined) return;
    try {
      await offer(jws);
    } catch (err) {
      const e = err as AppError;
      options.logger?.warn({ code: e.code, rule: e.extra?.rule, held: held?.number }, 'revocation list refused');
      throw err;
    }
  }

  const runOnce = (): Promise<void> => {
    running ??= refresh()
      .catch((err: Error) => {
        const s = status();
        options.logger?.[s.state === 'fresh' ? 'debug' : 'warn']({ err: err.message, list: s }, 'revocation list refresh failed');
      })
      .finally(() => { running = undefined; });
    return running;
  };

  const schedule = () => {
    if (stopped || refreshMs <= 0) return;
    // Until a first list is held every federation call is refused (fail closed), so a member that
    // started before its source answered asks again within seconds, not one whole interval later.
    const wait = held ? refreshMs : Math.min(refreshMs, MISSING_RETRY_MS);
    timer = setTimeout(() => void runOnce().finally(schedule), wait);
    // A pending refresh never keeps a process (or a test run) alive.
    timer.unref();
  };

  return {
    isRevoked: (serial) => held?.isRevoked(serial) ?? false,
    current: () => held,
    status,
    assertFresh() {
      const s = status();
      if (s.state === 'missing') {
        throw new AppError(503, 'revocation-list-missing', 'No revocation list held', {
          field: 'revocations', rule: 'a CA-signed revocation list must be loaded before federation traffic is accepted',
        });
      }
      if (s.state === 'stale') {
        throw new AppError(503, 'revocation-list-stale', 'Revocation list out of date', {
          field: 'revocations', rule: `list ${s.number} was due for renewal at ${s.nextUpdate} and trusted until ${s.trustedUntil}`,
        });
      }
    },
    offer,
    refresh,
    async attach(keeper) {
      const kept = await keeper.latest();
      if (kept !== undefined) {
        try {
          await offer(kept);
        } catch (err) {
          // An older kept list is expected (the source was newer); anything else is worth a line.
          if ((err as AppError).code !== 'revocation-list-rollback') {
            options.logger?.warn({ code: (err as AppError).code }, 'kept revocation list refused');
          }
        }
      }
      // In the offer queue, so the keeper sees every list from here on exactly once.
      const join = queue.then(async () => {
        keepers.push(keeper);
        if (held) await keeper.keep(held);
      });
      queue = join.catch(() => undefined);
      await join;
    },
    onChange: (listener) => { listeners.push(listener); },
    start() {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/* ---------- configuration every member shares ---------- */

/** REVOCATION_REFRESH_SECONDS and REVOCATION_GRACE_SECONDS, in each member's config schema. */
export const revocationConfigShape = {
  /** Seconds between two reads of the revocation list's source: a revoked peer is refused within one. */
  REVOCATION_REFRESH_SECONDS: z.coerce.number().int().min(1).max(86_400).default(DEFAULT_REFRESH_SECONDS),
  /** Seconds a list is still trusted after its nextUpdate; past that the member refuses federation traffic. */
  REVOCATION_GRACE_SECONDS: z.coerce.number().int().min(0).max(30 * 86_400).default(DEFAULT_GRACE_SECONDS),
};
