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
import { readHead, type HeldCheckpoint } from './verify.ts';
import { sha256Hex } from '../crypto.ts';
import type { LogHead } from '../federation/protocol.ts';

export const WITNESSED_HEADS_TABLE = 'witnessed_heads';

/** The exchanges a head arrives in (what the holder saw it in). */
export const HEAD_EXCHANGES = ['query', 'forward', 'answer', 'correction', 'registration', 'countersignature'] as const;
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
 * of that exchange). A head already held is not stored twice.
 */
export async function keepHeads(WitnessedHeads: WitnessedHeadModel, transaction: Transaction | undefined, seen: SeenHead[], now = new Date()): Promise<void> {
  if (seen.length === 0) return;
  const seenAt = now.toISOString();
  await WitnessedHeads.bulkCreate(seen.map((s) => ({
    member: s.member, seq: s.head.seq, hash: s.head.hash, seenAt, exchange: s.exchange,
    requestId: s.requestId ?? null, messageHash: s.message ? sha256Hex(s.message) : null,
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
