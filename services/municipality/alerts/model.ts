import type { Sequelize } from 'sequelize';
import { defineAlerts } from '../../../shared/access-log/alerts.ts';

export const defineAlertModels = (sequelize: Sequelize) => ({ Alert: defineAlerts(sequelize) });

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineAlertModels> {}
}
