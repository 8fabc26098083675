import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { MunicipalityConfig } from './config.ts';

/**
 * This municipality's tables. Each folder's model.ts adds the tables it owns (a `declare module`
 * block beside its define function), so this file, below every flow, imports none of them;
 * models.ts defines them all on one connection.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Models {}

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
  /** Workers to wake when new work commits (set by `createMunicipality` once they run). */
  wake?: {
    /** A consent was revoked: its revocation waits in the outbox (docs/DESIGN.md §4.4). */
    consentRevocations?(): void;
  };
}
