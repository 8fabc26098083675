import type { Migration } from '../../../shared/platform/migrate.ts';
import { createAuditTables } from '../../../shared/migrations/0001-common-tables.ts';

/** The issuer keeps only its access log and checkpoints: the correspondence lives at the gateway. */
export const initial: Migration = {
  name: '0001-initial',
  up: createAuditTables,
};
