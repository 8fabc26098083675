import { initial } from './0001-initial.ts';
import { witnessedHeads } from './0004-witnessed-heads.ts';

/** The issuer's migrations, in order. */
export const ISSUER_MIGRATIONS = [initial, witnessedHeads];
