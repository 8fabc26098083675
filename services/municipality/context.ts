import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { MunicipalityConfig } from './config.ts';
import type { Models } from './models.ts';

/**
 * Everything one municipality instance's code needs, built once by `createMunicipality` and
 * passed down explicitly. Several instances live side by side in one process (tests, the
 * 1,741-municipality host mode), so nothing here may be module-level.
 */
export interface MunicipalityContext {
  config: MunicipalityConfig;
  sequelize: Sequelize;
  models: Models;
  logger: Logger;
}
