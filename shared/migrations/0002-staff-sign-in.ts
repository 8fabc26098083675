import { DataTypes } from 'sequelize';
import type { SchemaChange } from '../platform/migrate.ts';

// Staff sign-in and sessions (SECURITY.md §2), for every member kind with staff. Frozen like 0001.

/**
 * `staff.sessionVersion` (a password change moves it on, ending older sessions), the revocation
 * list of token ids ended at logout, and the sign-in throttle (per account name and per address).
 */
export async function staffSignIn(s: SchemaChange): Promise<void> {
  const staff = await s.queryInterface.describeTable('staff', { transaction: s.transaction } as never);
  // A database made by sync() before migrations may have the column already: adopt it.
  if (!('sessionVersion' in staff)) {
    await s.queryInterface.addColumn('staff', 'sessionVersion', { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 }, { transaction: s.transaction });
  }
  await s.createTable('revoked_sessions', {
    jti: { type: DataTypes.STRING(64), allowNull: false, primaryKey: true },
    staffId: { type: DataTypes.STRING(36), allowNull: false },
    reason: { type: DataTypes.STRING(32), allowNull: false },
    expiresAt: { type: DataTypes.STRING(30), allowNull: false },
    revokedAt: { type: DataTypes.STRING(30), allowNull: false },
    createdAt: { type: DataTypes.DATE, allowNull: true },
  });
  await s.addIndex('revoked_sessions', ['expiresAt'], { name: 'revoked_sessions_expires_at' });
  await s.createTable('sign_in_throttle', {
    key: { type: DataTypes.STRING(80), allowNull: false, primaryKey: true },
    failures: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    windowStart: { type: DataTypes.STRING(30), allowNull: true },
    lockCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    lockedUntil: { type: DataTypes.STRING(30), allowNull: true },
    adminLock: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    createdAt: { type: DataTypes.DATE, allowNull: true },
    updatedAt: { type: DataTypes.DATE, allowNull: true },
  });
}
