import { DataTypes } from 'sequelize';
import type { Migration } from '../../../shared/platform/migrate.ts';

/**
 * Blind code derivation (docs/DESIGN.md §4.2): `residents.codeDerivation` says how a resident's code
 * was derived — `blind` (from the two-member OPRF seed) or `legacy` (from the My Number, before).
 * Every code already issued is `legacy`: the registration outbox rekeys those (same code, new
 * link at the gateway) and marks them `blind`.
 */
export const blindCodes: Migration = {
  name: '0009-blind-codes',
  async up(s) {
    const { sequelize, transaction, queryInterface } = s;
    const columns = await queryInterface.describeTable('residents', { transaction } as never);
    if (!('codeDerivation' in columns)) {
      await queryInterface.addColumn('residents', 'codeDerivation', { type: DataTypes.STRING(8), allowNull: true }, { transaction });
    }
    await sequelize.query(`UPDATE residents SET "codeDerivation" = 'legacy' WHERE code IS NOT NULL AND "codeDerivation" IS NULL`, { transaction });
  },
};
