import { initial } from './0001-initial.ts';
import { revocationLists } from './0003-revocation-lists.ts';
import { witnessedHeads } from './0004-witnessed-heads.ts';

/** The issuer's migrations, in order. */
export const ISSUER_MIGRATIONS = [initial, revocationLists, witnessedHeads];
