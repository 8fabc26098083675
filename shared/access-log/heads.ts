/**
 * Witnessed heads (DESIGN.md §5, "no gap at the tail"; docs/PROTOCOL.md §3.0). Every signed
 * message between members carries the sender's access-log head (`head: { seq, hash }`) at the
 * time it signed; every receiver keeps what it saw here, with the exchange it came in. A member
 * that later rewrites or cuts its log contradicts the heads others hold, even for entries no
 * periodic checkpoint has covered yet, and verification names the first contradicted entry.
 *
 * A holder's table is append-only like the log itself. A holder that invents a head only raises
 * a false alarm that names the holder (`heldBy`); it cannot hide a rewrite.
 */
import { DataTypes, Model, Op, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';
import { z } from 'zod';
import { readHead, type HeldCheckpoint } from './verify.ts';
import { sha256Hex } from '../crypto.ts';
import { mapWithLimit } from '../platform/concurrency.ts';
import { AppError, forbidden } from '../platform/errors.ts';
import { parseInput } from '../platform/validation.ts';
import { currentRequestId } from '../platform/context.ts';
import type { MemberClient } from '../federation/member-http.ts';
import type { Directory } from '../federation/directory.ts';
import { GATEWAY_ID, type LogHead } from '../federation/protocol.ts';

export const WITNESSED_HEADS_TABLE = 'witnessed_heads';

/** The exchanges a head arrives in (what the holder saw it in). */
export const HEAD_EXCHANGES = ['query', 'forward', 'answer', 'correction', 'revocation', 'registration', 'countersignature', 'trail'] as const;
export type HeadExchange = (typeof HEAD_EXCHANGES)[number];

export class WitnessedHeadRow extends Model<InferAttributes<WitnessedHeadRow>, InferCreationAttributes<WitnessedHeadRow>> {
  declare id: CreationOptional<number>;
  /** Whose log the head is of (the message's signer). */
  declare member: string;
  declare seq: number;
  declare hash: string;
  /** When this holder received it. */
  declare seenAt: string;
  declare exchange: string;
  /** The request id of the exchange, to find it in the holder's own log. */
  declare requestId: string | null;
  /** SHA-256 of the signed message that carried the head: the sender's own copy settles a dispute. */
  declare messageHash: string | null;
  declare createdAt: CreationOptional<Date>;
}

/** Defines the witnessed heads on one member's database. */
export function defineWitnessedHeads(sequelize: Sequelize) {
  class WitnessedHead extends WitnessedHeadRow {}
  WitnessedHead.init({
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    member: { type: DataTypes.STRING(32), allowNull: false },
    seq: { type: DataTypes.INTEGER, allowNull: false },
    hash: { type: DataTypes.STRING(64), allowNull: false },
    seenAt: { type: DataTypes.STRING(30), allowNull: false },
    exchange: { type: DataTypes.STRING(32), allowNull: false },
    requestId: { type: DataTypes.STRING(128), allowNull: true },
    messageHash: { type: DataTypes.STRING(64), allowNull: true },
    createdAt: DataTypes.DATE,
  }, {
    sequelize, tableName: WITNESSED_HEADS_TABLE, updatedAt: false,
    // One row per distinct head of a member: a head seen again adds nothing; two hashes for one seq both stay.
    indexes: [{ unique: true, fields: ['member', 'seq', 'hash'] }],
  });
  return WitnessedHead;
}
export type WitnessedHeadModel = ReturnType<typeof defineWitnessedHeads>;

/** A head as a message carried it, with where it was seen. */
export interface SeenHead {
  member: string;
  head: LogHead;
  exchange: HeadExchange;
  requestId?: string | null;
  /** The signed message (compact JWS) that carried it; only its hash is kept. */
  message?: string;
}

/**
 * This member's current head, to sign into the next message: the last committed entry, read by
 * its primary key (one index lookup, whatever the log's length). Read outside any transaction, so
 * it never names an entry that a transaction still in flight could roll back.
 */
export const currentHead = (sequelize: Sequelize): Promise<LogHead> => readHead(sequelize);

/**
 * Keeps the heads seen in one exchange, in the caller's transaction (with the access-log entries
 * of that exchange), under the exchange's request id (the one being served, unless given). A
 * head already held is not stored twice.
 */
export async function keepHeads(WitnessedHeads: WitnessedHeadModel, transaction: Transaction | undefined, seen: SeenHead[], now = new Date()): Promise<void> {
  if (seen.length === 0) return;
  const seenAt = now.toISOString();
  await WitnessedHeads.bulkCreate(seen.map((s) => ({
    member: s.member, seq: s.head.seq, hash: s.head.hash, seenAt, exchange: s.exchange,
    requestId: s.requestId ?? currentRequestId() ?? null, messageHash: s.message ? sha256Hex(s.message) : null,
  })), { transaction, ignoreDuplicates: true });
}

/** A witnessed head as the API shows it (listed fields only). */
export interface WitnessedHeadView {
  member: string;
  seq: number;
  hash: string;
  seenAt: string;
  exchange: string;
  requestId: string | null;
}

/** Heads of `member`'s log held here, oldest seq first, one page after row id `after`. */
export async function headsAbout(WitnessedHeads: WitnessedHeadModel, member: string, after = 0, limit = 1000): Promise<{ heads: WitnessedHeadView[]; nextAfter: number | null }> {
  const rows = await WitnessedHeads.findAll({
    where: { member, id: { [Op.gt]: after } }, order: [['id', 'ASC']], limit, raw: true,
  });
  return {
    heads: rows.map((r) => ({ member: r.member, seq: Number(r.seq), hash: r.hash, seenAt: r.seenAt, exchange: r.exchange, requestId: r.requestId ?? null })),
    nextAfter: rows.length === limit ? Number(rows[rows.length - 1]!.id) : null,
  };
}

/** Every head of `member` held here, as verification compares a chain with them. */
export async function heldHeads(WitnessedHeads: WitnessedHeadModel, member: string, heldBy: string): Promise<HeldCheckpoint[]> {
  const out: HeldCheckpoint[] = [];
  for (let after = 0; ;) {
    const page = await headsAbout(WitnessedHeads, member, after);
    out.push(...page.heads.map((h) => asHeld(h, heldBy)));
    if (page.nextAfter === null) return out;
    after = page.nextAfter;
  }
}

/** A witnessed head in the shape verification uses, naming who holds it and how it was seen. */
export const asHeld = (h: Pick<WitnessedHeadView, 'member' | 'seq' | 'hash' | 'seenAt' | 'exchange'>, heldBy: string): HeldCheckpoint => ({
  member: h.member, seq: h.seq, hash: h.hash, at: h.seenAt, heldBy, witnessedBy: heldBy, exchange: h.exchange,
});

/* ---------- fetching what others hold (docs/PROTOCOL.md §2: GET /witnessed-heads) ---------- */

/** Where the gateway and the issuer answer members about the heads of their own logs they hold. */
export const HEADS_PATH = '/witnessed-heads';
/** Where a municipality's federation port answers the same. */
export const MEMBER_HEADS_PATH = '/federation/witnessed-heads';

/** Query of a witnessed-heads route: a member asks only about its own log. */
export const headsQuerySchema = z.object({
  member: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be a member id'),
  after: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be at least 0').default(0),
}).strict();

/**
 * The heads of the asking member's own log held here, one page (a member reads only heads of its
 * own log: which others it exchanged with, and when, is not its business).
 */
export async function headsForAsker(WitnessedHeads: WitnessedHeadModel, asker: string, query: unknown): Promise<{ heads: WitnessedHeadView[]; nextAfter: number | null }> {
  const q = parseInput(headsQuerySchema, query, 'query');
  if (q.member !== asker) throw forbidden('A member may read only the heads of its own log');
  const page = await headsAbout(WitnessedHeads, asker, q.after);
  // The request id ties a head to the holder's log; the asker has its own.
  return { heads: page.heads.map((h) => ({ ...h, requestId: null })), nextAfter: page.nextAfter };
}

/** One member that may hold heads of our log, and where to ask it. */
export interface HeadHolder {
  id: string;
  url: string;
}

/** What one holder answered: how many heads, or why it could not be asked. */
export interface HeadSource {
  holder: string;
  heads: number;
  unavailable?: string;
}

const headViewSchema = z.object({
  member: z.string(), seq: z.number().int().min(0), hash: z.string().regex(/^[0-9a-f]{64}$/), seenAt: z.string(), exchange: z.string(),
}).passthrough();
const headsPageSchema = z.object({ heads: z.array(headViewSchema), nextAfter: z.number().int().nullable() });

/**
 * Fetches, over this member's mTLS client, every head of `member`'s log that each holder keeps
 * (each holder pinned by its certificate), a few holders at a time. A holder that cannot be asked
 * is reported, never fatal: verification then runs against what the others hold.
 */
export async function fetchHeldHeads(client: MemberClient, member: string, holders: HeadHolder[], options: { timeoutMs: number; concurrency?: number }): Promise<{ held: HeldCheckpoint[]; sources: HeadSource[] }> {
  const sources = await mapWithLimit(holders, options.concurrency ?? 8, async (holder): Promise<{ source: HeadSource; held: HeldCheckpoint[] }> => {
    const held: HeldCheckpoint[] = [];
    try {
      for (let after = 0; ;) {
        const res = await client.getJson(`${holder.url}?member=${encodeURIComponent(member)}&after=${after}`, { timeoutMs: options.timeoutMs, expectPeer: holder.id });
        const page = headsPageSchema.safeParse(res.body);
        if (res.status !== 200 || !page.success) throw new Error(`answered ${res.status}`);
        held.push(...page.data.heads.filter((h) => h.member === member).map((h) => asHeld(h, holder.id)));
        if (page.data.nextAfter === null || page.data.nextAfter <= after) break;
        after = page.data.nextAfter;
      }
      return { source: { holder: holder.id, heads: held.length }, held };
    } catch (err) {
      const reason = err instanceof AppError ? String(err.extra.reason ?? err.code) : (err as Error).message;
      return { source: { holder: holder.id, heads: 0, unavailable: reason.slice(0, 100) }, held: [] };
    }
  });
  return { held: sources.flatMap((s) => s.held), sources: sources.map((s) => s.source) };
}

/**
 * Who may hold heads of `self`'s log: the gateway (it sees every query, answer, notice and
 * registration; asked at `gatewayUrl` unless `self` is the gateway), and every other member of
 * the verified directory with an endpoint (municipalities on their federation port, the issuer).
 */
export async function federationHeadHolders(directory: Pick<Directory, 'entries'>, self: string, gatewayUrl?: string): Promise<HeadHolder[]> {
  const holders: HeadHolder[] = self !== GATEWAY_ID && gatewayUrl ? [{ id: GATEWAY_ID, url: `${gatewayUrl.replace(/\/+$/, '')}${HEADS_PATH}` }] : [];
  for (const e of await directory.entries()) {
    if (e.id === self || e.kind === 'gateway' || !e.endpoint) continue;
    holders.push({ id: e.id, url: `${e.endpoint.replace(/\/+$/, '')}${e.kind === 'municipality' ? MEMBER_HEADS_PATH : HEADS_PATH}` });
  }
  return holders;
}
