import { DataTypes } from 'sequelize';
import type { SchemaChange } from '../platform/migrate.ts';
import { ACCESS_LOG_TABLE, protectAppendOnly } from '../access-log/chain.ts';
import { CHECKPOINT_TABLE } from '../access-log/verify.ts';
import { ALERT_TABLE } from '../access-log/alerts.ts';

// The tables every member kind has, as of each kind's first migration. Frozen: change them by
// adding a migration to each kind, not by editing these.

/** Staff accounts (municipality clerks and officers; the gateway's privacy officers). */
export async function createStaffTable(s: SchemaChange): Promise<void> {
  await s.createTable('staff', {
    id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
    username: { type: DataTypes.STRING(64), allowNull: false, unique: true },
    displayName: { type: DataTypes.STRING(100), allowNull: false },
    role: { type: DataTypes.STRING(32), allowNull: false },
    passwordHash: { type: DataTypes.STRING(200), allowNull: false },
    active: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
    createdAt: { type: DataTypes.DATE, allowNull: true },
    updatedAt: { type: DataTypes.DATE, allowNull: true },
  });
}

/** The hash-chained access log and the signed checkpoints over it, both refusing UPDATE and DELETE. */
export async function createAuditTables(s: SchemaChange): Promise<void> {
  await s.createTable('access_log', {
    seq: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true },
    at: { type: DataTypes.STRING(30), allowNull: false },
    requestId: { type: DataTypes.STRING(128), allowNull: false },
    actorType: { type: DataTypes.STRING(16), allowNull: false },
    actorId: { type: DataTypes.STRING(64), allowNull: false },
    actorRole: { type: DataTypes.STRING(64), allowNull: true },
    actingMunicipality: { type: DataTypes.STRING(32), allowNull: true },
    subject: { type: DataTypes.STRING(64), allowNull: true },
    action: { type: DataTypes.STRING(64), allowNull: false },
    purpose: { type: DataTypes.STRING(64), allowNull: true },
    legalBasis: { type: DataTypes.STRING(64), allowNull: true },
    consentId: { type: DataTypes.STRING(64), allowNull: true },
    outcome: { type: DataTypes.STRING(16), allowNull: false },
    reason: { type: DataTypes.STRING(200), allowNull: true },
    recordIds: { type: DataTypes.TEXT, allowNull: false },
    requestHash: { type: DataTypes.STRING(64), allowNull: true },
    flags: { type: DataTypes.TEXT, allowNull: false },
    details: { type: DataTypes.TEXT, allowNull: false },
    prevHash: { type: DataTypes.STRING(64), allowNull: false, unique: true },
    hash: { type: DataTypes.STRING(64), allowNull: false, unique: true },
    createdAt: { type: DataTypes.DATE, allowNull: true },
  });
  await s.addIndex('access_log', ['subject'], { name: 'access_log_subject' });
  await s.addIndex('access_log', ['requestId'], { name: 'access_log_request_id' });
  await s.addIndex('access_log', ['actorId'], { name: 'access_log_actor_id' });
  await s.addIndex('access_log', ['at'], { name: 'access_log_at' });
  await s.createTable('checkpoints', {
    id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
    member: { type: DataTypes.STRING(32), allowNull: false },
    seq: { type: DataTypes.INTEGER, allowNull: false },
    hash: { type: DataTypes.STRING(64), allowNull: false },
    at: { type: DataTypes.STRING(30), allowNull: false },
    jws: { type: DataTypes.TEXT, allowNull: false },
    witnessedBy: { type: DataTypes.STRING(32), allowNull: true },
    countersignature: { type: DataTypes.TEXT, allowNull: true },
    createdAt: { type: DataTypes.DATE, allowNull: true },
  });
  await s.addIndex('checkpoints', ['member','seq'], { name: 'checkpoints_member_seq' });
  await protectAppendOnly(s.sequelize, ACCESS_LOG_TABLE, s.transaction);
  await protectAppendOnly(s.sequelize, CHECKPOINT_TABLE, s.transaction);
}

/** Anomaly alerts, append-only. */
export async function createAlertTable(s: SchemaChange): Promise<void> {
  await s.createTable('alerts', {
    id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
    kind: { type: DataTypes.STRING(40), allowNull: false },
    key: { type: DataTypes.STRING(120), allowNull: false },
    subject: { type: DataTypes.STRING(64), allowNull: true },
    count: { type: DataTypes.INTEGER, allowNull: false },
    threshold: { type: DataTypes.FLOAT, allowNull: false },
    windowFrom: { type: DataTypes.STRING(30), allowNull: false },
    windowTo: { type: DataTypes.STRING(30), allowNull: false },
    details: { type: DataTypes.TEXT, allowNull: false },
    evidence: { type: DataTypes.TEXT, allowNull: false },
    raisedAt: { type: DataTypes.STRING(30), allowNull: false },
    createdAt: { type: DataTypes.DATE, allowNull: true },
  });
  await s.addIndex('alerts', ['kind','key','raisedAt'], { name: 'alerts_kind_key_raised_at' });
  await s.addIndex('alerts', ['raisedAt'], { name: 'alerts_raised_at' });
  await protectAppendOnly(s.sequelize, ALERT_TABLE, s.transaction);
}
