import type { Transaction } from 'sequelize';
import type { Member } from '../federation/member-http.ts';
import { appendAccessBatch, type AccessInput, type AccessLogModel } from './chain.ts';

export type MemberAccess = Omit<AccessInput, 'actorType' | 'actorId' | 'actorRole'>;

/**
 * Logs what a federation member (identified by its certificate) did at the gateway or the
 * issuer, in the transaction of the access. Metadata only: subjects are codes, never a My
 * Number, a name or a birth date (DESIGN.md §5).
 */
export function logMemberAccess(log: AccessLogModel, t: Transaction, member: Member, entries: MemberAccess[]) {
  return appendAccessBatch(log, t, entries.map((entry) => ({
    ...entry,
    actorType: 'member' as const,
    actorId: member.id,
    actorRole: member.kind,
  })));
}
