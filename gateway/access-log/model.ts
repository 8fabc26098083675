import { Op, type Sequelize, type Transaction, type WhereOptions } from 'sequelize';
import { defineAccessLog, type AccessLogModel } from '../../shared/access-log/chain.ts';
import { defineCheckpoints, parseDetails } from '../../shared/access-log/verify.ts';
import { defineStaffModel } from '../../shared/staff/auth.ts';
import { toEntryView } from '../../shared/access-log/query.ts';
import type { GatewayEntryView } from '../../shared/access-log/witness.ts';
import { GatewayActions } from './actions.ts';
import type { MemberEntriesQuery } from './schemas.ts';

/** The gateway's access log, the checkpoints it witnessed (members' and its own), and its privacy officers (its console). */
export const defineAccessLogModels = (sequelize: Sequelize) => ({
  AccessLog: defineAccessLog(sequelize), Checkpoint: defineCheckpoints(sequelize), Staff: defineStaffModel(sequelize),
});

/** The owning folder adds its tables to the gateway's models (see context.ts). */
declare module '../context.ts' {
  interface GatewayModels extends ReturnType<typeof defineAccessLogModels> {}
}

/**
 * The gateway's entries that concern municipality `member`, as requester (acting municipality) or
 * as source (details.source), oldest first from seq `after`. The LIKE pre-filter is exact after
 * parsing: details are written by JSON.stringify, and the source is checked again below.
 */
export async function entriesConcerning(log: AccessLogModel, member: string, q: MemberEntriesQuery, transaction?: Transaction): Promise<{ entries: GatewayEntryView[]; nextAfter: number | null }> {
  const and: WhereOptions[] = [
    { seq: { [Op.gt]: q.after } },
    { [Op.or]: [{ actingMunicipality: member }, { details: { [Op.like]: `%"source":${JSON.stringify(member)}%` } }] },
  ];
  if (q.requestId) and.push({ requestId: q.requestId });
  if (q.from) and.push({ at: { [Op.gte]: q.from } });
  if (q.to) and.push({ at: { [Op.lte]: q.to } });
  const rows = await log.findAll({ where: { [Op.and]: and }, order: [['seq', 'ASC']], limit: q.limit, raw: true, transaction });
  const entries: GatewayEntryView[] = [];
  for (const row of rows) {
    const e = toEntryView(row);
    const details = parseDetails(row.details);
    const source = typeof details.source === 'string' ? details.source : null;
    const asRequester = e.actingMunicipality === member;
    if (!asRequester && source !== member) continue;
    const role = asRequester ? 'requester' : 'source';
    entries.push({
      seq: e.seq, at: e.at, requestId: e.requestId, action: e.action, actor: e.actorId, actingMunicipality: e.actingMunicipality,
      role, counterpart: counterpartOf(e.action, role, details, e.reason), wholeRequest: e.action === GatewayActions.QUERY_REFUSE,
      source, ref: typeof details.ref === 'string' ? details.ref : null,
      status: typeof details.status === 'string' ? details.status : null, purpose: e.purpose, legalBasis: e.legalBasis,
      outcome: e.outcome, reason: e.reason, flags: e.flags,
    });
  }
  return { entries, nextAfter: rows.length === q.limit ? Number(rows[rows.length - 1]!.seq) : null };
}

/**
 * Which side of an exchange a gateway entry is, seen from the municipality: every subject of its
 * query the gateway received (routed or refused, or the whole query refused), and every subject
 * forwarded to it that it demonstrably got (its signed answer came back, or it refused the envelope).
 */
function counterpartOf(action: string, role: 'requester' | 'source', details: Record<string, unknown>, reason: string | null): GatewayEntryView['counterpart'] {
  if (role === 'requester' && (action === GatewayActions.QUERY_ROUTE || action === GatewayActions.QUERY_REFUSE)) return 'received';
  if (role === 'source' && action === GatewayActions.QUERY_ANSWER && (typeof details.answerJti === 'string' || (reason ?? '').startsWith('source_refused'))) return 'forwarded';
  return null;
}
