import { createStaffAccount, loginStaff, type StaffSessions, type StaffView } from '../../../shared/staff/auth.ts';
import type { MunicipalityContext } from '../context.ts';
import { ROLES } from './roles.ts';
import type { CreateStaffInput } from './schemas.ts';

/** This municipality's staff sessions: its own table, secret and roles. */
export const staffSessions = (ctx: MunicipalityContext): StaffSessions => ({
  Staff: ctx.models.Staff, secret: ctx.config.SESSION_SECRET, member: ctx.config.MUNICIPALITY_CODE,
  ttlSeconds: ctx.config.SESSION_TTL_SECONDS, roles: ROLES, logger: ctx.logger,
});

export const login = (ctx: MunicipalityContext, username: string, password: string) => loginStaff(staffSessions(ctx), username, password);

export const createStaff = (ctx: MunicipalityContext, input: CreateStaffInput): Promise<StaffView> => createStaffAccount(ctx.models.Staff, input);
