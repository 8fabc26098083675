import type { Sequelize } from 'sequelize';
import { migrate } from '../../shared/platform/migrate.ts';
import { MUNICIPALITY_MIGRATIONS } from './migrations/index.ts';
import type { Models } from './context.ts';
import { defineStaffModels } from './staff/model.ts';
import { defineAccessLogModels } from './access-log/model.ts';
import { defineResidentModels } from './residents/model.ts';
import { defineVaccinationModels } from './vaccinations/model.ts';
import { defineIdempotencyModel } from './idempotency/model.ts';
import { defineConsentModels, defineConsentRevocationModels } from './consents/model.ts';
import { defineCodeModels } from './codes/model.ts';
import { defineMoveModels } from './moves/model.ts';
import { defineAskingModels } from './asking/model.ts';
import { defineExceptionModels } from './exceptions/model.ts';
import { defineAnsweringModels } from './answering/model.ts';
import { defineBulkJobModels } from './asking/bulk/model.ts';
import { defineCorrectionModels } from './corrections/model.ts';
import { defineAlertModels } from './alerts/model.ts';
import { defineNoticeModels } from './notices/model.ts';
import { defineFhirExportModels } from './fhir/export/model.ts';
import { defineRetentionModels } from './retention/model.ts';
import { defineResidentPageModels } from './resident-page/model.ts';

/** Defines every table of one municipality on its own database connection. */
export function defineModels(sequelize: Sequelize): Models {
  return {
    ...defineStaffModels(sequelize),
    ...defineAccessLogModels(sequelize),
    ...defineResidentModels(sequelize),
    ...defineVaccinationModels(sequelize),
    ...defineIdempotencyModel(sequelize),
    ...defineConsentModels(sequelize),
    ...defineConsentRevocationModels(sequelize),
    ...defineCodeModels(sequelize),
    ...defineMoveModels(sequelize),
    ...defineAskingModels(sequelize),
    ...defineExceptionModels(sequelize),
    ...defineAnsweringModels(sequelize),
    ...defineBulkJobModels(sequelize),
    ...defineCorrectionModels(sequelize),
    ...defineAlertModels(sequelize),
    ...defineNoticeModels(sequelize),
    ...defineFhirExportModels(sequelize),
    ...defineRetentionModels(sequelize),
    ...defineResidentPageModels(sequelize),
  };
}

/** Brings the database up to date before the service uses it. */
export const prepareSchema = (sequelize: Sequelize): Promise<string[]> => migrate(sequelize, MUNICIPALITY_MIGRATIONS);
