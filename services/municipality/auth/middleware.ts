import type { RequestHandler } from 'express';
import { verifySession } from '../../../shared/crypto.ts';
import { forbidden, unauthorized } from '../../../shared/errors.ts';
import type { MunicipalityContext } from '../context.ts';
import { isRole, type Actor, type Role } from './roles.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified staff principal of this request; set by `authenticate`. */
      actor?: Actor;
    }
  }
}

export const SESSION_COOKIE = 'hikitsugi_session';

function tokenFrom(header: string | undefined, cookies: string | undefined): string | undefined {
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  for (const part of (cookies ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === SESSION_COOKIE) return value.join('=');
  }
  return undefined;
}

/** Verifies the session token (bearer header or httpOnly cookie) for this municipality. */
export function authenticate(ctx: MunicipalityContext): RequestHandler {
  return async (req, _res, next) => {
    const token = tokenFrom(req.get('authorization'), req.get('cookie'));
    if (!token) throw unauthorized();
    const claims = await verifySession(ctx.config.SESSION_SECRET, token, ctx.config.MUNICIPALITY_CODE);
    if (!isRole(claims.role)) throw unauthorized('Session token carries an unknown role');
    req.actor = { staffId: claims.sub, role: claims.role, municipality: claims.municipality };
    next();
  };
}

/** Lets a request through only for the listed roles (after `authenticate`). */
export function requireRole(...roles: Role[]): RequestHandler {
  return (req, _res, next) => {
    if (!req.actor) throw unauthorized();
    if (!roles.includes(req.actor.role)) throw forbidden(`This action needs the role ${roles.join(' or ')}`);
    next();
  };
}

/** The actor of an authenticated request (routes behind `authenticate` only). */
export function actorOf(req: { actor?: Actor }): Actor {
  if (!req.actor) throw unauthorized();
  return req.actor;
}
