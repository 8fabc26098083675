/**
 * Bulk export jobs (FHIR Bulk Data Access IG, $export) of one municipality: a job row holds the
 * request and its state, file rows hold the NDJSON it produced. Both live in the municipality's
 * own database, so a job survives a restart (it is run again from the start) and nothing is
 * written outside it.
 */
import {
  DataTypes, Model, type CreationAttributes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize,
  type Transaction,
} from 'sequelize';
import { isoTime } from '../../residents/model.ts';

export const EXPORT_STATUSES = ['in-progress', 'completed', 'failed', 'cancelled'] as const;
export type ExportStatus = (typeof EXPORT_STATUSES)[number];

export class FhirExportJobRow extends Model<InferAttributes<FhirExportJobRow>, InferCreationAttributes<FhirExportJobRow>> {
  declare id: string;
  /** `system` ([base]/$export) or `patient` ([base]/Patient/$export). */
  declare level: string;
  /** Comma-separated resource types (`_type`). */
  declare types: string;
  /** `_since`, an instant, or null. */
  declare since: string | null;
  declare status: CreationOptional<ExportStatus>;
  declare requestedBy: string;
  declare requestedByRole: string;
  /** The kick-off URL, for the manifest's `request`. */
  declare requestUrl: string;
  /** The manifest's `transactionTime`: when the kick-off was accepted. */
  declare transactionTime: string;
  declare progress: CreationOptional<string | null>;
  declare error: CreationOptional<string | null>;
  declare completedAt: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class FhirExportFileRow extends Model<InferAttributes<FhirExportFileRow>, InferCreationAttributes<FhirExportFileRow>> {
  declare id: CreationOptional<number>;
  declare jobId: string;
  declare type: string;
  /** Order of the files of one type. */
  declare seq: number;
  /** Resources (lines) in the file. */
  declare count: number;
  /** NDJSON: one resource per line. */
  declare content: string;
  declare createdAt: CreationOptional<Date>;
}

export function defineFhirExportModels(sequelize: Sequelize) {
  class FhirExportJob extends FhirExportJobRow {}
  FhirExportJob.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
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
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, { sequelize, tableName: 'fhir_export_jobs', indexes: [{ name: 'fhir_export_jobs_status', fields: ['status'] }] });

  class FhirExportFile extends FhirExportFileRow {}
  FhirExportFile.init({
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    jobId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'fhir_export_jobs', key: 'id' } },
    type: { type: DataTypes.STRING(40), allowNull: false },
    seq: { type: DataTypes.INTEGER, allowNull: false },
    count: { type: DataTypes.INTEGER, allowNull: false },
    content: { type: DataTypes.TEXT, allowNull: false },
    createdAt: DataTypes.DATE,
  }, { sequelize, tableName: 'fhir_export_files', updatedAt: false, indexes: [{ name: 'fhir_export_files_job_id', fields: ['jobId'] }] });

  return { FhirExportJob, FhirExportFile };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../../context.ts' {
   
  interface Models extends ReturnType<typeof defineFhirExportModels> {}
}

type ExportModels = ReturnType<typeof defineFhirExportModels>;
export type FhirExportJobModel = ExportModels['FhirExportJob'];
export type FhirExportFileModel = ExportModels['FhirExportFile'];

export interface ExportJob {
  id: string;
  level: 'system' | 'patient';
  types: string[];
  since: string | null;
  status: ExportStatus;
  requestedBy: string;
  requestedByRole: string;
  requestUrl: string;
  transactionTime: string;
  progress: string | null;
  error: string | null;
  completedAt: string | null;
  createdAt: string;
}

const toJob = (r: InferAttributes<FhirExportJobRow>): ExportJob => ({
  id: r.id,
  level: r.level === 'patient' ? 'patient' : 'system',
  types: r.types.split(',').filter(Boolean),
  since: r.since ?? null,
  status: r.status,
  requestedBy: r.requestedBy,
  requestedByRole: r.requestedByRole,
  requestUrl: r.requestUrl,
  transactionTime: r.transactionTime,
  progress: r.progress ?? null,
  error: r.error ?? null,
  completedAt: r.completedAt ?? null,
  createdAt: isoTime(r.createdAt),
});

export interface ExportFileInfo { id: number; type: string; seq: number; count: number }

export async function insertJob(Job: FhirExportJobModel, values: CreationAttributes<FhirExportJobRow>, transaction: Transaction): Promise<ExportJob> {
  await Job.create(values, { transaction });
  return (await findJob(Job, values.id, transaction))!;
}

export async function findJob(Job: FhirExportJobModel, id: string, transaction?: Transaction): Promise<ExportJob | null> {
  const row = await Job.findOne({ where: { id }, raw: true, transaction });
  return row ? toJob(row) : null;
}

/** The oldest job still to run (in-progress), if any. */
export async function nextRunnableJob(Job: FhirExportJobModel): Promise<ExportJob | null> {
  const row = await Job.findOne({ where: { status: 'in-progress' }, order: [['createdAt', 'ASC'], ['id', 'ASC']], raw: true });
  return row ? toJob(row) : null;
}

/** Updates a job only while it is still in progress (a cancel in between wins); true when it did. */
export async function updateRunningJob(
  Job: FhirExportJobModel, id: string, values: Partial<Pick<FhirExportJobRow, 'status' | 'progress' | 'error' | 'completedAt'>>, transaction?: Transaction,
): Promise<boolean> {
  const [n] = await Job.update(values, { where: { id, status: 'in-progress' }, transaction });
  return n > 0;
}

export async function setJobStatus(Job: FhirExportJobModel, id: string, status: ExportStatus, transaction: Transaction): Promise<void> {
  await Job.update({ status }, { where: { id }, transaction });
}

export async function insertFile(File: FhirExportFileModel, values: CreationAttributes<FhirExportFileRow>, transaction?: Transaction): Promise<void> {
  await File.create(values, { transaction });
}

export async function listFiles(File: FhirExportFileModel, jobId: string, transaction?: Transaction): Promise<ExportFileInfo[]> {
  const rows = await File.findAll({ where: { jobId }, attributes: ['id', 'type', 'seq', 'count'], order: [['type', 'ASC'], ['seq', 'ASC']], raw: true, transaction });
  return rows.map((r) => ({ id: Number(r.id), type: r.type, seq: Number(r.seq), count: Number(r.count) }));
}

export async function readFile(File: FhirExportFileModel, jobId: string, id: number, transaction?: Transaction): Promise<(ExportFileInfo & { content: string }) | null> {
  const row = await File.findOne({ where: { jobId, id }, raw: true, transaction });
  return row ? { id: Number(row.id), type: row.type, seq: Number(row.seq), count: Number(row.count), content: row.content } : null;
}

export async function deleteFiles(File: FhirExportFileModel, jobId: string, transaction?: Transaction): Promise<void> {
  await File.destroy({ where: { jobId }, transaction });
}
