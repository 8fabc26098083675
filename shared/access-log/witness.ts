/**
 * Checkpoints in motion: a member signs its head and has the gateway countersign it; a member
 * keeps the checkpoints another member published (a municipality keeps the gateway's); and each
 * member does this on an interval from its config (CHECKPOINT_INTERVAL_SECONDS) and on demand.
 * The tables and signatures themselves are in audit-verify.ts.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import { z } from 'zod';
import {
  createCheckpoint, listCheckpoints, readCheckpoint, readHead, recordCountersignature, witnessCheckpoint,
  type CheckpointModel, type CheckpointView, type HeldCheckpoint,
} from './verify.ts';
import { AppError } from '../platform/errors.ts';
import { keepHeads, type WitnessedHeadModel } from './heads.ts';
import type { MemberClient } from '../federation/member-http.ts';
import type { Signer } from '../federation/messages.ts';
import { GATEWAY_ID } from '../federation/protocol.ts';

/** Config building block: seconds between periodic checkpoints; 0 turns them off. */
export const checkpointIntervalSeconds = z.coerce.number().int().min(0).max(86_400).default(300);

/** Sends a checkpoint JWS to a witness; resolves with its countersignature and the key to check it. */
export type Witness = (jws: string) => Promise<{ countersignature: string; witnessId: string; witnessKey: KeyObject }>;

/** Where the gateway's checkpoint API is, and how to reach it (this member's mTLS client). */
export interface GatewayLink {
  client: MemberClient;
  gatewayUrl: string;
  timeoutMs: number;
  /** The gateway's signing key, from a certificate this member verified against the CA. */
  gatewayKey(): Promise<KeyObject>;
}

const problemType = (body: unknown) => String((body as { type?: unknown } | null)?.type ?? '').split('/').pop();

/** The gateway as witness: POST /checkpoints over mTLS, the gateway named by its certificate. */
export function gatewayWitness(link: GatewayLink): Witness {
  return async (jws) => {
    const res = await link.client.postJson<{ countersignature?: unknown }>(`${link.gatewayUrl}/checkpoints`, { jws }, { timeoutMs: link.timeoutMs, expectPeer: GATEWAY_ID });
    if ((res.status !== 200 && res.status !== 201) || typeof res.body?.countersignature !== 'string') {
      throw new AppError(502, 'witness-refused', `The gateway refused the checkpoint: ${res.status} ${problemType(res.body)}`);
    }
    return { countersignature: res.body.countersignature, witnessId: GATEWAY_ID, witnessKey: await link.gatewayKey() };
  };
}

/** A checkpoint as GET /checkpoints lists it. */
export interface PublishedCheckpoint {
  member: string;
  seq: number;
  hash: string;
  at: string;
  jws: string;
  witnessedBy: string | null;
  countersignature: string | null;
}

/** Checkpoints the gateway holds about `member` (its own, when member is `gateway`), from seq `fromSeq` on. */
export async function fetchGatewayCheckpoints(link: GatewayLink, member: string, fromSeq = 0): Promise<PublishedCheckpoint[]> {
  const res = await link.client.getJson<{ checkpoints?: PublishedCheckpoint[] }>(
    `${link.gatewayUrl}/checkpoints?member=${encodeURIComponent(member)}&fromSeq=${fromSeq}`, { timeoutMs: link.timeoutMs, expectPeer: GATEWAY_ID },
  );
  if (res.status !== 200 || !Array.isArray(res.body?.checkpoints)) {
    throw new AppError(502, 'gateway-checkpoints-unavailable', `The gateway did not list checkpoints: ${res.status} ${problemType(res.body)}`);
  }
  return res.body.checkpoints;
}

/**
 * One gateway entry about a municipality's exchanges, as GET /audit/entries gives it to that
 * municipality: metadata only (no subject code, staff id or consent id).
 */
export interface GatewayEntryView {
  seq: number;
  at: string;
  requestId: string;
  action: string;
  /** The member whose call the entry records (a municipality, or the issuer). */
  actor: string;
  actingMunicipality: string | null;
  /** How the asking municipality took part: it asked, or it was asked (the source). */
  role: 'requester' | 'source';
  /**
   * What the entry is the gateway's side of, for reconciliation: `received` = a query (subject)
   * the municipality sent, `forwarded` = a subject the gateway forwarded to it and heard back
   * about; null = neither (e.g. a forward that never reached it).
   */
  counterpart: 'received' | 'forwarded' | null;
  /** The entry is about a whole query (refused before any subject was looked at). */
  wholeRequest: boolean;
  source: string | null;
  ref: string | null;
  status: string | null;
  purpose: string | null;
  legalBasis: string | null;
  outcome: string;
  reason: string | null;
  flags: string[];
}

/** The gateway's entries about this municipality's exchanges, every page, oldest first. */
export async function fetchGatewayEntries(link: GatewayLink, member: string, q: { requestId?: string; from?: string; to?: string } = {}): Promise<GatewayEntryView[]> {
  const out: GatewayEntryView[] = [];
  for (let after = 0; ;) {
    const params = new URLSearchParams({ member, after: String(after) });
    for (const [k, v] of Object.entries(q)) if (v) params.set(k, v);
    const res = await link.client.getJson<{ entries?: GatewayEntryView[]; nextAfter?: number | null }>(
      `${link.gatewayUrl}/audit/entries?${params}`, { timeoutMs: link.timeoutMs, expectPeer: GATEWAY_ID },
    );
    if (res.status !== 200 || !Array.isArray(res.body?.entries)) {
      throw new AppError(502, 'gateway-log-unavailable', `The gateway did not list its entries: ${res.status} ${problemType(res.body)}`);
    }
    out.push(...res.body.entries);
    if (typeof res.body.nextAfter !== 'number' || res.body.nextAfter <= after) return out;
    after = res.body.nextAfter;
  }
}

/**
 * This member's checkpoints as the gateway holds them, each checked against our own signature (the
 * gateway cannot make us say anything): what verification compares our chain with.
 */
export async function gatewayHeldCheckpoints(link: GatewayLink, self: Signer, ownKey: KeyObject): Promise<HeldCheckpoint[]> {
  const held: HeldCheckpoint[] = [];
  for (const c of await fetchGatewayCheckpoints(link, self.id)) {
    if (typeof c.jws !== 'string') continue;
    const claims = await readCheckpoint(c.jws, ownKey).catch(() => null);
    if (!claims || claims.member !== self.id) continue;
    held.push({ member: claims.member, seq: claims.seq, hash: claims.hash, at: claims.at, heldBy: GATEWAY_ID, witnessedBy: c.witnessedBy ?? GATEWAY_ID });
  }
  return held;
}

/**
 * Signs the head and has it witnessed. With `skipUnchanged` (the periodic run), a head that an
 * already witnessed checkpoint covers is left alone, and an unwitnessed one is sent again rather
 * than signed anew. A witness that fails leaves the checkpoint standing; the next run retries.
 */
export async function checkpointAndWitness(options: {
  sequelize: Sequelize; Checkpoints: CheckpointModel; signer: Signer; witness?: Witness; logger: Logger; skipUnchanged?: boolean;
  /** Where the witness's head that came with its countersignature is kept. */
  WitnessedHeads?: WitnessedHeadModel;
}): Promise<{ checkpoint: CheckpointView; witnessed: CheckpointView | null; skipped?: boolean }> {
  const { sequelize, Checkpoints, signer, witness, logger } = options;
  let checkpoint: CheckpointView | undefined;
  if (options.skipUnchanged) {
    const head = await readHead(sequelize);
    const mine = (await listCheckpoints(Checkpoints, signer.id)).filter((c) => c.seq === head.seq && c.hash === head.hash);
    const witnessed = mine.find((c) => c.witnessedBy !== null && c.witnessedBy !== signer.id);
    if (witnessed || (mine.length > 0 && !witness)) return { checkpoint: mine[0]!, witnessed: witnessed ?? null, skipped: true };
    checkpoint = mine.find((c) => c.witnessedBy === null);
  }
  checkpoint ??= await createCheckpoint(sequelize, Checkpoints, signer);
  let witnessed: CheckpointView | null = null;
  if (witness) {
    try {
      const answer = await witness(checkpoint.jws);
      const recorded = await recordCountersignature({ Checkpoints, jws: checkpoint.jws, ...answer });
      witnessed = recorded.witnessed;
      if (recorded.witnessHead && options.WitnessedHeads) {
        await keepHeads(options.WitnessedHeads, undefined, [{ member: answer.witnessId, head: recorded.witnessHead, exchange: 'countersignature', message: answer.countersignature }]);
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message, seq: checkpoint.seq }, 'checkpoint not witnessed; retried with the next one');
    }
  }
  return { checkpoint, witnessed };
}

/**
 * Keeps the checkpoints another member published (a municipality keeps the gateway's): each is
 * verified with that member's key and countersigned by us in our own table, so a later rewrite of
 * the other member's log contradicts a copy it does not control. A published checkpoint that
 * contradicts one we already hold is the rewrite itself: it is reported, never stored.
 */
export async function keepPeerCheckpoints(options: {
  Checkpoints: CheckpointModel; self: Signer; peer: string; peerKey: KeyObject; published: PublishedCheckpoint[]; logger: Logger;
}): Promise<{ kept: number; contradictions: { seq: number; rule: string }[] }> {
  const { Checkpoints, self, peer, peerKey, published, logger } = options;
  let kept = 0;
  const contradictions: { seq: number; rule: string }[] = [];
  for (const c of published) {
    if (c.member !== peer || c.witnessedBy !== null || typeof c.jws !== 'string') continue;
    try {
      const result = await witnessCheckpoint({ Checkpoints, witness: self, from: peer, memberKey: peerKey, jws: c.jws });
      if (!result.alreadyHeld) kept++;
    } catch (err) {
      const e = err as AppError;
      if (e.code === 'checkpoint-contradiction') {
        contradictions.push({ seq: c.seq, rule: String(e.extra.rule) });
        logger.error({ peer, seq: c.seq, rule: e.extra.rule }, 'a published checkpoint contradicts one we hold: that member rewrote its log');
      } else logger.warn({ peer, seq: c.seq, err: e.message }, 'published checkpoint refused');
    }
  }
  return { kept, contradictions };
}

/** A task run on an interval, never two runs at once; `stop` waits for a run in progress. */
export interface PeriodicTask {
  runNow(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs `task` every `seconds` (0 = never on its own). Failures are logged and the schedule goes on. */
export function runEvery(seconds: number, task: () => Promise<void>, logger: Logger, what: string): PeriodicTask {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const runNow = (): Promise<void> => {
    running ??= task()
      .catch((err: Error) => logger.warn({ err: err.message }, `${what} failed`))
      .finally(() => { running = undefined; });
    return running;
  };
  const schedule = () => {
    if (stopped || seconds <= 0) return;
    timer = setTimeout(() => void runNow().finally(schedule), seconds * 1000);
    // A pending checkpoint never keeps a process (or a test run) alive.
    timer.unref();
  };
  schedule();
  return {
    runNow,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
