/**
 * The gateway's own staff: privacy officers who read, verify and export the gateway's access log
 * at its console, on a small plain-HTTP port bound to 127.0.0.1 (STAFF_PORT). Accounts, sessions
 * and the console are the same code the municipalities use (shared/staff/auth.ts,
 * shared/access-log/console.ts); only the role list and the log are the gateway's.
 */
import type { Express, Router } from 'express';
import type { Logger } from 'pino';
import { auditConsoleRoutes } from '../../shared/access-log/console.ts';
import { appendAccess } from '../../shared/access-log/chain.ts';
import { openDatabase, type DatabaseOptions } from '../../shared/platform/db.ts';
import { prepareGatewaySchema } from '../migrations/index.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import {
  authenticateSession, createStaffAccount, defineStaffModel, findStaffForLogin, requireRole, staffAccountSchema, staffAdminRoutes, staffAuthRoutes,
  type StaffSessions, type StaffView,
} from '../../shared/staff/auth.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import { GATEWAY_ID } from '../../shared/federation/protocol.ts';
import type { GatewayContext } from '../context.ts';
import { gatewayConsole } from './service.ts';

/** A gateway privacy officer reads the gateway's log; an admin only holds accounts. Neither reads anything else. */
export const GATEWAY_STAFF_ROLES = ['privacy_officer', 'admin'] as const;

export const gatewayStaffAccountSchema = staffAccountSchema(GATEWAY_STAFF_ROLES);

export function gatewayStaffSessions(ctx: GatewayContext): StaffSessions {
  if (!ctx.config.SESSION_SECRET) throw new Error('SESSION_SECRET is required for the gateway staff port');
  return {
    sequelize: ctx.sequelize, Staff: ctx.models.Staff, RevokedSessions: ctx.models.RevokedSession, SignInThrottle: ctx.models.SignInThrottle,
    appendLog: (t, entry) => appendAccess(ctx.models.AccessLog, t, entry), secret: ctx.config.SESSION_SECRET, member: GATEWAY_ID, ttlSeconds: ctx.config.SESSION_TTL_SECONDS,
    roles: GATEWAY_STAFF_ROLES, logger: ctx.logger, signIn: ctx.config,
  };
}

/**
 * The staff app: login, the console page and the log API for privacy officers, and the routes
 * app.ts adds for the same sessions (the alerts).
 */
export function createGatewayStaffApp(ctx: GatewayContext, moreRoutes: (sessions: StaffSessions) => Router[]): Express {
  const sessions = gatewayStaffSessions(ctx);
  const app = createBaseApp(ctx.logger, { transport: 'plain-http' });
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', member: GATEWAY_ID, staff: true });
  });
  // The console hides reconciliation here: it runs at a municipality, against the gateway's entries.
  // The gateway's log names residents by code only, and holds no names to search.
  app.use(staffAuthRoutes(sessions, () => ({ reconcile: false, subjects: 'code', residentSearch: false })));
  app.use(auditConsoleRoutes(gatewayConsole(ctx), [authenticateSession(sessions), requireRole('privacy_officer')]));
  for (const routes of moreRoutes(sessions)) app.use(routes);
  app.use(staffAdminRoutes(sessions, [authenticateSession(sessions), requireRole('admin')]));
  app.use(notFoundHandler);
  app.use(errorHandler(ctx.logger));
  return app;
}

/**
 * Creates gateway staff accounts in the gateway's database (the CLI and the local
 * federation launcher); existing usernames are left as they are. Input is validated like an API body.
 */
export async function seedGatewayStaff(database: DatabaseOptions, accounts: unknown[], logger?: Logger): Promise<StaffView[]> {
  const sequelize = await openDatabase(database);
  try {
    await prepareGatewaySchema(sequelize);
    const Staff = defineStaffModel(sequelize);
    const created: StaffView[] = [];
    for (const account of accounts) {
      const input = parseInput(gatewayStaffAccountSchema, account);
      if (await findStaffForLogin(Staff, input.username)) continue;
      created.push(await createStaffAccount(Staff, input));
      logger?.info({ username: input.username, role: input.role }, 'gateway staff account created');
    }
    return created;
  } finally {
    await sequelize.close();
  }
}
