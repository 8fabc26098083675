import type { Sequelize } from 'sequelize';
import { defineAccessLog, protectAccessLog } from '../shared/audit.ts';
import { defineCorrespondenceModel } from './codes/model.ts';
import { defineReplayCacheModel } from './routing/model.ts';

/** Every table of one gateway, on its own database connection. */
export function defineGatewayModels(sequelize: Sequelize) {
  return {
    AccessLog: defineAccessLog(sequelize),
    Correspondence: defineCorrespondenceModel(sequelize),
    ReplayCache: defineReplayCacheModel(sequelize),
  };
}

export type GatewayModels = ReturnType<typeof defineGatewayModels>;

export async function prepareGatewaySchema(sequelize: Sequelize): Promise<void> {
  await sequelize.sync();
  await protectAccessLog(sequelize);
}
