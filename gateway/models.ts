import type { Sequelize } from 'sequelize';
import { defineAccessLog } from '../shared/access-log/chain.ts';
import { defineCheckpoints } from '../shared/access-log/verify.ts';
import { defineWitnessedHeads } from '../shared/access-log/heads.ts';
import { migrate } from '../shared/platform/migrate.ts';
import { GATEWAY_MIGRATIONS } from './migrations/index.ts';
import { defineStaffModel } from '../shared/staff/auth.ts';
import { defineCorrespondenceModel } from './codes/model.ts';
import { defineReplayCacheModel } from './routing/model.ts';
import { defineAlerts } from '../shared/access-log/alerts.ts';
import { defineCorrectionRelayModel } from './notifications/model.ts';

/** Every table of one gateway, on its own database connection. */
export function defineGatewayModels(sequelize: Sequelize) {
  return {
    AccessLog: defineAccessLog(sequelize),
    /** Members' checkpoints the gateway witnessed, and its own. */
    Checkpoint: defineCheckpoints(sequelize),
    /** Heads of members' logs, as their signed messages carried them. */
    WitnessedHead: defineWitnessedHeads(sequelize),
    /** The gateway's privacy officers (its console). */
    Staff: defineStaffModel(sequelize),
    Correspondence: defineCorrespondenceModel(sequelize),
    ReplayCache: defineReplayCacheModel(sequelize),
    /** Correction notices being relayed (issue 9). */
    CorrectionRelay: defineCorrectionRelayModel(sequelize),
    Alert: defineAlerts(sequelize),
  };
}

export type GatewayModels = ReturnType<typeof defineGatewayModels>;

export const prepareGatewaySchema = (sequelize: Sequelize): Promise<string[]> => migrate(sequelize, GATEWAY_MIGRATIONS);
