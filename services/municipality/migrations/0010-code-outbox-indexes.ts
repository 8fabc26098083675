import type { Migration } from '../../../shared/platform/migrate.ts';

/**
 * The residents table is the outbox of code registration and rekeying (docs/DESIGN.md §4.2): the
 * registration worker asks, every round, for the residents still `pending` and those whose code
 * is of the `legacy` derivation. Both are a handful among all residents once registration has
 * caught up, so each gets a partial index holding only those rows: a round then reads the few
 * rows due instead of every resident of the municipality.
 */
export const codeOutboxIndexes: Migration = {
  name: '0010-code-outbox-indexes',
  async up({ queryInterface, transaction }) {
    await queryInterface.addIndex('residents', ['codeStatus'], { name: 'residents_code_pending', where: { codeStatus: 'pending' }, transaction });
    await queryInterface.addIndex('residents', ['codeStatus', 'codeDerivation'], {
      name: 'residents_code_legacy', where: { codeStatus: 'issued', codeDerivation: 'legacy' }, transaction,
    });
  },
};
