import { initial } from './0001-initial.ts';
import { witnessedHeads } from './0004-witnessed-heads.ts';

/** A municipality's migrations, in order (tables, indexes and the append-only triggers). */
export const MUNICIPALITY_MIGRATIONS = [initial, witnessedHeads];
