/**
 * Staff accounts and sessions, for every member that has staff: a municipality (clerks, privacy
 * officers, operators, admins) and the gateway (its own privacy officers). Passwords are scrypt
 * hashes; a session is a short-lived HS256 token bound to one member (issuer = audience = member
 * id), sent as a bearer header or an httpOnly SameSite cookie (docs/DESIGN.md §6.4). Each member passes
 * its own secret, member id and role list: nothing here is module-level state.
 *
 * Every request re-checks its session against the member's database (ASVS 5.0 §7): the staff row
 * by primary key (unknown or disabled: refused; a password change moves `sessionVersion` on,
 * ending every older session) and the revocation list of token ids ended by logout. Sign-ins,
 * lockouts, unlocks, logouts, password changes and disabling are accesses: each is one entry of
 * the member's access log, which never holds a password, and names an account only by its staff
 * id (an unknown name only by a keyed hash: it may be a My Number typed in the wrong field).
 */
import { randomUUID } from 'node:crypto';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { DataTypes, Model, Op, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';
import { z } from 'zod';
import { CLOCK_SKEW_SECONDS, hashPassword, signSession, verifyPassword, verifySession, type VerifiedSession } from '../crypto.ts';
import { rememberOnce } from '../federation/replay.ts';
import { StaffActions } from './actions.ts';
import { inTransaction } from '../platform/db.ts';
import { AppError, badRequest, conflict, forbidden, notFound, unauthorized } from '../platform/errors.ts';
import { freeText, parseInput, withoutMyNumber } from '../platform/validation.ts';
import {
  accountFailed, accountKey, addressFailed, addressKey, addressRetryAfter, CLEARED, lockInForce, lockThrottle, nameKey, readThrottle, saveThrottle,
  type SignInSettings, type SignInThrottleModel,
} from './sign-in.ts';

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
      /** The verified session token of this request (its id and expiry, for logout). */
      staffSession?: VerifiedSession;
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
  /** Moves on at each password change: sessions signed under an older version are refused. */
  declare sessionVersion: CreationOptional<number>;
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
      sessionVersion: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
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
  return row ? { ...toView(row), passwordHash: row.passwordHash, sessionVersion: Number(row.sessionVersion ?? 0) } : null;
}

/** Display names of the given staff ids (ids not found are left out): how consoles name an actor. */
export async function staffDisplayNames(Staff: StaffModel, ids: string[], transaction?: Transaction): Promise<Map<string, string>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const rows = await Staff.findAll({ where: { id: { [Op.in]: unique } }, attributes: ['id', 'displayName'], raw: true, transaction });
  return new Map(rows.map((r) => [r.id, r.displayName]));
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
const newPassword = z.string().min(12, 'must be at least 12 characters').max(200, 'must be at most 200 characters');

export const staffAccountSchema = <R extends readonly [string, ...string[]]>(roles: R) => z.object({
  username: z.string().regex(/^[a-z0-9._-]{3,64}$/, 'must be 3–64 lowercase letters, digits, dot, underscore or hyphen').superRefine(withoutMyNumber),
  displayName: freeText({ max: 100 }),
  role: z.enum(roles, { error: `must be one of ${roles.join(', ')}` }),
  password: newPassword,
}).strict();

/** POST /auth/password: the current password again (ASVS 5.0 §6.2), and the new one. */
export const passwordChangeSchema = z.object({
  currentPassword: z.string().min(1, 'is required').max(200, 'must be at most 200 characters'),
  newPassword,
}).strict();

const staffIdParams = z.object({ id: z.uuid({ error: 'must be a staff id (UUID)' }) });

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

/* ---------- revoked sessions ---------- */

export const REVOKED_SESSIONS_TABLE = 'revoked_sessions';

/** Token ids ended before their expiry (logout); a row is dropped once its token expired anyway. */
export class RevokedSessionRow extends Model<InferAttributes<RevokedSessionRow>, InferCreationAttributes<RevokedSessionRow>> {
  declare jti: string;
  declare staffId: string;
  declare reason: string;
  /** The token's own expiry (ISO): after it, the row carries no information. */
  declare expiresAt: string;
  declare revokedAt: string;
  declare createdAt: CreationOptional<Date>;
}

export type RevokedSessionModel = typeof RevokedSessionRow;

export function defineRevokedSessions(sequelize: Sequelize): RevokedSessionModel {
  class RevokedSession extends RevokedSessionRow {}
  RevokedSession.init({
    jti: { type: DataTypes.STRING(64), primaryKey: true },
    staffId: { type: DataTypes.STRING(36), allowNull: false },
    reason: { type: DataTypes.STRING(32), allowNull: false },
    expiresAt: { type: DataTypes.STRING(30), allowNull: false },
    revokedAt: { type: DataTypes.STRING(30), allowNull: false },
    createdAt: DataTypes.DATE,
  }, { sequelize, tableName: REVOKED_SESSIONS_TABLE, updatedAt: false, indexes: [{ name: 'revoked_sessions_expires_at', fields: ['expiresAt'] }] });
  return RevokedSession;
}

/* ---------- sessions ---------- */

/** What one member's staff sessions need: its tables, secret, id, lifetime, roles, log and limits. */
export interface StaffSessions {
  sequelize: Sequelize;
  Staff: StaffModel;
  RevokedSessions: RevokedSessionModel;
  SignInThrottle: SignInThrottleModel;
  /** The member's one access-log append, passed in (staff sits below the access log, DESIGN.md §8.2). */
  appendLog: (t: Transaction, entry: StaffEvent) => Promise<unknown>;
  secret: Buffer;
  /** The member id sessions are bound to (a municipality code, or `gateway`). */
  member: string;
  /** A session's lifetime; a token claiming a longer one is refused. */
  ttlSeconds: number;
  roles: readonly string[];
  logger: Logger;
  signIn: SignInSettings;
}

// Verifying against a fixed hash when the user is unknown keeps the timing of both failures alike.
const UNKNOWN_USER_HASH = 'scrypt$16384$8$1$I6txYubOidvFpkWjf7W2MQ$JXoWozPUzkca5BIgG08wVS1KRldLxkgU3m430FgIX-s';

/** Who a staff event is about: the account when the name is known, else only the keyed hash of the name. */
interface EventActor {
  staffId: string | null;
  role: string | null;
  name?: string;
}

/** A staff event as the member's access log records it (a subset of its entry). */
export interface StaffEvent {
  actorType: 'staff';
  actorId: string;
  actorRole: string | null;
  actingMunicipality: string;
  action: string;
  outcome: 'allowed' | 'denied';
  reason?: string | null;
  subject?: string | null;
  details: Record<string, unknown>;
}

/** One access-log entry for a staff event, in `t` (the member's one append). */
function logStaffEvent(s: StaffSessions, t: Transaction, who: EventActor, entry: Omit<StaffEvent, 'actorType' | 'actorId' | 'actorRole' | 'actingMunicipality' | 'details'> & { details?: Record<string, unknown> }) {
  return s.appendLog(t, {
    ...entry,
    actorType: 'staff', actorId: who.staffId ?? 'unknown', actorRole: who.role, actingMunicipality: s.member,
    details: { ...(who.name ? { name: who.name } : {}), ...entry.details },
  });
}

const lockedError = (until: Date | null, now: Date) => new AppError(423, 'account-locked', 'Account locked after repeated failed sign-ins', until
  ? { rule: 'try again after the lock ends', retryAfter: Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000)), lockedUntil: until.toISOString() }
  : { rule: 'an administrator must unlock the account' });

const invalidCredentials = () => new AppError(401, 'invalid-credentials', 'Unknown user or wrong password');

/**
 * Counts one failed attempt for a name and an address, in `t`, and logs it: as a lockout when it
 * is the attempt that locks the name, else as a refused `event`.
 */
async function recordFailure(s: StaffSessions, t: Transaction, o: { name: string; address: string; who: EventActor; action: string; reason: string; now: Date }) {
  const account = accountKey(s.secret, o.name);
  const failed = accountFailed(await lockThrottle(s.SignInThrottle, account, t), s.signIn, o.now);
  await saveThrottle(s.SignInThrottle, account, failed.state, t);
  await countAddressFailure(s, t, o.address, o.now);
  if (failed.locked) {
    await logStaffEvent(s, t, o.who, {
      action: StaffActions.STAFF_LOCKOUT, outcome: 'denied', reason: 'repeated-failures', subject: o.who.staffId,
      details: { address: o.address, lockCount: failed.locked.lockCount, lockedUntil: failed.locked.seconds === null ? null : failed.state.lockedUntil, untilUnlocked: failed.locked.seconds === null, after: o.action },
    });
  } else {
    await logStaffEvent(s, t, o.who, { action: o.action, outcome: 'denied', reason: o.reason, subject: o.who.staffId, details: { address: o.address, failures: failed.state.failures } });
  }
}

async function countAddressFailure(s: StaffSessions, t: Transaction, address: string, now: Date) {
  const key = addressKey(address);
  await saveThrottle(s.SignInThrottle, key, addressFailed(await lockThrottle(s.SignInThrottle, key, t), s.signIn, now), t);
}

/** Refuses with 423 while the name is locked (logged, and counted against the address). */
async function refuseIfLocked(s: StaffSessions, o: { name: string; address: string; who: EventActor; action: string; now: Date }) {
  const lock = lockInForce(await readThrottle(s.SignInThrottle, accountKey(s.secret, o.name)), o.now);
  if (!lock) return;
  await inTransaction(s.sequelize, async (t) => {
    await countAddressFailure(s, t, o.address, o.now);
    await logStaffEvent(s, t, o.who, { action: o.action, outcome: 'denied', reason: 'account-locked', subject: o.who.staffId, details: { address: o.address } });
  });
  throw lockedError(lock.until, o.now);
}

/**
 * Signs a staff member in from `address` (the client's socket address). In order: the address
 * over its failure limit (429), the name locked (423), then the password — checked against a
 * fixed hash when the name is unknown, so unknown names and wrong passwords cost the same and
 * answer the same (401 `invalid-credentials`), as does a disabled account.
 */
export async function signInStaff(s: StaffSessions, username: string, password: string, address: string) {
  const now = new Date();
  const name = nameKey(s.secret, username);
  const retryAfter = addressRetryAfter(await readThrottle(s.SignInThrottle, addressKey(address)), s.signIn, now);
  if (retryAfter > 0) {
    await inTransaction(s.sequelize, (t) => logStaffEvent(s, t, { staffId: null, role: null, name }, {
      action: StaffActions.STAFF_SIGN_IN, outcome: 'denied', reason: 'address-throttled', details: { address, retryAfter },
    }));
    throw new AppError(429, 'too-many-sign-in-attempts', 'Too many failed sign-ins from this address', {
      field: 'address', rule: `at most ${s.signIn.SIGNIN_ADDRESS_FAILURE_LIMIT} failed sign-ins per ${s.signIn.SIGNIN_ADDRESS_WINDOW_SECONDS} seconds per client address`, retryAfter,
    });
  }
  const staff = await findStaffForLogin(s.Staff, username);
  const who: EventActor = staff ? { staffId: staff.id, role: staff.role, name } : { staffId: null, role: null, name };
  await refuseIfLocked(s, { name: username, address, who, action: StaffActions.STAFF_SIGN_IN, now });
  const ok = await verifyPassword(password, staff?.passwordHash ?? UNKNOWN_USER_HASH);
  if (!staff || !ok || !staff.active) {
    const reason = !staff ? 'unknown-name' : !ok ? 'wrong-password' : 'account-disabled';
    await inTransaction(s.sequelize, (t) => recordFailure(s, t, { name: username, address, who, action: StaffActions.STAFF_SIGN_IN, reason, now }));
    s.logger.warn({ staffId: staff?.id ?? null, reason }, 'sign-in refused');
    throw invalidCredentials();
  }
  const account = accountKey(s.secret, username);
  const token = await inTransaction(s.sequelize, async (t) => {
    // A lock that landed while the password was being checked still holds.
    const lock = lockInForce(await lockThrottle(s.SignInThrottle, account, t), now);
    if (lock) return lock;
    await saveThrottle(s.SignInThrottle, account, CLEARED, t);
    await logStaffEvent(s, t, who, { action: StaffActions.STAFF_SIGN_IN, outcome: 'allowed', subject: staff.id, details: { address } });
    return signSession(s.secret, { sub: staff.id, role: staff.role, municipality: s.member, ver: staff.sessionVersion }, s.ttlSeconds);
  });
  if (typeof token !== 'string') throw lockedError(token.until, now);
  const { passwordHash: _omit, sessionVersion: _version, ...view } = staff;
  return { token, expiresIn: s.ttlSeconds, staff: view };
}

/** A session token from the bearer header, else from the named httpOnly cookie (a staff session's by default). */
export function tokenFrom(header: string | undefined, cookies: string | undefined, cookie = SESSION_COOKIE): string | undefined {
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  for (const part of (cookies ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === cookie) return value.join('=');
  }
  return undefined;
}

const sessionRefused = (code: string, message: string) => new AppError(401, code, message);

/**
 * A session token checked end to end: the token itself (signature, member, expiry, lifetime,
 * issue time), then the database — not logged out, the account known, active, with the role
 * and session version the token carries.
 */
export async function checkSession(s: StaffSessions, token: string): Promise<{ actor: StaffActor; session: VerifiedSession }> {
  const claims = await verifySession(s.secret, token, s.member, s.ttlSeconds);
  if (!s.roles.includes(claims.role)) throw sessionRefused('session-invalid', 'Session token carries an unknown role');
  const [revoked, staff] = await Promise.all([
    s.RevokedSessions.findByPk(claims.jti, { attributes: ['jti'], raw: true }),
    s.Staff.findByPk(claims.sub, { attributes: ['id', 'role', 'active', 'sessionVersion'], raw: true }),
  ]);
  if (revoked) throw sessionRefused('session-logged-out', 'Session ended at logout: sign in again');
  if (!staff) throw sessionRefused('session-staff-unknown', 'Session of an account this member does not have');
  if (!staff.active) throw sessionRefused('session-staff-disabled', 'Session of a disabled account');
  if (Number(staff.sessionVersion) !== claims.ver) throw sessionRefused('session-password-changed', 'Session ended by a password change: sign in again');
  if (staff.role !== claims.role) throw sessionRefused('session-invalid', 'Session token carries a role the account no longer has');
  return { actor: { staffId: claims.sub, role: claims.role, municipality: claims.municipality }, session: claims };
}

/**
 * Verifies the session (bearer header or httpOnly cookie) for this member and sets `req.actor`.
 * Once per request: a route guarded twice (a limiter mounted on several paths before the route's
 * own guard) reads the revocation list and the account once.
 */
export function authenticateSession(s: StaffSessions): RequestHandler {
  return async (req, _res, next) => {
    if (req.actor && req.staffSession) return next();
    const token = tokenFrom(req.get('authorization'), req.get('cookie'));
    if (!token) throw unauthorized();
    const { actor, session } = await checkSession(s, token);
    req.actor = actor;
    req.staffSession = session;
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

/** Ends one session: its token id joins the revocation list until it would have expired anyway. */
async function endSession(s: StaffSessions, actor: StaffActor, session: VerifiedSession, address: string) {
  const now = new Date();
  await inTransaction(s.sequelize, async (t) => {
    await rememberOnce(s.RevokedSessions, {
      jti: session.jti, staffId: actor.staffId, reason: 'logout', expiresAt: new Date(session.exp * 1000).toISOString(), revokedAt: now.toISOString(),
    }, t);
    // Rows of tokens past their expiry (and the skew) refuse nothing the expiry does not.
    await s.RevokedSessions.destroy({ where: { expiresAt: { [Op.lt]: new Date(now.getTime() - CLOCK_SKEW_SECONDS * 1000).toISOString() } }, transaction: t });
    await logStaffEvent(s, t, { staffId: actor.staffId, role: actor.role }, { action: StaffActions.STAFF_SIGN_OUT, outcome: 'allowed', subject: actor.staffId, details: { address } });
  });
}

const clearSessionCookie = (res: Response) => res.clearCookie(SESSION_COOKIE, { path: '/' });
const addressOf = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? 'unknown';

/** Changes the actor's own password (the current one checked and throttled like a sign-in); every session of theirs ends. */
export async function changeOwnPassword(s: StaffSessions, actor: StaffActor, input: z.infer<typeof passwordChangeSchema>, address: string) {
  const now = new Date();
  const row = await s.Staff.findByPk(actor.staffId, { raw: true });
  if (!row) throw notFound('Staff member');
  const who: EventActor = { staffId: row.id, role: row.role };
  await refuseIfLocked(s, { name: row.username, address, who, action: StaffActions.STAFF_PASSWORD_CHANGE, now });
  if (!(await verifyPassword(input.currentPassword, row.passwordHash))) {
    await inTransaction(s.sequelize, (t) => recordFailure(s, t, { name: row.username, address, who, action: StaffActions.STAFF_PASSWORD_CHANGE, reason: 'wrong-password', now }));
    throw new AppError(403, 'wrong-password', 'The current password is wrong', { field: 'currentPassword', rule: 'must be the account\'s current password' });
  }
  if (input.newPassword === input.currentPassword) throw badRequest('newPassword', 'must differ from the current password');
  const passwordHash = await hashPassword(input.newPassword);
  await inTransaction(s.sequelize, async (t) => {
    await s.Staff.update({ passwordHash, sessionVersion: Number(row.sessionVersion) + 1 }, { where: { id: row.id }, transaction: t });
    await saveThrottle(s.SignInThrottle, accountKey(s.secret, row.username), CLEARED, t);
    await logStaffEvent(s, t, who, { action: StaffActions.STAFF_PASSWORD_CHANGE, outcome: 'allowed', subject: row.id, details: { address, sessionsEnded: true } });
  });
}

/**
 * POST /auth/login, POST /auth/logout, POST /auth/password and GET /auth/me for one member.
 * `me` adds member-specific fields to the account view (listed fields only).
 */
export function staffAuthRoutes(s: StaffSessions, me: (staff: StaffView) => Record<string, unknown> = () => ({})): Router {
  const router = Router();

  router.post('/auth/login', async (req, res) => {
    const { username, password } = parseInput(loginSchema, req.body);
    try {
      const session = await signInStaff(s, username, password, addressOf(req));
      res.cookie(SESSION_COOKIE, session.token, {
        httpOnly: true, sameSite: 'strict', path: '/', maxAge: session.expiresIn * 1000, secure: req.secure,
      });
      res.json(session);
    } catch (err) {
      if (err instanceof AppError && typeof err.extra.retryAfter === 'number') res.setHeader('Retry-After', String(err.extra.retryAfter));
      throw err;
    }
  });

  // Without a valid session there is nothing to end: the cookie is cleared all the same.
  router.post('/auth/logout', async (req, res) => {
    const token = tokenFrom(req.get('authorization'), req.get('cookie'));
    const checked = token ? await checkSession(s, token).catch((err: unknown) => {
      if (err instanceof AppError && err.status === 401) return undefined;
      throw err;
    }) : undefined;
    if (checked) await endSession(s, checked.actor, checked.session, addressOf(req));
    clearSessionCookie(res);
    res.status(204).end();
  });

  router.post('/auth/password', authenticateSession(s), async (req, res) => {
    const input = parseInput(passwordChangeSchema, req.body);
    try {
      await changeOwnPassword(s, staffActorOf(req), input, addressOf(req));
    } catch (err) {
      if (err instanceof AppError && typeof err.extra.retryAfter === 'number') res.setHeader('Retry-After', String(err.extra.retryAfter));
      throw err;
    }
    clearSessionCookie(res);
    res.status(204).end();
  });

  router.get('/auth/me', authenticateSession(s), async (req, res) => {
    const staff = await findStaffById(s.Staff, staffActorOf(req).staffId);
    if (!staff) throw notFound('Staff member');
    res.json({ id: staff.id, username: staff.username, displayName: staff.displayName, role: staff.role, active: staff.active, municipality: s.member, ...me(staff) });
  });

  return router;
}

/** An account's sign-in lock as an administrator sees it. */
export async function lockOf(s: StaffSessions, username: string): Promise<{ locked: boolean; lockedUntil: string | null; untilUnlocked: boolean }> {
  const state = await readThrottle(s.SignInThrottle, accountKey(s.secret, username));
  const lock = lockInForce(state, new Date());
  return { locked: Boolean(lock), lockedUntil: lock?.until?.toISOString() ?? null, untilUnlocked: Boolean(lock && lock.until === null) };
}

/**
 * POST /staff/:id/disable and POST /staff/:id/unlock for the member's administrators (behind
 * `guard`). Disabling ends the account's sessions at once (each request checks the row); nothing
 * is deleted. Both are logged as the administrator's act.
 */
export function staffAdminRoutes(s: StaffSessions, guard: RequestHandler[]): Router {
  const router = Router();

  router.post('/staff/:id/disable', ...guard, async (req, res) => {
    const { id } = parseInput(staffIdParams, req.params, 'path');
    const admin = staffActorOf(req);
    if (id === admin.staffId) throw conflict('cannot-disable-self', 'An administrator cannot disable their own account', { field: 'id', rule: 'must be another staff member' });
    const view = await inTransaction(s.sequelize, async (t) => {
      const row = await s.Staff.findByPk(id, { transaction: t });
      if (!row) throw notFound('Staff member');
      const wasActive = Boolean(row.active);
      if (wasActive) await s.Staff.update({ active: false }, { where: { id }, transaction: t });
      await logStaffEvent(s, t, { staffId: admin.staffId, role: admin.role }, { action: StaffActions.STAFF_DISABLE, outcome: 'allowed', subject: id, details: { wasActive, address: addressOf(req) } });
      return { ...toView(row), active: false };
    });
    res.json(view);
  });

  router.post('/staff/:id/unlock', ...guard, async (req, res) => {
    const { id } = parseInput(staffIdParams, req.params, 'path');
    const admin = staffActorOf(req);
    const row = await s.Staff.findByPk(id, { raw: true });
    if (!row) throw notFound('Staff member');
    const before = await lockOf(s, row.username);
    await inTransaction(s.sequelize, async (t) => {
      const key = accountKey(s.secret, row.username);
      await lockThrottle(s.SignInThrottle, key, t);
      await saveThrottle(s.SignInThrottle, key, CLEARED, t);
      await logStaffEvent(s, t, { staffId: admin.staffId, role: admin.role }, { action: StaffActions.STAFF_UNLOCK, outcome: 'allowed', subject: id, details: { wasLocked: before.locked, address: addressOf(req) } });
    });
    res.json({ ...toView(row), locked: false, wasLocked: before.locked });
  });

  return router;
}
