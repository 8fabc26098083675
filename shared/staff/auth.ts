/**
 * Staff accounts and sessions, for every member that has staff: a municipality (clerks, privacy
 * officers, operators, admins) and the gateway (its own privacy officers). Passwords are scrypt
 * hashes; a session is a short-lived HS256 token bound to one member (issuer = audience = member
 * id), sent as a bearer header or an httpOnly SameSite cookie (DESIGN.md §6). Each member passes
 * its own secret, member id and role list: nothing here is module-level state.
 */
import { randomUUID } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';
import { z } from 'zod';
import { hashPassword, signSession, verifyPassword, verifySession } from '../crypto.ts';
import { AppError, conflict, forbidden, notFound, unauthorized } from '../platform/errors.ts';
import { freeText, parseInput, withoutMyNumber } from '../platform/validation.ts';

/** The principal of one staff request, built from a verified session token. */
export interface StaffActor {
  staffId: string;
  role: string;
  /** The member the session belongs to: a municipality code, or `gateway`. */
  municipality: string;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified staff principal of this request; set by `authenticateSession`. */
      actor?: StaffActor;
    }
  }
}

export const SESSION_COOKIE = 'hikitsugi_session';

/* ---------- accounts ---------- */

export class StaffRow extends Model<InferAttributes<StaffRow>, InferCreationAttributes<StaffRow>> {
  declare id: string;
  declare username: string;
  declare displayName: string;
  declare role: string;
  declare passwordHash: string;
  declare active: CreationOptional<boolean>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** The staff table of one member's database (a fresh class per database). */
export function defineStaffModel(sequelize: Sequelize) {
  class Staff extends StaffRow {}
  Staff.init(
    {
      id: { type: DataTypes.STRING(36), primaryKey: true },
      username: { type: DataTypes.STRING(64), allowNull: false, unique: true },
      displayName: { type: DataTypes.STRING(100), allowNull: false },
      role: { type: DataTypes.STRING(32), allowNull: false },
      passwordHash: { type: DataTypes.STRING(200), allowNull: false },
      active: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
      createdAt: DataTypes.DATE,
      updatedAt: DataTypes.DATE,
    },
    { sequelize, tableName: 'staff' },
  );
  return Staff;
}

export type StaffModel = ReturnType<typeof defineStaffModel>;

/** What the rest of a member sees of a staff member: never the password hash. */
export interface StaffView {
  id: string;
  username: string;
  displayName: string;
  role: string;
  active: boolean;
}

const toView = (row: StaffRow | InferAttributes<StaffRow>): StaffView => ({
  id: row.id, username: row.username, displayName: row.displayName, role: row.role, active: Boolean(row.active),
});

export async function findStaffForLogin(Staff: StaffModel, username: string) {
  const row = await Staff.findOne({ where: { username }, raw: true });
  return row ? { ...toView(row), passwordHash: row.passwordHash } : null;
}

export async function findStaffById(Staff: StaffModel, id: string): Promise<StaffView | null> {
  const row = await Staff.findByPk(id, { raw: true });
  return row ? toView(row) : null;
}

export async function insertStaff(Staff: StaffModel, staff: Omit<StaffView, 'active'> & { passwordHash: string }, transaction?: Transaction): Promise<StaffView> {
  const row = await Staff.create(staff, { transaction });
  return toView(row);
}

export async function listStaff(Staff: StaffModel): Promise<StaffView[]> {
  return (await Staff.findAll({ raw: true, order: [['username', 'ASC']] })).map(toView);
}

export const loginSchema = z.object({
  username: z.string().min(1, 'is required').max(64, 'must be at most 64 characters'),
  password: z.string().min(1, 'is required').max(200, 'must be at most 200 characters'),
}).strict();

/** A new account's fields; `roles` is the member's own role list. */
export const staffAccountSchema = <R extends readonly [string, ...string[]]>(roles: R) => z.object({
  username: z.string().regex(/^[a-z0-9._-]{3,64}$/, 'must be 3–64 lowercase letters, digits, dot, underscore or hyphen').superRefine(withoutMyNumber),
  displayName: freeText({ max: 100 }),
  role: z.enum(roles, { error: `must be one of ${roles.join(', ')}` }),
  password: z.string().min(12, 'must be at least 12 characters').max(200, 'must be at most 200 characters'),
}).strict();

export interface StaffAccountInput {
  username: string;
  displayName: string;
  role: string;
  password: string;
}

/** Creates an account (input already validated); a taken username is a 409. */
export async function createStaffAccount(Staff: StaffModel, input: StaffAccountInput): Promise<StaffView> {
  const existing = await findStaffForLogin(Staff, input.username);
  if (existing) throw conflict('duplicate-username', 'Username already exists', { field: 'username', rule: 'must be unique' });
  return insertStaff(Staff, {
    id: randomUUID(), username: input.username, displayName: input.displayName, role: input.role,
    passwordHash: await hashPassword(input.password),
  });
}

/* ---------- sessions ---------- */

/** What one member's staff sessions need: its staff table, secret, id, lifetime and roles. */
export interface StaffSessions {
  Staff: StaffModel;
  secret: Buffer;
  /** The member id sessions are bound to (a municipality code, or `gateway`). */
  member: string;
  ttlSeconds: number;
  roles: readonly string[];
  logger: Logger;
}

// Verifying against a fixed hash when the user is unknown keeps the timing of both failures alike.
const UNKNOWN_USER_HASH = 'scrypt$16384$8$1$I6txYubOidvFpkWjf7W2MQ$JXoWozPUzkca5BIgG08wVS1KRldLxkgU3m430FgIX-s';

export async function loginStaff(s: StaffSessions, username: string, password: string) {
  const staff = await findStaffForLogin(s.Staff, username);
  const ok = await verifyPassword(password, staff?.passwordHash ?? UNKNOWN_USER_HASH);
  if (!staff || !ok || !staff.active) {
    s.logger.warn({ username }, 'login refused');
    throw new AppError(401, 'invalid-credentials', 'Unknown user or wrong password');
  }
  const token = await signSession(s.secret, { sub: staff.id, role: staff.role, municipality: s.member }, s.ttlSeconds);
  const { passwordHash: _omit, ...view } = staff;
  return { token, expiresIn: s.ttlSeconds, staff: view };
}

function tokenFrom(header: string | undefined, cookies: string | undefined): string | undefined {
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  for (const part of (cookies ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === SESSION_COOKIE) return value.join('=');
  }
  return undefined;
}

/** Verifies the session token (bearer header or httpOnly cookie) for this member and sets `req.actor`. */
export function authenticateSession(s: Pick<StaffSessions, 'secret' | 'member' | 'roles'>): RequestHandler {
  return async (req, _res, next) => {
    const token = tokenFrom(req.get('authorization'), req.get('cookie'));
    if (!token) throw unauthorized();
    const claims = await verifySession(s.secret, token, s.member);
    if (!s.roles.includes(claims.role)) throw unauthorized('Session token carries an unknown role');
    req.actor = { staffId: claims.sub, role: claims.role, municipality: claims.municipality };
    next();
  };
}

/** Lets a request through only for the listed roles (after `authenticateSession`). */
export function requireRole(...roles: string[]): RequestHandler {
  return (req, _res, next) => {
    if (!req.actor) throw unauthorized();
    if (!roles.includes(req.actor.role)) throw forbidden(`This action needs the role ${roles.join(' or ')}`);
    next();
  };
}

/** The actor of an authenticated request (routes behind `authenticateSession` only). */
export function staffActorOf(req: { actor?: StaffActor }): StaffActor {
  if (!req.actor) throw unauthorized();
  return req.actor;
}

/**
 * POST /auth/login, POST /auth/logout and GET /auth/me for one member. `me` adds member-specific
 * fields to the account view (listed fields only).
 */
export function staffAuthRoutes(s: StaffSessions, me: (staff: StaffView) => Record<string, unknown> = () => ({})): Router {
  const router = Router();

  router.post('/auth/login', async (req, res) => {
    const { username, password } = parseInput(loginSchema, req.body);
    const session = await loginStaff(s, username, password);
    res.cookie(SESSION_COOKIE, session.token, {
      httpOnly: true, sameSite: 'strict', path: '/', maxAge: session.expiresIn * 1000, secure: req.secure,
    });
    res.json(session);
  });

  router.post('/auth/logout', (_req, res) => {
    res.clearCookie(SESSION_COOKIE, { path: '/' });
    res.status(204).end();
  });

  router.get('/auth/me', authenticateSession(s), async (req, res) => {
    const staff = await findStaffById(s.Staff, staffActorOf(req).staffId);
    if (!staff) throw notFound('Staff member');
    res.json({ id: staff.id, username: staff.username, displayName: staff.displayName, role: staff.role, active: staff.active, municipality: s.member, ...me(staff) });
  });

  return router;
}
