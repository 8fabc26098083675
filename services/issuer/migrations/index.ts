import { initial } from './0001-initial.ts';
import { revocationLists } from './0002-revocation-lists.ts';

/** The issuer's migrations, in order. */
export const ISSUER_MIGRATIONS = [initial, revocationLists];
