import { DataTypes } from 'sequelize';
import type { Migration } from '../../../shared/platform/migrate.ts';
import { protectAppendOnly } from '../../../shared/access-log/chain.ts';
import { createAlertTable, createAuditTables, createStaffTable } from '../../../shared/migrations/0001-common-tables.ts';

/** A municipality's tables as of its first release. */
export const initial: Migration = {
  name: '0001-initial',
  async up(s) {
    await createStaffTable(s);
    await createAuditTables(s);
    await s.createTable('residents', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      addresseeNumber: { type: DataTypes.STRING(10), allowNull: false, unique: true },
      name: { type: DataTypes.STRING(100), allowNull: false },
      kana: { type: DataTypes.STRING(100), allowNull: false },
      birthDate: { type: DataTypes.STRING(10), allowNull: false },
      sex: { type: DataTypes.STRING(8), allowNull: false },
      address: { type: DataTypes.STRING(300), allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'resident' },
      myNumberEncrypted: { type: DataTypes.STRING(200), allowNull: false },
      myNumberIndex: { type: DataTypes.STRING(64), allowNull: false },
      code: { type: DataTypes.STRING(64), allowNull: true },
      codeStatus: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
      previousMunicipality: { type: DataTypes.STRING(6), allowNull: true },
      movedInAt: { type: DataTypes.STRING(30), allowNull: true },
      movedOutAt: { type: DataTypes.STRING(30), allowNull: true },
      moveOutDestination: { type: DataTypes.STRING(300), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('residents', ['myNumberIndex'], { name: 'residents_my_number_index' });
    await s.addIndex('residents', ['code'], { name: 'residents_code' });
    await s.addIndex('residents', ['kana'], { name: 'residents_kana' });
    await s.addIndex('residents', ['birthDate'], { name: 'residents_birth_date' });
    await s.addIndex('residents', ['status'], { name: 'residents_status' });
    await s.createTable('resident_history', {
      id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'residents', key: 'id' } },
      actorId: { type: DataTypes.STRING(64), allowNull: false },
      reason: { type: DataTypes.STRING(500), allowNull: false },
      changes: { type: DataTypes.TEXT, allowNull: false },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('resident_history', ['residentId'], { name: 'resident_history_resident_id' });
    await s.createTable('vaccination_records', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      recordId: { type: DataTypes.STRING(36), allowNull: false },
      version: { type: DataTypes.INTEGER, allowNull: false },
      residentId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'residents', key: 'id' } },
      occurrenceDate: { type: DataTypes.STRING(10), allowNull: false },
      vaccineCode: { type: DataTypes.STRING(40), allowNull: false },
      lotNumber: { type: DataTypes.STRING(20), allowNull: true },
      doseNumber: { type: DataTypes.INTEGER, allowNull: false },
      ticketNumber: { type: DataTypes.STRING(10), allowNull: true },
      place: { type: DataTypes.STRING(200), allowNull: true },
      status: { type: DataTypes.STRING(20), allowNull: false },
      supersedes: { type: DataTypes.STRING(36), allowNull: true },
      current: { type: DataTypes.BOOLEAN, allowNull: false },
      reason: { type: DataTypes.STRING(500), allowNull: true },
      actorId: { type: DataTypes.STRING(64), allowNull: false },
      sourceMunicipality: { type: DataTypes.STRING(6), allowNull: true },
      sourceRecordId: { type: DataTypes.STRING(64), allowNull: true },
      sourceVersion: { type: DataTypes.INTEGER, allowNull: true },
      importRequestId: { type: DataTypes.STRING(128), allowNull: true },
      retrievedAt: { type: DataTypes.STRING(30), allowNull: true },
      releasePurpose: { type: DataTypes.STRING(64), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('vaccination_records', ['recordId','version'], { name: 'vaccination_records_record_id_version', unique: true });
    await s.addIndex('vaccination_records', ['recordId'], { name: 'vaccination_records_one_current', unique: true, where: {current: true} });
    await s.addIndex('vaccination_records', ['residentId','sourceMunicipality','sourceRecordId','sourceVersion','releasePurpose'], { name: 'vaccination_records_provenance', unique: true });
    await s.addIndex('vaccination_records', ['residentId','current'], { name: 'vaccination_records_resident_id_current' });
    await s.createTable('vaccination_tickets', {
      ticketNumber: { type: DataTypes.STRING(10), allowNull: false, primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'residents', key: 'id' } },
      type: { type: DataTypes.INTEGER, allowNull: false },
      doseNumber: { type: DataTypes.INTEGER, allowNull: false },
      issuedAt: { type: DataTypes.STRING(30), allowNull: false },
      issuedBy: { type: DataTypes.STRING(64), allowNull: false },
      usedByRecordId: { type: DataTypes.STRING(36), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('vaccination_tickets', ['residentId'], { name: 'vaccination_tickets_resident_id' });
    await s.createTable('ticket_reviews', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      payload: { type: DataTypes.TEXT, allowNull: false },
      reasons: { type: DataTypes.TEXT, allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'open' },
      ticketHolderId: { type: DataTypes.STRING(36), allowNull: true, references: { model: 'residents', key: 'id' } },
      submittedBy: { type: DataTypes.STRING(64), allowNull: false },
      resolvedBy: { type: DataTypes.STRING(64), allowNull: true },
      resolvedAt: { type: DataTypes.STRING(30), allowNull: true },
      resolutionReason: { type: DataTypes.STRING(500), allowNull: true },
      residentId: { type: DataTypes.STRING(36), allowNull: true, references: { model: 'residents', key: 'id' } },
      recordId: { type: DataTypes.STRING(36), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('ticket_reviews', ['status'], { name: 'ticket_reviews_status' });
    await s.createTable('idempotency_keys', {
      id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
      actorId: { type: DataTypes.STRING(64), allowNull: false },
      key: { type: DataTypes.STRING(128), allowNull: false },
      method: { type: DataTypes.STRING(8), allowNull: false },
      path: { type: DataTypes.STRING(300), allowNull: false },
      requestHash: { type: DataTypes.STRING(64), allowNull: false },
      status: { type: DataTypes.INTEGER, allowNull: false },
      responseBody: { type: DataTypes.TEXT, allowNull: false },
      subject: { type: DataTypes.STRING(64), allowNull: true },
      action: { type: DataTypes.STRING(64), allowNull: false },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('idempotency_keys', ['actorId','key'], { name: 'idempotency_keys_actor_id_key', unique: true });
    await s.createTable('consents', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'residents', key: 'id' } },
      scope: { type: DataTypes.STRING(32), allowNull: false },
      purpose: { type: DataTypes.STRING(64), allowNull: false },
      sources: { type: DataTypes.TEXT, allowNull: false },
      givenAt: { type: DataTypes.STRING(30), allowNull: false },
      expiresAt: { type: DataTypes.STRING(30), allowNull: false },
      method: { type: DataTypes.STRING(32), allowNull: false },
      recordedBy: { type: DataTypes.STRING(64), allowNull: false },
      residentSignature: { type: DataTypes.TEXT, allowNull: true },
      residentCertificate: { type: DataTypes.TEXT, allowNull: true },
      revokedAt: { type: DataTypes.STRING(30), allowNull: true },
      revokedBy: { type: DataTypes.STRING(64), allowNull: true },
      revocationReason: { type: DataTypes.STRING(500), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('consents', ['residentId'], { name: 'consents_resident_id' });
    await s.createTable('registration_attempts', {
      residentId: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      attempts: { type: DataTypes.INTEGER, allowNull: false },
      nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
      lastError: { type: DataTypes.STRING(200), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.createTable('move_ins', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false },
      fromMunicipality: { type: DataTypes.STRING(6), allowNull: false },
      certificateJti: { type: DataTypes.STRING(128), allowNull: false, unique: true },
      moveOutDate: { type: DataTypes.STRING(10), allowNull: false },
      movedInAt: { type: DataTypes.STRING(30), allowNull: false },
      recordedBy: { type: DataTypes.STRING(64), allowNull: false },
      moveLink: { type: DataTypes.TEXT, allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('move_ins', ['residentId'], { name: 'move_ins_resident_id' });
    await s.createTable('query_subjects', {
      id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
      queryJti: { type: DataTypes.STRING(128), allowNull: false },
      requestId: { type: DataTypes.STRING(128), allowNull: false },
      ref: { type: DataTypes.STRING(64), allowNull: false },
      residentId: { type: DataTypes.STRING(36), allowNull: false },
      source: { type: DataTypes.STRING(6), allowNull: false },
      purpose: { type: DataTypes.STRING(64), allowNull: false },
      legalBasis: { type: DataTypes.STRING(32), allowNull: false },
      consentId: { type: DataTypes.STRING(36), allowNull: true },
      exceptionId: { type: DataTypes.STRING(36), allowNull: true },
      actorId: { type: DataTypes.STRING(64), allowNull: false },
      status: { type: DataTypes.STRING(32), allowNull: false },
      reason: { type: DataTypes.STRING(100), allowNull: true },
      recordCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      importedCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      retryAfter: { type: DataTypes.INTEGER, allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('query_subjects', ['queryJti','ref'], { name: 'query_subjects_query_jti_ref', unique: true });
    await s.addIndex('query_subjects', ['residentId'], { name: 'query_subjects_resident_id' });
    await s.addIndex('query_subjects', ['requestId'], { name: 'query_subjects_request_id' });
    await s.createTable('exception_requests', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false },
      source: { type: DataTypes.STRING(6), allowNull: false },
      purpose: { type: DataTypes.STRING(64), allowNull: false },
      justification: { type: DataTypes.TEXT, allowNull: false },
      requestedBy: { type: DataTypes.STRING(64), allowNull: false },
      approvedBy: { type: DataTypes.STRING(64), allowNull: true },
      approvedAt: { type: DataTypes.STRING(30), allowNull: true },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.createTable('seen_tokens', {
      issuer: { type: DataTypes.STRING(32), allowNull: false, primaryKey: true },
      jti: { type: DataTypes.STRING(128), allowNull: false, primaryKey: true },
      expiresAt: { type: DataTypes.INTEGER, allowNull: false },
    });
    await s.addIndex('seen_tokens', ['expiresAt'], { name: 'seen_tokens_expires_at' });
    await s.createTable('bulk_jobs', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      purpose: { type: DataTypes.STRING(64), allowNull: false },
      selection: { type: DataTypes.TEXT, allowNull: false },
      createdBy: { type: DataTypes.STRING(64), allowNull: false },
      createdByRole: { type: DataTypes.STRING(32), allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'running' },
      total: { type: DataTypes.INTEGER, allowNull: false },
      completedAt: { type: DataTypes.STRING(30), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('bulk_jobs', ['status'], { name: 'bulk_jobs_status' });
    await s.createTable('bulk_job_subjects', {
      id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
      jobId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'bulk_jobs', key: 'id' } },
      seq: { type: DataTypes.INTEGER, allowNull: false },
      residentId: { type: DataTypes.STRING(36), allowNull: false },
      addresseeNumber: { type: DataTypes.STRING(10), allowNull: false },
      source: { type: DataTypes.STRING(6), allowNull: false },
      state: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
      status: { type: DataTypes.STRING(32), allowNull: true },
      reason: { type: DataTypes.STRING(100), allowNull: true },
      attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      attemptLimit: { type: DataTypes.INTEGER, allowNull: true },
      nextAttemptAt: { type: DataTypes.STRING(30), allowNull: true },
      retryAfter: { type: DataTypes.INTEGER, allowNull: true },
      recordCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      createdCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      heldCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      requestId: { type: DataTypes.STRING(128), allowNull: true },
      resolvedAt: { type: DataTypes.STRING(30), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('bulk_job_subjects', ['jobId','seq'], { name: 'bulk_job_subjects_job_id_seq', unique: true });
    await s.addIndex('bulk_job_subjects', ['jobId','residentId','source'], { name: 'bulk_job_subjects_job_id_resident_id_source', unique: true });
    await s.addIndex('bulk_job_subjects', ['state','nextAttemptAt'], { name: 'bulk_job_subjects_state_next_attempt_at' });
    await s.createTable('correction_outbox', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false },
      recordId: { type: DataTypes.STRING(36), allowNull: false },
      version: { type: DataTypes.INTEGER, allowNull: false },
      recipient: { type: DataTypes.STRING(6), allowNull: false },
      purpose: { type: DataTypes.STRING(64), allowNull: false },
      change: { type: DataTypes.STRING(16), allowNull: false },
      releaseRequestId: { type: DataTypes.STRING(128), allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
      attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
      lastError: { type: DataTypes.STRING(200), allowNull: true },
      sentAt: { type: DataTypes.STRING(30), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('correction_outbox', ['recordId','version','recipient','purpose'], { name: 'correction_outbox_record_id_version_recipient_purpose', unique: true });
    await s.addIndex('correction_outbox', ['status','nextAttemptAt'], { name: 'correction_outbox_status_next_attempt_at' });
    await s.createTable('correction_notices', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false },
      localRecordId: { type: DataTypes.STRING(36), allowNull: false },
      source: { type: DataTypes.STRING(6), allowNull: false },
      sourceRecordId: { type: DataTypes.STRING(64), allowNull: false },
      sourceVersion: { type: DataTypes.INTEGER, allowNull: false },
      change: { type: DataTypes.STRING(16), allowNull: false },
      purpose: { type: DataTypes.STRING(64), allowNull: false },
      requestId: { type: DataTypes.STRING(128), allowNull: false },
      noticeJti: { type: DataTypes.STRING(128), allowNull: false },
      outcome: { type: DataTypes.STRING(16), allowNull: false },
      before: { type: DataTypes.TEXT, allowNull: true },
      after: { type: DataTypes.TEXT, allowNull: false },
      receivedAt: { type: DataTypes.STRING(30), allowNull: false },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('correction_notices', ['residentId','source','sourceRecordId','sourceVersion','purpose'], { name: 'correction_notices_once', unique: true });
    await s.addIndex('correction_notices', ['residentId'], { name: 'correction_notices_resident_id' });
    await s.createTable('resident_notices', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      accessSeq: { type: DataTypes.INTEGER, allowNull: false, unique: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false },
      kind: { type: DataTypes.STRING(32), allowNull: false },
      otherMunicipality: { type: DataTypes.STRING(32), allowNull: true },
      purpose: { type: DataTypes.STRING(64), allowNull: true },
      legalBasis: { type: DataTypes.STRING(64), allowNull: true },
      outcome: { type: DataTypes.STRING(16), allowNull: false },
      requestId: { type: DataTypes.STRING(128), allowNull: false },
      recordCount: { type: DataTypes.INTEGER, allowNull: false },
      occurredAt: { type: DataTypes.STRING(30), allowNull: false },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('resident_notices', ['residentId'], { name: 'resident_notices_resident_id' });
    await s.createTable('notice_outbox', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      noticeId: { type: DataTypes.STRING(36), allowNull: false, unique: true },
      channel: { type: DataTypes.STRING(16), allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
      attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
      deliveredAt: { type: DataTypes.STRING(30), allowNull: true },
      lastError: { type: DataTypes.STRING(200), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('notice_outbox', ['status','nextAttemptAt'], { name: 'notice_outbox_status_next_attempt_at' });
    await s.createTable('notice_cursor', {
      name: { type: DataTypes.STRING(32), allowNull: false, primaryKey: true },
      lastSeq: { type: DataTypes.INTEGER, allowNull: false },
    });
    await createAlertTable(s);
    for (const table of ['correction_notices', 'resident_notices']) await protectAppendOnly(s.sequelize, table, s.transaction);
  },
};
