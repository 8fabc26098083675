import { DataTypes } from 'sequelize';
import type { Migration } from '../../../shared/platform/migrate.ts';

/**
 * The resident's own page (docs/DESIGN.md §4.14):
 * - `resident_credentials`: the credentials a clerk enrolled at the counter for a resident (today
 *   the resident's personal certificate from the federation CA); a withdrawn one keeps its row.
 * - `resident_sign_in_challenges`: one-time challenges a resident signs to sign in.
 * - `resident_sessions`: each session's token id, its credential, the resident's signed challenge
 *   (the proof B forwards, sealed, when it gathers the resident's trail; PROTOCOL §3.10) and when
 *   it ended; a row is dropped once its token expired anyway.
 */
export const residentPage: Migration = {
  name: '0007-resident-page',
  async up(s) {
    await s.createTable('resident_credentials', {
      id: { type: DataTypes.STRING(36), primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false },
      kind: { type: DataTypes.STRING(16), allowNull: false },
      certificateSerial: { type: DataTypes.STRING(64), allowNull: false },
      certificate: { type: DataTypes.TEXT, allowNull: false },
      enrolledAt: { type: DataTypes.STRING(30), allowNull: false },
      enrolledBy: { type: DataTypes.STRING(36), allowNull: false },
      revokedAt: { type: DataTypes.STRING(30), allowNull: true },
      revokedBy: { type: DataTypes.STRING(36), allowNull: true },
    });
    await s.addIndex('resident_credentials', ['residentId'], { name: 'resident_credentials_resident' });
    await s.addIndex('resident_credentials', ['certificateSerial'], { name: 'resident_credentials_serial' });
    await s.createTable('resident_sign_in_challenges', {
      challenge: { type: DataTypes.STRING(64), primaryKey: true },
      expiresAt: { type: DataTypes.STRING(30), allowNull: false },
      usedAt: { type: DataTypes.STRING(30), allowNull: true },
    });
    await s.addIndex('resident_sign_in_challenges', ['expiresAt'], { name: 'resident_sign_in_challenges_expires' });
    await s.createTable('resident_sessions', {
      jti: { type: DataTypes.STRING(64), primaryKey: true },
      credentialId: { type: DataTypes.STRING(36), allowNull: false },
      signIn: { type: DataTypes.TEXT, allowNull: false },
      expiresAt: { type: DataTypes.STRING(30), allowNull: false },
      endedAt: { type: DataTypes.STRING(30), allowNull: true },
    });
    await s.addIndex('resident_sessions', ['expiresAt'], { name: 'resident_sessions_expires' });
  },
};
