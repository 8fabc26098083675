import type { Sequelize } from 'sequelize';
import { defineStaffModel } from '../../../shared/staff/auth.ts';

export const defineStaffModels = (sequelize: Sequelize) => ({ Staff: defineStaffModel(sequelize) });

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineStaffModels> {}
}
