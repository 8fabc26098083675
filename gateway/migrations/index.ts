import { initial } from './0001-initial.ts';
import { staffSignInMigration } from './0002-staff-sign-in.ts';

/** The gateway's migrations, in order. */
export const GATEWAY_MIGRATIONS = [initial, staffSignInMigration];
