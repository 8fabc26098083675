import { DataTypes } from 'sequelize';
import type { Migration } from '../../../shared/platform/migrate.ts';

/** FHIR Bulk Data export jobs and the NDJSON files they produce (services/municipality/fhir/export). */
export const fhirExport: Migration = {
  name: '0005-fhir-export',
  async up(s) {
    await s.createTable('fhir_export_jobs', {
      id: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
      level: { type: DataTypes.STRING(16), allowNull: false },
      types: { type: DataTypes.STRING(100), allowNull: false },
      since: { type: DataTypes.STRING(40), allowNull: true },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'in-progress' },
      requestedBy: { type: DataTypes.STRING(64), allowNull: false },
      requestedByRole: { type: DataTypes.STRING(32), allowNull: false },
      requestUrl: { type: DataTypes.STRING(1000), allowNull: false },
      transactionTime: { type: DataTypes.STRING(30), allowNull: false },
      progress: { type: DataTypes.STRING(100), allowNull: true },
      error: { type: DataTypes.STRING(500), allowNull: true },
      completedAt: { type: DataTypes.STRING(30), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: true },
      updatedAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('fhir_export_jobs', ['status'], { name: 'fhir_export_jobs_status' });
    await s.createTable('fhir_export_files', {
      id: { type: DataTypes.INTEGER, allowNull: false, primaryKey: true, autoIncrement: true },
      jobId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'fhir_export_jobs', key: 'id' } },
      type: { type: DataTypes.STRING(40), allowNull: false },
      seq: { type: DataTypes.INTEGER, allowNull: false },
      count: { type: DataTypes.INTEGER, allowNull: false },
      content: { type: DataTypes.TEXT, allowNull: false },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.addIndex('fhir_export_files', ['jobId'], { name: 'fhir_export_files_job_id' });
  },
};
