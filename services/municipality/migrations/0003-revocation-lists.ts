import type { Migration } from '../../../shared/platform/migrate.ts';
import { createRevocationListTable } from '../../../shared/migrations/0003-revocation-lists.ts';

/** The revocation lists this member accepted, kept across restarts (docs/PROTOCOL.md §1). */
export const revocationLists: Migration = {
  name: '0003-revocation-lists',
  up: createRevocationListTable,
};
