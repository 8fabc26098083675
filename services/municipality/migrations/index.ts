import { initial } from './0001-initial.ts';
import { revocationLists } from './0002-revocation-lists.ts';

/** A municipality's migrations, in order (tables, indexes and the append-only triggers). */
export const MUNICIPALITY_MIGRATIONS = [initial, revocationLists];
