import { Op, type Sequelize, type Transaction } from 'sequelize';
import { defineAccessLog, type AccessLogModel } from '../../../shared/access-log/chain.ts';
import { defineCheckpoints } from '../../../shared/access-log/verify.ts';

/** The hash-chained access log and its signed checkpoints (DESIGN.md §5). */
export const defineAccessLogModels = (sequelize: Sequelize) => ({ AccessLog: defineAccessLog(sequelize), Checkpoint: defineCheckpoints(sequelize) });

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineAccessLogModels> {}
}

/** Allowed entries of one action about one subject, oldest first (the releases of a resident's records). */
export const allowedEntriesAbout = (AccessLog: AccessLogModel, subject: string, action: string, transaction?: Transaction) =>
  AccessLog.findAll({
    where: { subject, action, outcome: 'allowed' },
    attributes: ['actingMunicipality', 'purpose', 'requestId', 'recordIds'], order: [['seq', 'ASC']], raw: true, transaction,
  });

/** Entries about any of `subjects` (a resident's addressee number and code), oldest first. */
export const entriesAbout = (AccessLog: AccessLogModel, subjects: string[], limit: number, transaction?: Transaction) =>
  AccessLog.findAll({ where: { subject: { [Op.in]: subjects } }, order: [['seq', 'ASC']], limit, raw: true, transaction });

/** Entries of the given actions after seq `after`, oldest first: a reader that follows the log. */
export const entriesAfter = (AccessLog: AccessLogModel, after: number, actions: readonly string[], limit: number, transaction?: Transaction) =>
  AccessLog.findAll({
    where: { seq: { [Op.gt]: after }, action: { [Op.in]: [...actions] } },
    attributes: ['seq', 'at', 'requestId', 'actorId', 'actingMunicipality', 'subject', 'action', 'purpose', 'legalBasis', 'outcome', 'recordIds', 'details'],
    order: [['seq', 'ASC']], limit, raw: true, transaction,
  });
