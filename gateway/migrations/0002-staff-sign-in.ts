import type { Migration } from '../../shared/platform/migrate.ts';
import { staffSignIn } from '../../shared/migrations/0002-staff-sign-in.ts';

/** Staff sign-in throttling, the session revocation list and session versions. */
export const staffSignInMigration: Migration = { name: '0002-staff-sign-in', up: staffSignIn };
