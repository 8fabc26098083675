import type { Sequelize } from 'sequelize';
import { migrate } from '../../shared/platform/migrate.ts';
import { initial } from './0001-initial.ts';

/** The gateway's migrations, in order. */
export const GATEWAY_MIGRATIONS = [initial];

/** Brings the gateway's database up to date before it is used. */
export const prepareGatewaySchema = (sequelize: Sequelize): Promise<string[]> => migrate(sequelize, GATEWAY_MIGRATIONS);
