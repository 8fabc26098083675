import { DataTypes } from 'sequelize';
import type { Migration } from '../../shared/platform/migrate.ts';
import { protectAppendOnly } from '../../shared/access-log/chain.ts';

/**
 * Consent revocations (docs/DESIGN.md §4.4, docs/PROTOCOL.md §3.9): `revoked_consents`, one row per
 * (requester, consent id) the gateway holds a requester's signed revocation of, append-only like the
 * log (a revocation is never undone); `revocation_relay`, the revocation on its way to each source.
 */
export const consentRevocations: Migration = {
  name: '0005-consent-revocations',
  async up(s) {
    await s.createTable('revoked_consents', {
      id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
      requester: { type: DataTypes.STRING(6), allowNull: false },
      consentId: { type: DataTypes.STRING(64), allowNull: false },
      sources: { type: DataTypes.TEXT, allowNull: false },
      revokedAt: { type: DataTypes.STRING(30), allowNull: false },
      messageJti: { type: DataTypes.STRING(128), allowNull: false },
      messageHash: { type: DataTypes.STRING(64), allowNull: false },
      receivedAt: { type: DataTypes.STRING(30), allowNull: false },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('revoked_consents', ['requester', 'consentId'], { name: 'revoked_consents_once', unique: true });
    await protectAppendOnly(s.sequelize, 'revoked_consents', s.transaction);
    await s.createTable('revocation_relay', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      requester: { type: DataTypes.STRING(6), allowNull: false },
      consentId: { type: DataTypes.STRING(64), allowNull: false },
      recipient: { type: DataTypes.STRING(6), allowNull: false },
      messageJti: { type: DataTypes.STRING(128), allowNull: false },
      message: { type: DataTypes.TEXT, allowNull: true },
      expiresAt: { type: DataTypes.INTEGER, allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
      attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
      lastError: { type: DataTypes.STRING(200), allowNull: true },
      deliveredAt: { type: DataTypes.STRING(30), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('revocation_relay', ['requester', 'consentId', 'recipient'], { name: 'revocation_relay_once', unique: true });
    await s.addIndex('revocation_relay', ['status', 'nextAttemptAt'], { name: 'revocation_relay_status_next_attempt_at' });
  },
};
