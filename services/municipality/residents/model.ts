import type { Sequelize } from 'sequelize';

export function defineResidentModels(_sequelize: Sequelize) {
  return {};
}
