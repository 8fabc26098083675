import { updateRows } from '../../../shared/platform/db.ts';
import { rememberOnce } from '../../../shared/federation/replay.ts';
import { DataTypes, Model, Op, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

/**
 * Failed attempts to register a resident's code, for backoff. The outbox itself is the residents
 * table: every resident whose codeStatus is `pending` is due, so a resident and its pending
 * registration are written in one transaction by construction.
 */
export class RegistrationAttemptRow extends Model<InferAttributes<RegistrationAttemptRow>, InferCreationAttributes<RegistrationAttemptRow>> {
  declare residentId: string;
  declare attempts: number;
  declare nextAttemptAt: string;
  declare lastError: string | null;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** One move-in, with the certificate it came from (a certificate is accepted once). */
export class MoveInRow extends Model<InferAttributes<MoveInRow>, InferCreationAttributes<MoveInRow>> {
  declare id: string;
  declare residentId: string;
  declare fromMunicipality: string;
  declare certificateJti: string;
  declare moveOutDate: string;
  declare movedInAt: string;
  declare recordedBy: string;
  /** The move link the certificate carried (issue 9): B's proof of the chain of moves for later queries. */
  declare moveLink: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
}

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

/** A life-protection request: asked by one staff member, approved by another before it is used. */
export class ExceptionRow extends Model<InferAttributes<ExceptionRow>, InferCreationAttributes<ExceptionRow>> {
  declare id: string;
  declare residentId: string;
  declare source: string;
  declare purpose: string;
  declare justification: string;
  declare requestedBy: string;
  declare approvedBy: CreationOptional<string | null>;
  declare approvedAt: CreationOptional<string | null>;
  declare status: CreationOptional<'pending' | 'approved' | 'used' | 'rejected'>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** jti values already accepted from other members; kept until expiry so a replay fails, also after a restart. */
export class SeenTokenRow extends Model<InferAttributes<SeenTokenRow>, InferCreationAttributes<SeenTokenRow>> {
  declare issuer: string;
  declare jti: string;
  declare expiresAt: number;
}

export function defineExchangeModels(sequelize: Sequelize) {
  class RegistrationAttempt extends RegistrationAttemptRow {}
  RegistrationAttempt.init({
    residentId: { type: DataTypes.STRING(36), primaryKey: true },
    attempts: { type: DataTypes.INTEGER, allowNull: false },
    nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
    lastError: { type: DataTypes.STRING(200), allowNull: true },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, { sequelize, tableName: 'registration_attempts' });

  class MoveIn extends MoveInRow {}
  MoveIn.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    residentId: { type: DataTypes.STRING(36), allowNull: false },
    fromMunicipality: { type: DataTypes.STRING(6), allowNull: false },
    certificateJti: { type: DataTypes.STRING(128), allowNull: false, unique: true },
    moveOutDate: { type: DataTypes.STRING(10), allowNull: false },
    movedInAt: { type: DataTypes.STRING(30), allowNull: false },
    recordedBy: { type: DataTypes.STRING(64), allowNull: false },
    moveLink: { type: DataTypes.TEXT, allowNull: true },
    createdAt: DataTypes.DATE,
  }, { sequelize, tableName: 'move_ins', updatedAt: false, indexes: [{ fields: ['residentId'] }] });

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

  class ExceptionRequest extends ExceptionRow {}
  ExceptionRequest.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    residentId: { type: DataTypes.STRING(36), allowNull: false },
    source: { type: DataTypes.STRING(6), allowNull: false },
    purpose: { type: DataTypes.STRING(64), allowNull: false },
    justification: { type: DataTypes.TEXT, allowNull: false },
    requestedBy: { type: DataTypes.STRING(64), allowNull: false },
    approvedBy: { type: DataTypes.STRING(64), allowNull: true },
    approvedAt: { type: DataTypes.STRING(30), allowNull: true },
    status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, { sequelize, tableName: 'exception_requests' });

  class SeenToken extends SeenTokenRow {}
  SeenToken.init({
    issuer: { type: DataTypes.STRING(32), primaryKey: true },
    jti: { type: DataTypes.STRING(128), primaryKey: true },
    expiresAt: { type: DataTypes.INTEGER, allowNull: false },
  }, { sequelize, tableName: 'seen_tokens', timestamps: false, indexes: [{ fields: ['expiresAt'] }] });

  return { RegistrationAttempt, MoveIn, QuerySubject, ExceptionRequest, SeenToken };
}

export type ExchangeModels = ReturnType<typeof defineExchangeModels>;

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
export const settleQuerySubjects = (QuerySubject: ExchangeModels['QuerySubject'], transaction: Transaction, outcomes: QuerySubjectOutcome[]): Promise<void> =>
  updateRows(QuerySubject.sequelize!, 'query_subjects', {
    keys: ['queryJti', 'ref'],
    set: { status: 'TEXT', reason: 'TEXT', recordCount: 'INTEGER', importedCount: 'INTEGER', retryAfter: 'INTEGER' },
    fixed: { updatedAt: new Date() },
  }, outcomes as unknown as Record<string, unknown>[], transaction);

/** Remembers a jti; false when it was seen before (a replay). */
export const rememberToken = (SeenToken: ExchangeModels['SeenToken'], issuer: string, jti: string, expiresAt: number, transaction?: Transaction): Promise<boolean> =>
  rememberOnce(SeenToken, { issuer, jti, expiresAt }, transaction);

/** Drops jtis of messages that expired over two minutes ago: they can no longer verify, so the row guards nothing. */
export async function pruneTokens(SeenToken: ExchangeModels['SeenToken'], nowSeconds: number, transaction?: Transaction): Promise<number> {
  return SeenToken.destroy({ where: { expiresAt: { [Op.lt]: nowSeconds - 120 } }, transaction });
}
