import { Op, type Sequelize, type Transaction, type WhereOptions } from 'sequelize';
import { defineAccessLog, type AccessLogModel } from '../../shared/access-log/chain.ts';
import { defineCheckpoints, parseDetails } from '../../shared/access-log/verify.ts';
import { defineRevokedSessions, defineStaffModel } from '../../shared/staff/auth.ts';
import { defineSignInThrottle } from '../../shared/staff/sign-in.ts';
import { defineWitnessedHeads } from '../../shared/access-log/heads.ts';
import { toEntryView, type AccessEntryView } from '../../shared/access-log/query.ts';
import type { GatewayEntryView } from '../../shared/access-log/witness.ts';
import { GatewayActions } from './actions.ts';
import type { MemberEntriesQuery } from './schemas.ts';

/**
 * The gateway's access log, the checkpoints it witnessed (members' and its own), the heads of
 * members' logs their signed messages carried, and its privacy officers (its console) with their
 * sessions ended by logout and their sign-in throttle.
 */
export const defineAccessLogModels = (sequelize: Sequelize) => ({
  AccessLog: defineAccessLog(sequelize), Checkpoint: defineCheckpoints(sequelize), WitnessedHead: defineWitnessedHeads(sequelize),
  Staff: defineStaffModel(sequelize), RevokedSession: defineRevokedSessions(sequelize), SignInThrottle: defineSignInThrottle(sequelize),
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

/** The most entries about one person the gateway returns in one answer (newest kept). */
export const PERSON_ENTRIES_LIMIT = 2000;

/**
 * The gateway's entries about one person (docs/PROTOCOL.md §3.10): those whose subject is one of
 * the person's codes (every municipality's code on the person's link: registrations, routed
 * queries and their answers, trail requests, correction relays), and the consent revocations and
 * their relays of the consent ids those entries carry (a revocation names no subject, only the
 * consent; the gateway pairs them only with consents it already saw with these codes). Oldest first.
 */
export async function entriesAboutPerson(log: AccessLogModel, codes: string[], transaction?: Transaction): Promise<{ entries: AccessEntryView[]; truncated: boolean }> {
  if (codes.length === 0) return { entries: [], truncated: false };
  const bySubject = await log.findAll({ where: { subject: { [Op.in]: codes } }, order: [['seq', 'DESC']], limit: PERSON_ENTRIES_LIMIT + 1, raw: true, transaction });
  const consentIds = [...new Set(bySubject.flatMap((r) => (r.consentId ? [r.consentId] : [])))];
  const revocations = consentIds.length === 0 ? [] : await log.findAll({
    where: { subject: null, consentId: { [Op.in]: consentIds }, action: { [Op.in]: [GatewayActions.CONSENT_REVOCATION_RECORD, GatewayActions.CONSENT_REVOCATION_RELAY] } },
    order: [['seq', 'DESC']], limit: PERSON_ENTRIES_LIMIT + 1, raw: true, transaction,
  });
  // A consent id is the requester's own: a revocation by another municipality with the same id is not this person's.
  const askers = new Map(bySubject.flatMap((r) => (r.consentId ? [[r.consentId, r.actingMunicipality] as const] : [])));
  const all = [...bySubject, ...revocations.filter((r) => askers.get(r.consentId!) === r.actingMunicipality)].sort((a, b) => Number(a.seq) - Number(b.seq));
  const truncated = all.length > PERSON_ENTRIES_LIMIT;
  return { entries: all.slice(-PERSON_ENTRIES_LIMIT).map(toEntryView), truncated };
}
