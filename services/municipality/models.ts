import type { Sequelize } from 'sequelize';
import { defineAccessLog, protectAccessLog } from '../../shared/audit.ts';
import { defineCheckpoints, protectCheckpoints } from '../../shared/audit-verify.ts';
import { defineStaffModel } from './auth/model.ts';
import { defineResidentModels } from './residents/model.ts';
import { defineVaccinationModels } from './vaccinations/model.ts';
import { defineIdempotencyModel } from './idempotency/model.ts';
import { defineConsentModels } from './consents/model.ts';
import { defineExchangeModels } from './exchange/model.ts';

/** Defines every table of one municipality on its own database connection. */
export function defineModels(sequelize: Sequelize) {
  return {
    Staff: defineStaffModel(sequelize),
    AccessLog: defineAccessLog(sequelize),
    Checkpoint: defineCheckpoints(sequelize),
    ...defineResidentModels(sequelize),
    ...defineVaccinationModels(sequelize),
    ...defineIdempotencyModel(sequelize),
    ...defineConsentModels(sequelize),
    ...defineExchangeModels(sequelize),
  };
}

export type Models = ReturnType<typeof defineModels>;

/** Creates missing tables and the database-level protections (append-only access log). */
export async function prepareSchema(sequelize: Sequelize): Promise<void> {
  await sequelize.sync();
  await protectAccessLog(sequelize);
  await protectCheckpoints(sequelize);
}
