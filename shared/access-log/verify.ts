/**
 * Verification of a member's hash-chained access log, signed checkpoints of its head, and
 * reconciliation of two members' logs. Used by every member (municipality, gateway, issuer) and by
 * `npm run audit:verify`. Works on raw rows of the `access_log` table, so it reads a database file
 * as an auditor finds it, without trusting the model that wrote it.
 */
import type { KeyObject } from 'node:crypto';
import { DataTypes, Model, QueryTypes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';
import { z } from 'zod';
import { ACCESS_LOG_TABLE, CHAINED_FIELDS, GENESIS_HASH, entryHash, type ChainedRow } from './chain.ts';
import { sha256Hex, signPayload, verifyPayload } from '../crypto.ts';
import { dateTime } from '../platform/dates.ts';
import { AppError, forbidden } from '../platform/errors.ts';
import type { Signer } from '../federation/messages.ts';
import { logHeadSchema, Typ, type LogHead } from '../federation/protocol.ts';

/* ---------- chain verification ---------- */

export type BreakKind = 'hash-mismatch' | 'broken-link' | 'missing-entry' | 'reordered' | 'checkpoint-contradiction';

/** The first entry at which the chain stops being what it claims to be. */
export interface ChainBreak {
  seq: number;
  kind: BreakKind;
  /** In words: which field or link differs, and from what. */
  detail: string;
  expected?: string | number;
  actual?: string | number;
  /** The checkpoint or witnessed head that contradicts the chain (kinds checkpoint-contradiction and truncation). */
  checkpoint?: { member: string; seq: number; hash: string; at: string; heldBy: string | null; witnessedBy: string | null; exchange?: string };
  /**
   * For a contradiction: the highest seq a checkpoint or witnessed head vouched for before it and
   * the chain agreed with, so the altered entry lies after this one and at or before `seq`.
   */
  lastAgreeingSeq?: number;
}

export interface VerifyReport {
  ok: boolean;
  member: string;
  /** Entries that verified before the walk stopped (all of them when ok). */
  entries: number;
  head: { seq: number; hash: string } | null;
  checkpoints: { checked: number; agreeing: number };
  broken?: ChainBreak;
}

/** A checkpoint some member holds, as verification uses it. `heldBy` says whose copy it is. */
export interface HeldCheckpoint {
  member: string;
  seq: number;
  hash: string;
  at: string;
  heldBy: string | null;
  witnessedBy: string | null;
  /** For a head another member saw in a message (heads.ts): the exchange it came in. */
  exchange?: string;
}

export interface VerifyOptions {
  /** Which member's log this is (used in the report and to pick checkpoints). */
  member: string;
  /** Checkpoints of this member's head held anywhere (its own table, the gateway's, peers'). */
  checkpoints?: HeldCheckpoint[];
  /** Rows read per query: the walk never holds more than one page in memory. */
  pageSize?: number;
  /** How far from its place a moved entry is looked for, to tell a reorder from an edit. */
  reorderWindow?: number;
}

type RawRow = ChainedRow & { seq: number };

const SELECT_FIELDS = [...CHAINED_FIELDS, 'prevHash', 'hash'].map((f) => `"${f}"`).join(', ');

/** Reads one page of raw rows after `afterSeq`, in seq order. */
async function pageAfter(sequelize: Sequelize, afterSeq: number, limit: number): Promise<RawRow[]> {
  return sequelize.query<RawRow>(
    `SELECT ${SELECT_FIELDS} FROM ${ACCESS_LOG_TABLE} WHERE seq > $1 ORDER BY seq ASC LIMIT $2`,
    { type: QueryTypes.SELECT, bind: [afterSeq, limit] },
  );
}

/** Recomputes an entry's hash over its stored fields (JSON columns as stored). */
export function recomputeHash(row: ChainedRow, seq: unknown = row.seq): string {
  const fields: Record<string, unknown> = {};
  for (const f of CHAINED_FIELDS) fields[f] = row[f];
  fields.seq = seq;
  return entryHash(row.prevHash, fields as Omit<ChainedRow, 'hash' | 'prevHash'>);
}

/**
 * An entry whose hash fails at its place may be intact but moved: its stored hash then verifies
 * with another seq, and its prevHash is the hash of an entry that exists. Returns that seq.
 */
async function originalSeqOf(sequelize: Sequelize, row: RawRow, window: number): Promise<number | undefined> {
  if (row.prevHash !== GENESIS_HASH) {
    const [pred] = await sequelize.query<{ seq: number }>(
      `SELECT seq FROM ${ACCESS_LOG_TABLE} WHERE hash = $1 LIMIT 1`, { type: QueryTypes.SELECT, bind: [row.prevHash] },
    );
    if (!pred) return undefined;
  }
  const at = Number(row.seq);
  for (let d = 1; d <= window; d++) {
    for (const candidate of [at - d, at + d]) {
      if (candidate >= 1 && recomputeHash(row, candidate) === row.hash) return candidate;
    }
  }
  return undefined;
}

const short = (hash: unknown) => (typeof hash === 'string' ? `${hash.slice(0, 16)}…` : String(hash));

/**
 * Walks the chain from genesis in seq order, page by page: recomputes each hash over the canonical
 * entry, checks the prevHash link and seq continuity, and checks that no held checkpoint
 * contradicts it (the entry at checkpoint.seq must carry checkpoint.hash; a chain shorter than a
 * checkpoint was truncated). Stops at the first broken entry and names it.
 */
export async function verifyChain(sequelize: Sequelize, options: VerifyOptions): Promise<VerifyReport> {
  const pageSize = options.pageSize ?? 1000;
  const window = options.reorderWindow ?? 10_000;
  const checkpoints = [...(options.checkpoints ?? [])].filter((c) => c.member === options.member).sort((a, b) => a.seq - b.seq);
  let nextCheckpoint = 0;
  let agreeing = 0;
  let lastAgreeingSeq = 0;
  let entries = 0;
  let expectedSeq = 1;
  let expectedPrev = GENESIS_HASH;
  let head: { seq: number; hash: string } | null = null;
  const report = (broken?: ChainBreak): VerifyReport => ({
    ok: !broken, member: options.member, entries, head, checkpoints: { checked: agreeing + (broken?.checkpoint ? 1 : 0), agreeing }, ...(broken ? { broken } : {}),
  });
  const describe = (c: HeldCheckpoint) => ({
    member: c.member, seq: c.seq, hash: c.hash, at: c.at, heldBy: c.heldBy, witnessedBy: c.witnessedBy, ...(c.exchange ? { exchange: c.exchange } : {}),
  });
  const whose = (c: HeldCheckpoint) => (c.exchange
    ? `held by ${c.heldBy ?? 'this member'}, seen in a ${c.exchange}`
    : `held by ${c.heldBy ?? 'this member'}${c.witnessedBy ? `, witnessed by ${c.witnessedBy}` : ''}`);
  const what = (c: HeldCheckpoint) => (c.exchange ? 'witnessed head' : 'checkpoint');

  // A checkpoint at seq 0 vouches for the empty log: any hash but genesis contradicts.
  while (checkpoints[nextCheckpoint] && checkpoints[nextCheckpoint]!.seq < 1) {
    const c = checkpoints[nextCheckpoint++]!;
    if (c.hash !== GENESIS_HASH) {
      return report({ seq: 0, kind: 'checkpoint-contradiction', detail: `checkpoint for seq 0 (${whose(c)}) says ${short(c.hash)}, but an empty chain is the genesis hash`, expected: c.hash, actual: GENESIS_HASH, checkpoint: describe(c) });
    }
    agreeing++;
  }

  for (let afterSeq = 0; ;) {
    const rows = await pageAfter(sequelize, afterSeq, pageSize);
    if (rows.length === 0) break;
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== expectedSeq) {
        return report({
          seq: expectedSeq, kind: 'missing-entry',
          detail: `expected seq ${expectedSeq} after ${expectedSeq - 1}, found ${seq}: ${seq - expectedSeq} entr${seq - expectedSeq === 1 ? 'y is' : 'ies are'} missing`,
          expected: expectedSeq, actual: seq,
        });
      }
      const recomputed = recomputeHash(row);
      if (recomputed !== row.hash) {
        if (row.prevHash !== expectedPrev) {
          const original = await originalSeqOf(sequelize, row, window);
          if (original !== undefined) {
            return report({
              seq, kind: 'reordered',
              detail: `the entry stored at seq ${seq} is intact but was written as seq ${original}: entries were moved`,
              expected: seq, actual: original,
            });
          }
        }
        return report({
          seq, kind: 'hash-mismatch',
          detail: `stored hash ${short(row.hash)} differs from the hash recomputed over the entry's fields (${short(recomputed)}): a field of this entry was changed after it was written${row.prevHash !== expectedPrev ? ', and its prevHash does not link to the entry before' : ''}`,
          expected: recomputed, actual: row.hash,
        });
      }
      if (row.prevHash !== expectedPrev) {
        return report({
          seq, kind: 'broken-link',
          detail: `prevHash ${short(row.prevHash)} is not the hash of entry ${seq - 1} (${short(expectedPrev)}): entry ${seq - 1} was rewritten and re-hashed, or this one was`,
          expected: expectedPrev, actual: row.prevHash,
        });
      }
      while (checkpoints[nextCheckpoint] && checkpoints[nextCheckpoint]!.seq === seq) {
        const c = checkpoints[nextCheckpoint++]!;
        if (c.hash !== row.hash) {
          return report({
            seq, kind: 'checkpoint-contradiction',
            detail: `${what(c)} of ${c.at} (${whose(c)}) says entry ${seq} has hash ${short(c.hash)}, the chain has ${short(row.hash)}: the chain was rewritten and re-hashed, first at an entry after seq ${lastAgreeingSeq} (the last one vouched for and agreeing) and at or before seq ${seq}`,
            expected: c.hash, actual: row.hash, checkpoint: describe(c), lastAgreeingSeq,
          });
        }
        agreeing++;
        lastAgreeingSeq = seq;
      }
      entries++;
      expectedSeq = seq + 1;
      expectedPrev = row.hash;
      head = { seq, hash: row.hash };
      afterSeq = seq;
    }
  }
  const beyond = checkpoints[nextCheckpoint];
  if (beyond) {
    return report({
      seq: expectedSeq, kind: 'missing-entry',
      detail: `the chain ends at seq ${expectedSeq - 1}, but a ${what(beyond)} of ${beyond.at} (${whose(beyond)}) vouches for seq ${beyond.seq}: the log was truncated`,
      expected: beyond.seq, actual: expectedSeq - 1, checkpoint: describe(beyond), lastAgreeingSeq,
    });
  }
  return report();
}

/** The current head of a member's log (seq 0 and the genesis hash when it is empty). */
export async function readHead(sequelize: Sequelize, transaction?: Transaction): Promise<{ seq: number; hash: string }> {
  const [head] = await sequelize.query<{ seq: number; hash: string }>(
    `SELECT seq, hash FROM ${ACCESS_LOG_TABLE} ORDER BY seq DESC LIMIT 1`, { type: QueryTypes.SELECT, transaction },
  );
  return head ? { seq: Number(head.seq), hash: head.hash } : { seq: 0, hash: GENESIS_HASH };
}

/* ---------- checkpoints ---------- */

const hashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 hex hash');
const memberId = z.string().min(1).max(32);

/** What a member signs about its own head. */
export const checkpointClaimsSchema = z.object({
  kind: z.literal('checkpoint'),
  member: memberId,
  seq: z.number().int().min(0),
  hash: hashSchema,
  at: dateTime(),
}).strict();
export type CheckpointClaims = z.infer<typeof checkpointClaimsSchema>;

/** What a witness signs about a checkpoint it received. `kind` keeps the two statements apart. */
export const witnessClaimsSchema = z.object({
  kind: z.literal('witness'),
  member: memberId,
  seq: z.number().int().min(0),
  hash: hashSchema,
  at: dateTime(),
  witness: memberId,
  witnessedAt: dateTime(),
  /** SHA-256 of the member's checkpoint JWS, binding the countersignature to that exact statement. */
  checkpoint: hashSchema,
  /** The witness's own log head when it countersigned (docs/PROTOCOL.md §3.0): the member keeps it. */
  head: logHeadSchema.optional(),
}).strict();
export type WitnessClaims = z.infer<typeof witnessClaimsSchema>;

export class CheckpointRow extends Model<InferAttributes<CheckpointRow>, InferCreationAttributes<CheckpointRow>> {
  declare id: CreationOptional<number>;
  declare member: string;
  declare seq: number;
  declare hash: string;
  declare at: string;
  declare jws: string;
  declare witnessedBy: string | null;
  declare countersignature: string | null;
  declare createdAt: CreationOptional<Date>;
}

export const CHECKPOINT_TABLE = 'checkpoints';

/**
 * Checkpoints a member holds: its own (witnessedBy null), its own countersigned by a witness
 * (witnessedBy = the witness), and other members' it witnessed (witnessedBy = itself). Rows are
 * only ever added: a countersignature arrives as a new row, never as an update.
 */
export function defineCheckpoints(sequelize: Sequelize) {
  class Checkpoint extends CheckpointRow {}
  Checkpoint.init(
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      member: { type: DataTypes.STRING(32), allowNull: false },
      seq: { type: DataTypes.INTEGER, allowNull: false },
      hash: { type: DataTypes.STRING(64), allowNull: false },
      at: { type: DataTypes.STRING(30), allowNull: false },
      jws: { type: DataTypes.TEXT, allowNull: false },
      witnessedBy: { type: DataTypes.STRING(32), allowNull: true },
      countersignature: { type: DataTypes.TEXT, allowNull: true },
      createdAt: DataTypes.DATE,
    },
    { sequelize, tableName: CHECKPOINT_TABLE, updatedAt: false, indexes: [{ fields: ['member', 'seq'] }] },
  );
  return Checkpoint;
}
export type CheckpointModel = ReturnType<typeof defineCheckpoints>;

/** A held checkpoint as the API shows it (listed fields only). */
export interface CheckpointView {
  id: number;
  member: string;
  seq: number;
  hash: string;
  at: string;
  witnessedBy: string | null;
  jws: string;
  countersignature: string | null;
}

const toCheckpointView = (row: InferAttributes<CheckpointRow>): CheckpointView => ({
  id: Number(row.id), member: row.member, seq: Number(row.seq), hash: row.hash, at: row.at,
  witnessedBy: row.witnessedBy ?? null, jws: row.jws, countersignature: row.countersignature ?? null,
});

async function insertCheckpoint(Checkpoints: CheckpointModel, row: Omit<InferCreationAttributes<CheckpointRow>, 'id' | 'createdAt'>, transaction?: Transaction): Promise<CheckpointView> {
  const created = await Checkpoints.create(row, { transaction });
  return toCheckpointView(created.get({ plain: true }) as InferAttributes<CheckpointRow>);
}

/** Checkpoints held in this database, optionally only those about `member`, oldest first. */
export async function listCheckpoints(Checkpoints: CheckpointModel, member?: string, transaction?: Transaction): Promise<CheckpointView[]> {
  const rows = await Checkpoints.findAll({ where: member ? { member } : {}, order: [['seq', 'ASC'], ['id', 'ASC']], raw: true, transaction });
  return rows.map(toCheckpointView);
}

/**
 * Checkpoints about `member` held in a database, as verification uses them. With `keyFor`, each
 * checkpoint's signature is verified and the signed payload is used (not the table's columns,
 * which whoever holds the file could edit); one that fails is returned under `rejected`.
 */
export async function heldCheckpoints(
  Checkpoints: CheckpointModel, member: string, heldBy: string | null, keyFor?: (member: string) => KeyObject | undefined,
): Promise<{ checkpoints: HeldCheckpoint[]; rejected: { id: number; reason: string }[] }> {
  const checkpoints: HeldCheckpoint[] = [];
  const rejected: { id: number; reason: string }[] = [];
  for (const row of await listCheckpoints(Checkpoints, member)) {
    let claims: Pick<CheckpointClaims, 'member' | 'seq' | 'hash' | 'at'> = row;
    if (keyFor) {
      const key = keyFor(member);
      try {
        if (!key) throw new Error(`no key for ${member}`);
        claims = await readCheckpoint(row.jws, key);
      } catch (err) {
        rejected.push({ id: row.id, reason: (err as Error).message });
        continue;
      }
    }
    checkpoints.push({ member: claims.member, seq: claims.seq, hash: claims.hash, at: claims.at, heldBy, witnessedBy: row.witnessedBy });
  }
  return { checkpoints, rejected };
}

/** Verifies a checkpoint JWS with the member's key and returns its claims. */
export async function readCheckpoint(jws: string, key: KeyObject): Promise<CheckpointClaims> {
  const parsed = checkpointClaimsSchema.safeParse(await verifyPayload(jws, key, Typ.CHECKPOINT));
  if (!parsed.success) throw new Error(`checkpoint claims malformed: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/**
 * Signs this member's current head as a checkpoint and keeps it in its own table. The head is
 * read in the same transaction as the insert, so the signed seq and hash are an existing entry.
 */
export async function createCheckpoint(sequelize: Sequelize, Checkpoints: CheckpointModel, signer: Signer, now = new Date()): Promise<CheckpointView> {
  return sequelize.transaction(async (transaction) => {
    const head = await readHead(sequelize, transaction);
    const claims: CheckpointClaims = { kind: 'checkpoint', member: signer.id, seq: head.seq, hash: head.hash, at: now.toISOString() };
    const jws = await signPayload(claims, { key: signer.key, kid: signer.kid, typ: Typ.CHECKPOINT });
    return insertCheckpoint(Checkpoints, { member: signer.id, seq: head.seq, hash: head.hash, at: claims.at, jws, witnessedBy: null, countersignature: null }, transaction);
  });
}

export interface WitnessResult {
  checkpoint: CheckpointClaims;
  countersignature: string;
  /** True when this exact checkpoint had been witnessed before (an idempotent resend). */
  alreadyHeld: boolean;
}

/**
 * The witness's side (the gateway for municipalities' checkpoints; a municipality for the
 * gateway's): verifies a member's checkpoint with that member's key, refuses one that contradicts
 * a checkpoint already held for the same seq, keeps it, and countersigns it.
 *
 * Mount at the gateway, for example:
 *   router.post('/checkpoints', async (req, res) => {
 *     const from = memberOfClientCertificate(req);            // mTLS identity, never a header
 *     const { jws } = parseInput(z.object({ jws: z.string().max(10_000) }).strict(), req.body);
 *     const result = await witnessCheckpoint({ Checkpoints, witness: gatewaySigner, from, memberKey: keyOf(from), jws });
 *     res.status(result.alreadyHeld ? 200 : 201).json({ countersignature: result.countersignature });
 *   });
 */
export async function witnessCheckpoint(options: {
  Checkpoints: CheckpointModel;
  witness: Signer;
  /** The member the checkpoint comes from, as its TLS certificate says. */
  from: string;
  memberKey: KeyObject;
  jws: string;
  /** The witness's own log head, signed into the countersignature. */
  head?: LogHead;
  now?: Date;
}): Promise<WitnessResult> {
  const { Checkpoints, witness, from, jws } = options;
  let claims: CheckpointClaims;
  try {
    claims = await readCheckpoint(jws, options.memberKey);
  } catch (err) {
    throw new AppError(400, 'invalid-checkpoint', 'Checkpoint refused', { field: 'jws', rule: `must be a checkpoint signed by ${from}: ${(err as Error).message}` });
  }
  if (claims.member !== from) throw forbidden('A member may only submit checkpoints of its own log');
  const sequelize = Checkpoints.sequelize!;
  return sequelize.transaction(async (transaction) => {
    const held = (await listCheckpoints(Checkpoints, claims.member, transaction)).filter((c) => c.witnessedBy === witness.id);
    // The same signed checkpoint again is a resend. The same head signed at another time (a
    // periodic and an asked-for checkpoint racing) agrees with what is held: it is countersigned too,
    // since the member's copy must be about its own jws.
    const same = held.find((c) => c.jws === jws && c.countersignature);
    if (same) return { checkpoint: claims, countersignature: same.countersignature!, alreadyHeld: true };
    const contradicting = held.find((c) => c.seq === claims.seq && c.hash !== claims.hash);
    if (contradicting) {
      throw new AppError(409, 'checkpoint-contradiction', 'Checkpoint contradicts one already witnessed for the same seq', {
        field: 'jws', rule: `entry ${claims.seq} was witnessed with hash ${contradicting.hash} on ${contradicting.at}`,
      });
    }
    const witnessed: WitnessClaims = {
      kind: 'witness', member: claims.member, seq: claims.seq, hash: claims.hash, at: claims.at,
      witness: witness.id, witnessedAt: (options.now ?? new Date()).toISOString(), checkpoint: sha256Hex(jws),
      ...(options.head ? { head: options.head } : {}),
    };
    const countersignature = await signPayload(witnessed, { key: witness.key, kid: witness.kid, typ: Typ.CHECKPOINT });
    await insertCheckpoint(Checkpoints, { member: claims.member, seq: claims.seq, hash: claims.hash, at: claims.at, jws, witnessedBy: witness.id, countersignature }, transaction);
    return { checkpoint: claims, countersignature, alreadyHeld: false };
  });
}

/**
 * The member's side after a witness answered: verifies the countersignature with the witness's
 * key and that it is about our checkpoint `jws`, then keeps it next to our own copy. Returns it
 * with the witness's head the countersignature carried, for the caller to keep.
 */
export async function recordCountersignature(options: {
  Checkpoints: CheckpointModel; jws: string; countersignature: string; witnessId: string; witnessKey: KeyObject;
}): Promise<{ witnessed: CheckpointView; witnessHead?: LogHead }> {
  const parsed = witnessClaimsSchema.safeParse(await verifyPayload(options.countersignature, options.witnessKey, Typ.CHECKPOINT));
  if (!parsed.success) throw new AppError(502, 'invalid-countersignature', 'Witness answered with a malformed countersignature');
  const w = parsed.data;
  if (w.witness !== options.witnessId || w.checkpoint !== sha256Hex(options.jws)) {
    throw new AppError(502, 'invalid-countersignature', 'Countersignature is not the witness\'s statement about this checkpoint');
  }
  const witnessed = await insertCheckpoint(options.Checkpoints, { member: w.member, seq: w.seq, hash: w.hash, at: w.at, jws: options.jws, witnessedBy: w.witness, countersignature: options.countersignature });
  return { witnessed, ...(w.head ? { witnessHead: w.head } : {}) };
}

/* ---------- reconciliation ---------- */

/** One side's entry for one exchanged subject: matched across logs by request id and ref. */
export interface ReconcileEntry {
  seq: number;
  requestId: string;
  /** The subject's ref inside the request (bulk queries carry many), or null for single ones. */
  ref: string | null;
  at: string;
  action: string;
  /**
   * The entry is about a whole request, not one subject (a query refused before any subject was
   * looked at): it stands for every entry of that request id on the other side.
   */
  wholeRequest?: boolean;
  /** A short word on what the entry says (status or reason), so a one-sided entry can be judged. */
  note?: string | null;
}

export interface ReconcileReport {
  ok: boolean;
  local: string;
  remote: string;
  matched: number;
  /** In the local log only: the remote side has no record of it. */
  onlyLocal: ReconcileEntry[];
  /** In the remote log only: e.g. the gateway says it forwarded a query that we never logged. */
  onlyRemote: ReconcileEntry[];
}

const reconcileKey = (e: ReconcileEntry) => `${e.requestId}\u0000${e.wholeRequest ? '*' : ''}${e.ref ?? ''}`;

/** Entries of `left` that a whole-request entry of `other` stands for, and the whole-request entries so used. */
function coveredByWholeRequests(left: ReconcileEntry[], other: ReconcileEntry[]) {
  const whole = new Map(other.filter((w) => w.wholeRequest).map((w) => [w.requestId, w]));
  const used = new Set<ReconcileEntry>();
  const rest = left.filter((e) => {
    const w = e.wholeRequest ? undefined : whole.get(e.requestId);
    if (!w) return true;
    used.add(w);
    return false;
  });
  return { rest, used };
}

/**
 * Matches two members' entries about the same exchanges (e.g. the gateway's "forwarded to A"
 * entries against A's "answered" entries) by request id and ref, as multisets: every entry on one
 * side needs its own counterpart on the other, and anything one-sided is reported. An entry about
 * a whole request stands for every entry of that request on the other side.
 */
export function reconcileEntries(local: ReconcileEntry[], remote: ReconcileEntry[], names: { local: string; remote: string }): ReconcileReport {
  const pending = new Map<string, ReconcileEntry[]>();
  for (const e of remote) {
    const list = pending.get(reconcileKey(e)) ?? [];
    list.push(e);
    pending.set(reconcileKey(e), list);
  }
  const leftLocal: ReconcileEntry[] = [];
  let matched = 0;
  for (const e of local) {
    const list = pending.get(reconcileKey(e));
    if (list && list.length > 0) {
      list.shift();
      matched++;
    } else leftLocal.push(e);
  }
  const leftRemote = [...pending.values()].flat();
  const a = coveredByWholeRequests(leftLocal, remote);
  const b = coveredByWholeRequests(leftRemote, local);
  matched += leftLocal.length - a.rest.length + leftRemote.length - b.rest.length;
  const onlyLocal = a.rest.filter((e) => !b.used.has(e)).sort((x, y) => x.seq - y.seq);
  const onlyRemote = b.rest.filter((e) => !a.used.has(e)).sort((x, y) => x.seq - y.seq);
  return { ok: onlyLocal.length === 0 && onlyRemote.length === 0, local: names.local, remote: names.remote, matched, onlyLocal, onlyRemote };
}

/** What a reconciliation selector sees of an entry. */
export interface ReconcileCandidate {
  action: string;
  actingMunicipality: string | null;
  subject: string | null;
  outcome: string;
  reason: string | null;
  details: Record<string, unknown>;
}

/** Which entries of a log take part in a reconciliation. */
export interface ReconcileSelector {
  actions: string[];
  /** Further test on the entry (e.g. details.source is this municipality). */
  where?: (entry: ReconcileCandidate) => boolean;
  /** Whether the entry is about a whole request rather than one subject. */
  wholeRequest?: (entry: ReconcileCandidate) => boolean;
  /** The note a one-sided entry carries. */
  note?: (entry: ReconcileCandidate) => string | null;
  from?: string;
  to?: string;
}

export function parseDetails(text: unknown): Record<string, unknown> {
  try {
    const value = JSON.parse(String(text));
    return value && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : {};
  } catch {
    return {};
  }
}

/**
 * Reads the entries a selector picks from a member's log, page by page, as reconciliation items.
 * The ref comes from `details.ref` (one entry per subject of a bulk query).
 */
export async function selectReconcileEntries(sequelize: Sequelize, selector: ReconcileSelector, pageSize = 1000): Promise<ReconcileEntry[]> {
  const out: ReconcileEntry[] = [];
  const actions = selector.actions.length ? selector.actions : ['\u0000'];
  for (let afterSeq = 0; ;) {
    // Bound parameters only: $1 afterSeq, $2 limit, then the actions, then from and to when given.
    const bind: unknown[] = [afterSeq, pageSize];
    const param = (v: unknown) => `$${bind.push(v)}`;
    const inActions = actions.map(param).join(', ');
    const from = selector.from ? ` AND at >= ${param(selector.from)}` : '';
    const to = selector.to ? ` AND at <= ${param(selector.to)}` : '';
    const rows = await sequelize.query<{ seq: number; at: string; requestId: string; action: string; actingMunicipality: string | null; subject: string | null; outcome: string; reason: string | null; details: string }>(
      `SELECT seq, at, "requestId", action, "actingMunicipality", subject, outcome, reason, details FROM ${ACCESS_LOG_TABLE}
       WHERE seq > $1 AND action IN (${inActions})${from}${to}
       ORDER BY seq ASC LIMIT $2`,
      { type: QueryTypes.SELECT, bind },
    );
    if (rows.length === 0) break;
    for (const row of rows) {
      afterSeq = Number(row.seq);
      const candidate: ReconcileCandidate = {
        action: row.action, actingMunicipality: row.actingMunicipality, subject: row.subject, outcome: row.outcome, reason: row.reason ?? null, details: parseDetails(row.details),
      };
      if (selector.where && !selector.where(candidate)) continue;
      out.push({
        seq: Number(row.seq), requestId: row.requestId, ref: typeof candidate.details.ref === 'string' ? candidate.details.ref : null, at: row.at, action: row.action,
        ...(selector.wholeRequest?.(candidate) ? { wholeRequest: true } : {}),
        note: selector.note ? selector.note(candidate) : (row.reason ?? null),
      });
    }
  }
  return out;
}
