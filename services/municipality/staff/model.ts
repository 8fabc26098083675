import { Op, type Sequelize } from 'sequelize';
import { defineStaffModel } from '../../../shared/staff/auth.ts';

export const defineStaffModels = (sequelize: Sequelize) => ({ Staff: defineStaffModel(sequelize) });

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineStaffModels> {}
}

/** Ids of the active staff accounts holding any of `roles`. */
export async function activeStaffIds(Staff: ReturnType<typeof defineStaffModel>, roles: readonly string[]): Promise<string[]> {
  const rows = await Staff.findAll({ where: { role: { [Op.in]: [...roles] }, active: true }, attributes: ['id'], raw: true });
  return rows.map((s) => s.id);
}
