/**
 * Queries a stopped process left in flight (DESIGN.md flow 5: never all-or-nothing, and nothing
 * lost on a crash). A subject row is written `pending` before its query leaves and settled when
 * the answer is in; a process killed in between leaves it pending for good, and a clerk would
 * wait on a query that can never finish. On start, before any worker runs, every subject still
 * pending is settled as `source_unavailable` with reason `interrupted`: retryable at once (the
 * next query is a new one; imports are idempotent, so an answer the dead process had already
 * received changes nothing when asked again), each settlement logged.
 */
import { Op } from 'sequelize';
import { appendAccessBatch, type AccessInput } from '../../../shared/access-log/chain.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { Actions } from '../access-log/actions.ts';
import type { MunicipalityContext } from '../context.ts';
import { settleQuerySubjects } from './model.ts';

/** The reason an interrupted subject carries; the clerk may ask again at once. */
export const INTERRUPTED = 'interrupted';
/** Who settles them: the process itself at start, no staff member. */
const RECOVERY_ACTOR = 'startup-recovery';
/** Subjects settled per transaction (bounded memory however many a crash left). */
const PAGE = 500;

/**
 * Settles every subject left `pending` by a process that stopped mid-query (only subjects written
 * before `startedAt`, so a query this process has begun is never touched). Returns how many.
 */
export async function settleInterruptedQueries(ctx: MunicipalityContext, startedAt = new Date()): Promise<number> {
  let settled = 0;
  for (;;) {
    const done = await inTransaction(ctx.sequelize, async (t) => {
      const rows = await ctx.models.QuerySubject.findAll({
        where: { status: 'pending', createdAt: { [Op.lt]: startedAt } }, order: [['id', 'ASC']], limit: PAGE, raw: true, transaction: t,
      });
      if (rows.length === 0) return 0;
      const residents = await ctx.models.Resident.findAll({
        where: { id: [...new Set(rows.map((r) => r.residentId))] }, attributes: ['id', 'addresseeNumber'], raw: true, transaction: t,
      });
      const addresseeOf = new Map(residents.map((r) => [r.id, r.addresseeNumber]));
      await settleQuerySubjects(ctx.models.QuerySubject, t, rows.map((r) => ({
        queryJti: r.queryJti, ref: r.ref, status: 'source_unavailable', reason: INTERRUPTED, recordCount: 0, importedCount: 0, retryAfter: 0,
      })));
      await appendAccessBatch(ctx.models.AccessLog, t, rows.map((r): AccessInput => ({
        requestId: r.requestId, actorType: 'system', actorId: RECOVERY_ACTOR, actingMunicipality: ctx.config.MUNICIPALITY_CODE,
        subject: addresseeOf.get(r.residentId) ?? null, action: Actions.QUERY_INTERRUPTED, purpose: r.purpose, legalBasis: r.legalBasis,
        consentId: r.consentId, outcome: 'denied', reason: INTERRUPTED,
        details: { source: r.source, ref: r.ref, queryJti: r.queryJti, status: 'source_unavailable', askedBy: r.actorId },
      })));
      return rows.length;
    });
    settled += done;
    if (done < PAGE) break;
  }
  if (settled > 0) ctx.logger.warn({ settled }, 'queries interrupted by the last stop settled as source_unavailable (interrupted)');
  return settled;
}
