import type { Sequelize } from 'sequelize';
import { defineAccessLog } from '../shared/access-log/chain.ts';
import { defineCheckpoints } from '../shared/access-log/verify.ts';
import { migrate } from '../shared/platform/migrate.ts';
import { GATEWAY_MIGRATIONS } from './migrations/index.ts';
import { defineRevokedSessions, defineStaffModel } from '../shared/staff/auth.ts';
import { defineSignInThrottle } from '../shared/staff/sign-in.ts';
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
    /** The gateway's privacy officers (its console). */
    Staff: defineStaffModel(sequelize),
    /** Its sessions ended by logout, and its sign-in throttle. */
    RevokedSession: defineRevokedSessions(sequelize),
    SignInThrottle: defineSignInThrottle(sequelize),
    Correspondence: defineCorrespondenceModel(sequelize),
    ReplayCache: defineReplayCacheModel(sequelize),
    /** Correction notices being relayed (issue 9). */
    CorrectionRelay: defineCorrectionRelayModel(sequelize),
    Alert: defineAlerts(sequelize),
  };
}

export type GatewayModels = ReturnType<typeof defineGatewayModels>;

export const prepareGatewaySchema = (sequelize: Sequelize): Promise<string[]> => migrate(sequelize, GATEWAY_MIGRATIONS);
