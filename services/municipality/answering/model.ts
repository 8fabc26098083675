import { DataTypes, Model, Op, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';
import { rememberOnce } from '../../../shared/federation/replay.ts';

/** jti values already accepted from other members; kept until expiry so a replay fails, also after a restart. */
export class SeenTokenRow extends Model<InferAttributes<SeenTokenRow>, InferCreationAttributes<SeenTokenRow>> {
  declare issuer: string;
  declare jti: string;
  declare expiresAt: number;
}

export function defineAnsweringModels(sequelize: Sequelize) {
  class SeenToken extends SeenTokenRow {}
  SeenToken.init({
    issuer: { type: DataTypes.STRING(32), primaryKey: true },
    jti: { type: DataTypes.STRING(128), primaryKey: true },
    expiresAt: { type: DataTypes.INTEGER, allowNull: false },
  }, { sequelize, tableName: 'seen_tokens', timestamps: false, indexes: [{ fields: ['expiresAt'] }] });
  return { SeenToken };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineAnsweringModels> {}
}

export type SeenTokenModel = ReturnType<typeof defineAnsweringModels>['SeenToken'];

/** Remembers a jti; false when it was seen before (a replay). */
export const rememberToken = (SeenToken: SeenTokenModel, issuer: string, jti: string, expiresAt: number, transaction?: Transaction): Promise<boolean> =>
  rememberOnce(SeenToken, { issuer, jti, expiresAt }, transaction);

/** Drops jtis of messages that expired over two minutes ago: they can no longer verify, so the row guards nothing. */
export async function pruneTokens(SeenToken: SeenTokenModel, nowSeconds: number, transaction?: Transaction): Promise<number> {
  return SeenToken.destroy({ where: { expiresAt: { [Op.lt]: nowSeconds - 120 } }, transaction });
}
