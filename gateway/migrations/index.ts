import { initial } from './0001-initial.ts';
import { revocationLists } from './0002-revocation-lists.ts';

/** The gateway's migrations, in order. */
export const GATEWAY_MIGRATIONS = [initial, revocationLists];
