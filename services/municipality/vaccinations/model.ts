import type { Sequelize } from 'sequelize';

export function defineVaccinationModels(_sequelize: Sequelize) {
  return {};
}
