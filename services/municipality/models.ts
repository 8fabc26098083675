import type { Sequelize } from 'sequelize';
import { defineAccessLog } from '../../shared/access-log/chain.ts';
import { defineCheckpoints } from '../../shared/access-log/verify.ts';
import { defineWitnessedHeads } from '../../shared/access-log/heads.ts';
import { migrate } from '../../shared/platform/migrate.ts';
import { MUNICIPALITY_MIGRATIONS } from './migrations/index.ts';
import { defineStaffModel } from '../../shared/staff/auth.ts';
import { defineResidentModels } from './residents/model.ts';
import { defineVaccinationModels } from './vaccinations/model.ts';
import { defineIdempotencyModel } from './idempotency/model.ts';
import { defineConsentModels } from './consents/model.ts';
import { defineExchangeModels } from './asking/model.ts';
import { defineBulkJobModels } from './asking/bulk/model.ts';
import { defineCorrectionModels } from './corrections/model.ts';
import { defineAlerts } from '../../shared/access-log/alerts.ts';
import { defineNoticeModels } from './notices/model.ts';

/** Defines every table of one municipality on its own database connection. */
export function defineModels(sequelize: Sequelize) {
  return {
    Staff: defineStaffModel(sequelize),
    AccessLog: defineAccessLog(sequelize),
    Checkpoint: defineCheckpoints(sequelize),
    /** Heads of the gateway's and peers' logs, as their signed messages carried them. */
    WitnessedHead: defineWitnessedHeads(sequelize),
    ...defineResidentModels(sequelize),
    ...defineVaccinationModels(sequelize),
    ...defineIdempotencyModel(sequelize),
    ...defineConsentModels(sequelize),
    ...defineExchangeModels(sequelize),
    ...defineBulkJobModels(sequelize),
    ...defineCorrectionModels(sequelize),
    Alert: defineAlerts(sequelize),
    ...defineNoticeModels(sequelize),
  };
}

export type Models = ReturnType<typeof defineModels>;

/** Brings the database up to date before the service uses it. */
export const prepareSchema = (sequelize: Sequelize): Promise<string[]> => migrate(sequelize, MUNICIPALITY_MIGRATIONS);
