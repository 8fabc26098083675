import type { Sequelize } from 'sequelize';
import type { GatewayModels } from './context.ts';
import { defineAccessLogModels } from './access-log/model.ts';
import { defineCorrespondenceModel } from './codes/model.ts';
import { defineReplayCacheModel } from './routing/model.ts';
import { defineAlertModels } from './alerts/model.ts';
import { defineCorrectionRelayModel } from './notifications/model.ts';
import { defineConsentRevocationModels } from './consent-revocations/model.ts';

/** Every table of one gateway, on its own database connection. */
export function defineGatewayModels(sequelize: Sequelize): GatewayModels {
  return {
    ...defineAccessLogModels(sequelize),
    Correspondence: defineCorrespondenceModel(sequelize),
    ReplayCache: defineReplayCacheModel(sequelize),
    /** Correction notices being relayed (docs/DESIGN.md §4.10). */
    CorrectionRelay: defineCorrectionRelayModel(sequelize),
    ...defineAlertModels(sequelize),
    /** Consents their requesters revoked, and the revocations on their way to the sources (docs/DESIGN.md §4.4). */
    ...defineConsentRevocationModels(sequelize),
  };
}
