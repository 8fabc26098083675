import { initial } from './0001-initial.ts';

/** The gateway's migrations, in order. */
export const GATEWAY_MIGRATIONS = [initial];
