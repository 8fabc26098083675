import type { Migration } from '../../../shared/platform/migrate.ts';
import { createWitnessedHeadsTable } from '../../../shared/migrations/0004-witnessed-heads.ts';

/** A municipality's copies of other members' log heads, as signed messages carried them (DESIGN.md §5). */
export const witnessedHeads: Migration = {
  name: '0004-witnessed-heads',
  up: createWitnessedHeadsTable,
};
