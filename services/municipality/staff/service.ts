import { createStaffAccount, type StaffSessions, type StaffView } from '../../../shared/staff/auth.ts';
import { appendAccess } from '../../../shared/access-log/chain.ts';
import type { MunicipalityContext } from '../context.ts';
import { ROLES } from './roles.ts';
import type { CreateStaffInput } from './schemas.ts';

/** This municipality's staff sessions: its own tables, secret, roles, log and sign-in limits. */
export const staffSessions = (ctx: MunicipalityContext): StaffSessions => ({
  sequelize: ctx.sequelize, Staff: ctx.models.Staff, RevokedSessions: ctx.models.RevokedSession, SignInThrottle: ctx.models.SignInThrottle,
  appendLog: (t, entry) => appendAccess(ctx.models.AccessLog, t, entry), secret: ctx.config.SESSION_SECRET, member: ctx.config.MUNICIPALITY_CODE,
  ttlSeconds: ctx.config.SESSION_TTL_SECONDS, roles: ROLES, logger: ctx.logger, signIn: ctx.config,
});

export const createStaff = (ctx: MunicipalityContext, input: CreateStaffInput): Promise<StaffView> => createStaffAccount(ctx.models.Staff, input);
