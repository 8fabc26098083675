import type { Transaction } from 'sequelize';
import { inTransaction } from '../platform/db.ts';
import type { Member } from '../federation/member-http.ts';
import { appendAccessBatch, type AccessInput, type AccessLogModel } from './chain.ts';

export type MemberAccess = Omit<AccessInput, 'actorType' | 'actorId' | 'actorRole'>;

/**
 * Logs what a federation member (identified by its certificate) did at the gateway or the
 * issuer, in the transaction of the access. Metadata only: subjects are codes, never a My
 * Number, a name or a birth date (DESIGN.md §5).
 */
export function logMemberAccess(log: AccessLogModel, t: Transaction, member: Pick<Member, 'id'> & Partial<Pick<Member, 'kind'>>, entries: MemberAccess[]) {
  return appendAccessBatch(log, t, entries.map((entry) => ({
    ...entry,
    actorType: 'member' as const,
    actorId: member.id,
    actorRole: member.kind,
  })));
}

/**
 * Logs a member's request refused as a whole (one denied entry), in a transaction of its own:
 * the refused request wrote nothing else. A failed append is not swallowed: it fails the request,
 * as an access whose log append fails does not happen (DESIGN.md §5).
 */
export async function logMemberRefusal(log: AccessLogModel, member: Pick<Member, 'id'> & Partial<Pick<Member, 'kind'>>, entry: Omit<MemberAccess, 'outcome'>): Promise<void> {
  await inTransaction(log.sequelize!, (t) => logMemberAccess(log, t, member, [{ ...entry, outcome: 'denied' }]));
}
