import type { Sequelize } from 'sequelize';
import { defineAccessLog, protectAccessLog, protectAppendOnly } from '../shared/audit.ts';
import { CHECKPOINT_TABLE, defineCheckpoints } from '../shared/audit-verify.ts';
import { defineStaffModel } from '../shared/staff-auth.ts';
import { defineCorrespondenceModel } from './codes/model.ts';
import { defineReplayCacheModel } from './routing/model.ts';
import { ALERT_TABLE, defineAlerts } from '../shared/alerts.ts';
import { defineCorrectionRelayModel } from './notifications/model.ts';

/** Every table of one gateway, on its own database connection. */
export function defineGatewayModels(sequelize: Sequelize) {
  return {
    AccessLog: defineAccessLog(sequelize),
    /** Members' checkpoints the gateway witnessed, and its own. */
    Checkpoint: defineCheckpoints(sequelize),
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

export async function prepareGatewaySchema(sequelize: Sequelize): Promise<void> {
  await sequelize.sync();
  await protectAccessLog(sequelize);
  await protectAppendOnly(sequelize, CHECKPOINT_TABLE);
  await protectAppendOnly(sequelize, ALERT_TABLE);
}
