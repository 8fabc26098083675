import type { Transaction } from 'sequelize';
import { appendAccessBatch, type AccessInput, type AccessLogModel } from '../../shared/audit.ts';
import type { Member } from '../../shared/member-http.ts';

export type MemberAccess = Omit<AccessInput, 'actorType' | 'actorId' | 'actorRole'>;

/**
 * Logs what a federation member (identified by its certificate) did at the gateway or the
 * issuer, in the transaction of the access. Metadata only: subjects are codes, never a My
 * Number, a name or a birth date.
 */
export function logMemberAccess(log: AccessLogModel, t: Transaction, member: Member, entries: MemberAccess[]) {
  return appendAccessBatch(log, t, entries.map((entry) => ({
    ...entry,
    actorType: 'member' as const,
    actorId: member.id,
    actorRole: member.kind,
  })));
}
