import { DataTypes } from 'sequelize';
import type { SchemaChange } from '../platform/migrate.ts';
import { protectAppendOnly } from '../access-log/chain.ts';
import { REVOCATION_LIST_TABLE } from '../federation/revocation.ts';

// Every member kind's second migration. Frozen like 0001: change it with a new migration.

/**
 * The CA-signed revocation lists a member accepted (shared/federation/revocation.ts), one row per
 * list, append-only: the highest number is the one held, so a restart cannot be rolled back to an
 * older list (docs/PROTOCOL.md §1).
 */
export async function createRevocationListTable(s: SchemaChange): Promise<void> {
  await s.createTable(REVOCATION_LIST_TABLE, {
    list_number: { type: DataTypes.BIGINT, allowNull: false, primaryKey: true },
    issued_at: { type: DataTypes.STRING(30), allowNull: false },
    next_update: { type: DataTypes.STRING(30), allowNull: false },
    accepted_at: { type: DataTypes.STRING(30), allowNull: false },
    jws: { type: DataTypes.TEXT, allowNull: false },
  });
  await protectAppendOnly(s.sequelize, REVOCATION_LIST_TABLE, s.transaction);
}
