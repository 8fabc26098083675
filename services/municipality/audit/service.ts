import type { Transaction } from 'sequelize';
import { appendAccess, type AccessInput } from '../../../shared/audit.ts';
import type { Actor } from '../auth/roles.ts';
import type { MunicipalityContext } from '../context.ts';

export type StaffAccess = Omit<AccessInput, 'actorType' | 'actorId' | 'actorRole' | 'actingMunicipality'>;

/**
 * Logs a staff member's access to resident data at this municipality, in the transaction of
 * the access itself. Subjects are addressee numbers (local), never My Numbers.
 */
export function logStaffAccess(ctx: MunicipalityContext, t: Transaction, actor: Actor, entry: StaffAccess) {
  return appendAccess(ctx.models.AccessLog, t, {
    ...entry,
    actorType: 'staff',
    actorId: actor.staffId,
    actorRole: actor.role,
    actingMunicipality: ctx.config.MUNICIPALITY_CODE,
  });
}
