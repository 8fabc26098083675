import { DataTypes } from 'sequelize';
import type { SchemaChange } from '../platform/migrate.ts';
import { protectAppendOnly } from '../access-log/chain.ts';

// Frozen with the migrations that call it (each member kind's 0004-witnessed-heads).

/**
 * The heads of other members' access logs this member saw in signed messages (DESIGN.md §5, "no
 * gap at the tail"), append-only like the log: a holder's copy is evidence, never edited.
 */
export async function createWitnessedHeadsTable(s: SchemaChange): Promise<void> {
  await s.createTable('witnessed_heads', {
    id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
    member: { type: DataTypes.STRING(32), allowNull: false },
    seq: { type: DataTypes.INTEGER, allowNull: false },
    hash: { type: DataTypes.STRING(64), allowNull: false },
    seenAt: { type: DataTypes.STRING(30), allowNull: false },
    exchange: { type: DataTypes.STRING(32), allowNull: false },
    requestId: { type: DataTypes.STRING(128), allowNull: true },
    messageHash: { type: DataTypes.STRING(64), allowNull: true },
    createdAt: { type: DataTypes.DATE, allowNull: true },
  });
  await s.addIndex('witnessed_heads', ['member', 'seq', 'hash'], { name: 'witnessed_heads_member_seq_hash', unique: true });
  await protectAppendOnly(s.sequelize, 'witnessed_heads', s.transaction);
}
