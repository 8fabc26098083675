import { initial } from './0001-initial.ts';
import { witnessedHeads } from './0004-witnessed-heads.ts';

/** The gateway's migrations, in order. */
export const GATEWAY_MIGRATIONS = [initial, witnessedHeads];
