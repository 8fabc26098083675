import type { RequestHandler } from 'express';
import { authenticateSession, requireRole as requireAnyRole, staffActorOf, type StaffActor } from '../../../shared/staff/auth.ts';
import type { MunicipalityContext } from '../context.ts';
import type { Actor, Role } from './roles.ts';
import { staffSessions } from './service.ts';

export { SESSION_COOKIE } from '../../../shared/staff/auth.ts';

/** Verifies the session token (bearer header or httpOnly cookie) for this municipality. */
export function authenticate(ctx: MunicipalityContext): RequestHandler {
  return authenticateSession(staffSessions(ctx));
}

/** Lets a request through only for the listed roles (after `authenticate`). */
export const requireRole = (...roles: Role[]): RequestHandler => requireAnyRole(...roles);

/** The actor of an authenticated request (routes behind `authenticate` only; its role was checked against ROLES). */
export const actorOf = (req: { actor?: StaffActor }): Actor => staffActorOf(req) as Actor;
