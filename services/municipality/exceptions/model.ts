import { DataTypes, Model, type CreationAttributes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

export const EXCEPTION_STATUSES = ['pending', 'approved', 'used', 'rejected'] as const;
export type ExceptionStatus = (typeof EXCEPTION_STATUSES)[number];

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
  declare status: CreationOptional<ExceptionStatus>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineExceptionModels(sequelize: Sequelize) {
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
  return { ExceptionRequest };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineExceptionModels> {}
}

export type ExceptionRequestModel = ReturnType<typeof defineExceptionModels>['ExceptionRequest'];
export type ExceptionRecord = InferAttributes<ExceptionRow>;

export async function insertException(ExceptionRequest: ExceptionRequestModel, values: CreationAttributes<ExceptionRow>, transaction: Transaction): Promise<ExceptionRecord> {
  return (await ExceptionRequest.create(values, { transaction })).get({ plain: true });
}

export const findException = (ExceptionRequest: ExceptionRequestModel, id: string, transaction?: Transaction): Promise<ExceptionRecord | null> =>
  ExceptionRequest.findByPk(id, { transaction, raw: true });

export const listExceptionRows = (ExceptionRequest: ExceptionRequestModel, status?: string): Promise<ExceptionRecord[]> =>
  ExceptionRequest.findAll({ where: status ? { status } : {}, order: [['createdAt', 'DESC']], limit: 200, raw: true });

/** Moves a request from one status to the next; false when it was no longer in `from` (a concurrent change won). */
export async function changeExceptionStatus(
  ExceptionRequest: ExceptionRequestModel, id: string, from: ExceptionStatus, values: { status: ExceptionStatus; approvedBy?: string; approvedAt?: string }, transaction: Transaction,
): Promise<boolean> {
  const [changed] = await ExceptionRequest.update(values, { where: { id, status: from }, transaction });
  return changed > 0;
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Deletes a resident's life-protection requests (their justifications describe the person); returns the rows deleted. */
export const deleteExceptionsOf = (ExceptionRequest: ExceptionRequestModel, residentId: string, t: Transaction): Promise<number> =>
  ExceptionRequest.destroy({ where: { residentId }, transaction: t });
