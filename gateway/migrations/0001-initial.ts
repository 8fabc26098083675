import { DataTypes } from 'sequelize';
import type { Migration } from '../../shared/platform/migrate.ts';
import { createAlertTable, createAuditTables, createStaffTable } from '../../shared/migrations/0001-common-tables.ts';

/** The gateway's tables as of its first release. */
export const initial: Migration = {
  name: '0001-initial',
  async up(s) {
    await createAuditTables(s);
    await createStaffTable(s);
    await s.createTable('correspondence', {
      id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
      linkId: { type: DataTypes.STRING(43), allowNull: false },
      municipality: { type: DataTypes.STRING(6), allowNull: false },
      code: { type: DataTypes.STRING(26), allowNull: false },
      attestation: { type: DataTypes.TEXT, allowNull: false },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('correspondence', ['municipality','code'], { name: 'correspondence_municipality_code', unique: true });
    await s.addIndex('correspondence', ['linkId','municipality'], { name: 'correspondence_link_id_municipality', unique: true });
    await s.createTable('replay_cache', {
      issuer: { type: DataTypes.STRING(64), allowNull: false, primaryKey: true },
      jti: { type: DataTypes.STRING(128), allowNull: false, primaryKey: true },
      exp: { type: DataTypes.INTEGER, allowNull: false },
    });
    await s.addIndex('replay_cache', ['exp'], { name: 'replay_cache_exp' });
    await s.createTable('correction_relay', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      issuer: { type: DataTypes.STRING(6), allowNull: false },
      recipient: { type: DataTypes.STRING(6), allowNull: false },
      noticeJti: { type: DataTypes.STRING(128), allowNull: false },
      requestId: { type: DataTypes.STRING(128), allowNull: false },
      sourceCode: { type: DataTypes.STRING(26), allowNull: false },
      sourceRecordId: { type: DataTypes.STRING(64), allowNull: false },
      sourceVersion: { type: DataTypes.INTEGER, allowNull: false },
      change: { type: DataTypes.STRING(16), allowNull: false },
      purpose: { type: DataTypes.STRING(64), allowNull: false },
      notice: { type: DataTypes.TEXT, allowNull: true },
      expiresAt: { type: DataTypes.INTEGER, allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
      attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
      lastError: { type: DataTypes.STRING(200), allowNull: true },
      deliveredAt: { type: DataTypes.STRING(30), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('correction_relay', ['issuer','recipient','sourceRecordId','sourceVersion','purpose'], { name: 'correction_relay_once', unique: true });
    await s.addIndex('correction_relay', ['status','nextAttemptAt'], { name: 'correction_relay_status_next_attempt_at' });
    await createAlertTable(s);
  },
};
