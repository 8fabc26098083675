import type { Sequelize } from 'sequelize';
import { migrate } from '../../shared/platform/migrate.ts';
import { initial } from './0001-initial.ts';
import { staffSignInMigration } from './0002-staff-sign-in.ts';
import { revocationLists } from './0003-revocation-lists.ts';
import { witnessedHeads } from './0004-witnessed-heads.ts';
import { consentRevocations } from './0005-consent-revocations.ts';

/** The gateway's migrations, in order. */
export const GATEWAY_MIGRATIONS = [initial, staffSignInMigration, revocationLists, witnessedHeads, consentRevocations];

/** Brings the gateway's database up to date before it is used. */
export const prepareGatewaySchema = (sequelize: Sequelize): Promise<string[]> => migrate(sequelize, GATEWAY_MIGRATIONS);
