import type { Sequelize } from 'sequelize';
import { defineAccessLog } from '../../../shared/access-log/chain.ts';
import { defineCheckpoints } from '../../../shared/access-log/verify.ts';

/** The hash-chained access log and its signed checkpoints (DESIGN.md §5). */
export const defineAccessLogModels = (sequelize: Sequelize) => ({ AccessLog: defineAccessLog(sequelize), Checkpoint: defineCheckpoints(sequelize) });

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineAccessLogModels> {}
}
