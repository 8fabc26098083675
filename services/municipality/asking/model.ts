import { insertRows, updateRows } from '../../../shared/platform/db.ts';
import { DataTypes, Model, type CreationAttributes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

/** One subject of a query this municipality sent, and what came of it. */
export class QuerySubjectRow extends Model<InferAttributes<QuerySubjectRow>, InferCreationAttributes<QuerySubjectRow>> {
  declare id: CreationOptional<number>;
  declare queryJti: string;
  declare requestId: string;
  declare ref: string;
  declare residentId: string;
  declare source: string;
  declare purpose: string;
  declare legalBasis: string;
  declare consentId: string | null;
  declare exceptionId: string | null;
  declare actorId: string;
  declare status: string;
  declare reason: CreationOptional<string | null>;
  declare recordCount: CreationOptional<number>;
  declare importedCount: CreationOptional<number>;
  declare retryAfter: CreationOptional<number | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineAskingModels(sequelize: Sequelize) {
  class QuerySubject extends QuerySubjectRow {}
  QuerySubject.init({
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
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
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, {
    sequelize, tableName: 'query_subjects',
    indexes: [{ unique: true, fields: ['queryJti', 'ref'] }, { fields: ['residentId'] }, { fields: ['requestId'] }],
  });
  return { QuerySubject };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineAskingModels> {}
}

export type QuerySubjectModel = ReturnType<typeof defineAskingModels>['QuerySubject'];
export type QuerySubjectRecord = InferAttributes<QuerySubjectRow>;

/** Records every subject of a query before anything leaves. */
export async function insertQuerySubjects(QuerySubject: QuerySubjectModel, rows: CreationAttributes<QuerySubjectRow>[], transaction: Transaction): Promise<void> {
  // Complete rows in bound multi-row statements (one row per subject of every query).
  const at = new Date();
  await insertRows(QuerySubject.sequelize!, 'query_subjects', rows.map((r) => ({
    queryJti: r.queryJti, requestId: r.requestId, ref: r.ref, residentId: r.residentId, source: r.source, purpose: r.purpose, legalBasis: r.legalBasis,
    consentId: r.consentId ?? null, exceptionId: r.exceptionId ?? null, actorId: r.actorId, status: r.status, reason: r.reason ?? null,
    recordCount: r.recordCount ?? 0, importedCount: r.importedCount ?? 0, retryAfter: r.retryAfter ?? null, createdAt: at, updatedAt: at,
  })), transaction);
}

/** The subjects of one query, in the order they were asked. */
export const subjectsOfQuery = (QuerySubject: QuerySubjectModel, queryJti: string): Promise<QuerySubjectRecord[]> =>
  QuerySubject.findAll({ where: { queryJti }, order: [['id', 'ASC']], raw: true });

export interface QuerySubjectOutcome {
  queryJti: string;
  ref: string;
  status: string;
  reason: string | null;
  recordCount: number;
  importedCount: number;
  retryAfter: number | null;
}

/** Writes the final outcome of every subject of a query: one statement per few hundred subjects. */
export const settleQuerySubjects = (QuerySubject: QuerySubjectModel, transaction: Transaction, outcomes: QuerySubjectOutcome[]): Promise<void> =>
  updateRows(QuerySubject.sequelize!, 'query_subjects', {
    keys: ['queryJti', 'ref'],
    set: { status: 'TEXT', reason: 'TEXT', recordCount: 'INTEGER', importedCount: 'INTEGER', retryAfter: 'INTEGER' },
    fixed: { updatedAt: new Date() },
  }, outcomes as unknown as Record<string, unknown>[], transaction);

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Deletes the subjects of queries this municipality sent about a resident; returns the rows deleted. */
export const deleteQuerySubjectsOf = (QuerySubject: QuerySubjectModel, residentId: string, t: Transaction): Promise<number> =>
  QuerySubject.destroy({ where: { residentId }, transaction: t });
