import { DataTypes } from 'sequelize';
import type { Migration } from '../../../shared/platform/migrate.ts';
import { protectAppendOnly } from '../../../shared/access-log/chain.ts';

/**
 * Consent revocations leave the municipality that revoked and reach the sources (docs/DESIGN.md §4.4,
 * docs/PROTOCOL.md §3.9): `consent_revocation_outbox` at the requester (one signed revocation per
 * revoked consent, sent to the gateway with backoff); `received_consent_revocations` at a source,
 * one row per (requester, consent id) it holds a requester's signed revocation of, append-only.
 */
export const consentRevocations: Migration = {
  name: '0008-consent-revocations',
  async up(s) {
    await s.createTable('consent_revocation_outbox', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      consentId: { type: DataTypes.STRING(36), allowNull: false },
      sources: { type: DataTypes.TEXT, allowNull: false },
      revokedAt: { type: DataTypes.STRING(30), allowNull: false },
      consentExpiresAt: { type: DataTypes.STRING(30), allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
      attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
      lastError: { type: DataTypes.STRING(200), allowNull: true },
      sentAt: { type: DataTypes.STRING(30), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('consent_revocation_outbox', ['consentId'], { name: 'consent_revocation_outbox_once', unique: true });
    await s.addIndex('consent_revocation_outbox', ['status', 'nextAttemptAt'], { name: 'consent_revocation_outbox_status_next_attempt_at' });
    await s.createTable('received_consent_revocations', {
      id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
      requester: { type: DataTypes.STRING(6), allowNull: false },
      consentId: { type: DataTypes.STRING(64), allowNull: false },
      revokedAt: { type: DataTypes.STRING(30), allowNull: false },
      messageJti: { type: DataTypes.STRING(128), allowNull: false },
      messageHash: { type: DataTypes.STRING(64), allowNull: false },
      receivedAt: { type: DataTypes.STRING(30), allowNull: false },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('received_consent_revocations', ['requester', 'consentId'], { name: 'received_consent_revocations_once', unique: true });
    await protectAppendOnly(s.sequelize, 'received_consent_revocations', s.transaction);
  },
};
