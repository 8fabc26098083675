import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';
import type { Role } from './roles.ts';

export class StaffRow extends Model<InferAttributes<StaffRow>, InferCreationAttributes<StaffRow>> {
  declare id: string;
  declare username: string;
  declare displayName: string;
  declare role: Role;
  declare passwordHash: string;
  declare active: CreationOptional<boolean>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineStaffModel(sequelize: Sequelize) {
  class Staff extends StaffRow {}
  Staff.init(
    {
      id: { type: DataTypes.STRING(36), primaryKey: true },
      username: { type: DataTypes.STRING(64), allowNull: false, unique: true },
      displayName: { type: DataTypes.STRING(100), allowNull: false },
      role: { type: DataTypes.STRING(32), allowNull: false },
      passwordHash: { type: DataTypes.STRING(200), allowNull: false },
      active: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
      createdAt: DataTypes.DATE,
      updatedAt: DataTypes.DATE,
    },
    { sequelize, tableName: 'staff' },
  );
  return Staff;
}

export type StaffModel = ReturnType<typeof defineStaffModel>;

/** What the rest of the service sees of a staff member: never the password hash. */
export interface StaffView {
  id: string;
  username: string;
  displayName: string;
  role: Role;
  active: boolean;
}

const toView = (row: StaffRow | InferAttributes<StaffRow>): StaffView => ({
  id: row.id, username: row.username, displayName: row.displayName, role: row.role, active: Boolean(row.active),
});

export async function findStaffForLogin(Staff: StaffModel, username: string) {
  const row = await Staff.findOne({ where: { username }, raw: true });
  return row ? { ...toView(row), passwordHash: row.passwordHash } : null;
}

export async function findStaffById(Staff: StaffModel, id: string): Promise<StaffView | null> {
  const row = await Staff.findByPk(id, { raw: true });
  return row ? toView(row) : null;
}

export async function insertStaff(Staff: StaffModel, staff: Omit<StaffView, 'active'> & { passwordHash: string }, transaction?: Transaction): Promise<StaffView> {
  const row = await Staff.create(staff, { transaction });
  return toView(row);
}

export async function listStaff(Staff: StaffModel): Promise<StaffView[]> {
  return (await Staff.findAll({ raw: true, order: [['username', 'ASC']] })).map(toView);
}
