import type { Sequelize } from 'sequelize';
import { defineAccessLog, protectAccessLog, protectAppendOnly } from '../../shared/audit.ts';
import { CHECKPOINT_TABLE, defineCheckpoints } from '../../shared/audit-verify.ts';
import { defineStaffModel } from '../../shared/staff-auth.ts';
import { defineResidentModels } from './residents/model.ts';
import { defineVaccinationModels } from './vaccinations/model.ts';
import { defineIdempotencyModel } from './idempotency/model.ts';
import { defineConsentModels } from './consents/model.ts';
import { defineExchangeModels } from './exchange/model.ts';
import { defineBulkJobModels } from './exchange/jobs/model.ts';
import { CORRECTION_NOTICE_TABLE, defineCorrectionModels } from './exchange/corrections/model.ts';
import { ALERT_TABLE, defineAlerts } from '../../shared/alerts.ts';
import { RESIDENT_NOTICE_TABLE, defineNoticeModels } from './notices/model.ts';

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
    ...defineBulkJobModels(sequelize),
    ...defineCorrectionModels(sequelize),
    Alert: defineAlerts(sequelize),
    ...defineNoticeModels(sequelize),
  };
}

export type Models = ReturnType<typeof defineModels>;

/** Creates missing tables and the database-level protections (append-only access log). */
export async function prepareSchema(sequelize: Sequelize): Promise<void> {
  await sequelize.sync();
  await protectAccessLog(sequelize);
  await protectAppendOnly(sequelize, CHECKPOINT_TABLE);
  await protectAppendOnly(sequelize, CORRECTION_NOTICE_TABLE);
  await protectAppendOnly(sequelize, ALERT_TABLE);
  await protectAppendOnly(sequelize, RESIDENT_NOTICE_TABLE);
}
