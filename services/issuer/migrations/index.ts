import { initial } from './0001-initial.ts';

/** The issuer's migrations, in order. */
export const ISSUER_MIGRATIONS = [initial];
