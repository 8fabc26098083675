import { rememberOnce } from '../../shared/federation/replay.ts';
import { DataTypes, Model, Op, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

/**
 * Every query jti seen, per issuer, until the query expires: a replay is refused, also after a
 * restart (the cache is a table, not memory). Rows past their expiry are pruned: the message
 * they guard can no longer verify, so the row guards nothing.
 */
export class ReplayRow extends Model<InferAttributes<ReplayRow>, InferCreationAttributes<ReplayRow>> {
  declare issuer: string;
  declare jti: string;
  /** The message's exp (seconds since the epoch). */
  declare exp: number;
}

export function defineReplayCacheModel(sequelize: Sequelize) {
  class ReplayCache extends ReplayRow {}
  ReplayCache.init(
    {
      issuer: { type: DataTypes.STRING(64), primaryKey: true },
      jti: { type: DataTypes.STRING(128), primaryKey: true },
      exp: { type: DataTypes.INTEGER, allowNull: false },
    },
    { sequelize, tableName: 'replay_cache', timestamps: false, indexes: [{ fields: ['exp'] }] },
  );
  return ReplayCache;
}

export type ReplayCacheModel = ReturnType<typeof defineReplayCacheModel>;

/** The owning folder adds its tables to the gateway's models (see context.ts). */
declare module '../context.ts' {
  interface GatewayModels {
    ReplayCache: ReplayCacheModel;
  }
}

/** Records a jti; false when it was already there (a replay). */
export const rememberJti = (M: ReplayCacheModel, issuer: string, jti: string, exp: number, transaction: Transaction): Promise<boolean> =>
  rememberOnce(M, { issuer, jti, exp }, transaction);

/** Drops rows whose message expired more than `graceSeconds` ago. */
export async function pruneExpired(M: ReplayCacheModel, nowSeconds: number, graceSeconds: number, transaction: Transaction): Promise<number> {
  return M.destroy({ where: { exp: { [Op.lt]: nowSeconds - graceSeconds } }, transaction });
}
