import type { Sequelize } from 'sequelize';
import { migrate } from '../../shared/platform/migrate.ts';
import { initial } from './0001-initial.ts';
import { revocationLists } from './0002-revocation-lists.ts';

/** The gateway's migrations, in order. */
export const GATEWAY_MIGRATIONS = [initial, revocationLists];

/** Brings the gateway's database up to date before it is used. */
export const prepareGatewaySchema = (sequelize: Sequelize): Promise<string[]> => migrate(sequelize, GATEWAY_MIGRATIONS);
