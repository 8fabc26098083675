import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

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

export function defineCodeModels(sequelize: Sequelize) {
  class RegistrationAttempt extends RegistrationAttemptRow {}
  RegistrationAttempt.init({
    residentId: { type: DataTypes.STRING(36), primaryKey: true },
    attempts: { type: DataTypes.INTEGER, allowNull: false },
    nextAttemptAt: { type: DataTypes.STRING(30), allowNull: false },
    lastError: { type: DataTypes.STRING(200), allowNull: true },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, { sequelize, tableName: 'registration_attempts' });
  return { RegistrationAttempt };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineCodeModels> {}
}

export type RegistrationAttemptModel = ReturnType<typeof defineCodeModels>['RegistrationAttempt'];

/** Records each resident's latest failure and when to try again (one row per resident, replaced). */
export async function recordAttempts(
  RegistrationAttempt: RegistrationAttemptModel, attempts: { residentId: string; attempts: number; lastError: string; nextAttemptAt: string }[],
): Promise<void> {
  await RegistrationAttempt.bulkCreate(attempts, { updateOnDuplicate: ['attempts', 'lastError', 'nextAttemptAt', 'updatedAt'] });
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Deletes a resident's registration backoff, if any; returns the rows deleted. */
export const deleteAttemptsOf = (RegistrationAttempt: RegistrationAttemptModel, residentId: string, t: Transaction): Promise<number> =>
  RegistrationAttempt.destroy({ where: { residentId }, transaction: t });
