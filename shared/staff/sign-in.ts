/**
 * Sign-in throttling (OWASP ASVS 5.0 §6.3: brute force and credential stuffing), shared by every
 * member with staff. Two counters, both rows of the member's own `sign_in_throttle` table, so a
 * restart forgets nothing:
 *
 * - per account name: after SIGNIN_LOCKOUT_THRESHOLD consecutive failures the name is locked for
 *   SIGNIN_LOCKOUT_SECONDS, doubling with each further lock up to SIGNIN_LOCKOUT_MAX_SECONDS; from
 *   the SIGNIN_ADMIN_UNLOCK_AFTER-th lock on it stays locked until an administrator unlocks it.
 *   The row is keyed by a keyed hash of the name as typed, whether or not an account has it, so
 *   an unknown name fails, locks and answers exactly as a real one (no user enumeration) and the
 *   name itself — possibly a My Number typed in the wrong field — is never stored.
 * - per client address: at most SIGNIN_ADDRESS_FAILURE_LIMIT failures per
 *   SIGNIN_ADDRESS_WINDOW_SECONDS; beyond it, 429 with Retry-After before any password is checked.
 *
 * Successful sign-ins count nowhere, so normal use (many sessions from one office address) is
 * never slowed.
 */
import { DataTypes, Model, QueryTypes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';
import { z } from 'zod';
import { hmacSha256 } from '../crypto.ts';
import { bindValue } from '../platform/db.ts';
import { rateLimitCount, rateWindowSeconds } from '../platform/rate-limit.ts';

export const SIGN_IN_THROTTLE_TABLE = 'sign_in_throttle';

/** Settings of the one config loader (spread into each member's config schema). */
export const signInConfigShape = {
  /** Consecutive failed sign-ins for one account name that lock it. */
  SIGNIN_LOCKOUT_THRESHOLD: z.coerce.number().int().min(1).max(100).default(5),
  /** How long the first lock lasts; each further lock doubles it. */
  SIGNIN_LOCKOUT_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /** The longest a temporary lock lasts. */
  SIGNIN_LOCKOUT_MAX_SECONDS: z.coerce.number().int().min(1).max(30 * 86_400).default(3600),
  /** From this many locks in a row on, the account stays locked until an administrator unlocks it; 0 = never. */
  SIGNIN_ADMIN_UNLOCK_AFTER: z.coerce.number().int().min(0).max(1000).default(5),
  /** Failed sign-ins one client address may make per window; beyond it, 429 with Retry-After. */
  SIGNIN_ADDRESS_FAILURE_LIMIT: rateLimitCount(100),
  SIGNIN_ADDRESS_WINDOW_SECONDS: rateWindowSeconds(900),
};

export interface SignInSettings {
  SIGNIN_LOCKOUT_THRESHOLD: number;
  SIGNIN_LOCKOUT_SECONDS: number;
  SIGNIN_LOCKOUT_MAX_SECONDS: number;
  SIGNIN_ADMIN_UNLOCK_AFTER: number;
  SIGNIN_ADDRESS_FAILURE_LIMIT: number;
  SIGNIN_ADDRESS_WINDOW_SECONDS: number;
}

export class SignInThrottleRow extends Model<InferAttributes<SignInThrottleRow>, InferCreationAttributes<SignInThrottleRow>> {
  /** `account:<keyed hash of the name>` or `address:<client address>`. */
  declare key: string;
  /** Account: consecutive failures since the last success, lock or unlock. Address: failures in the window. */
  declare failures: CreationOptional<number>;
  /** Address: when the current window began. */
  declare windowStart: string | null;
  /** Account: locks in a row (the next lock lasts twice as long). */
  declare lockCount: CreationOptional<number>;
  declare lockedUntil: string | null;
  /** Account: locked until an administrator unlocks it. */
  declare adminLock: CreationOptional<boolean>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export type SignInThrottleModel = typeof SignInThrottleRow;

/** The throttle table of one member's database (a fresh class per database). */
export function defineSignInThrottle(sequelize: Sequelize): SignInThrottleModel {
  class SignInThrottle extends SignInThrottleRow {}
  SignInThrottle.init({
    key: { type: DataTypes.STRING(80), primaryKey: true },
    failures: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    windowStart: { type: DataTypes.STRING(30), allowNull: true },
    lockCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    lockedUntil: { type: DataTypes.STRING(30), allowNull: true },
    adminLock: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    createdAt: DataTypes.DATE,
    updatedAt: DataTypes.DATE,
  }, { sequelize, tableName: SIGN_IN_THROTTLE_TABLE });
  return SignInThrottle;
}

/**
 * The keyed hash that stands for an account name (throttle key, and the log's reference to an
 * unknown name). Case and width are folded so `Clerk1` and `ｃｌｅｒｋ１` share one counter.
 */
export const nameKey = (secret: Buffer, username: string): string =>
  hmacSha256(secret, `hikitsugi sign-in name\0${username.normalize('NFKC').toLowerCase()}`).toString('hex').slice(0, 32);

export const accountKey = (secret: Buffer, username: string): string => `account:${nameKey(secret, username)}`;
export const addressKey = (address: string): string => `address:${address.slice(0, 64)}`;

export interface ThrottleState {
  failures: number;
  windowStart: string | null;
  lockCount: number;
  lockedUntil: string | null;
  adminLock: boolean;
}

const EMPTY: ThrottleState = { failures: 0, windowStart: null, lockCount: 0, lockedUntil: null, adminLock: false };

const stateOf = (row: InferAttributes<SignInThrottleRow> | null): ThrottleState => (row
  ? { failures: Number(row.failures), windowStart: row.windowStart ?? null, lockCount: Number(row.lockCount), lockedUntil: row.lockedUntil ?? null, adminLock: Boolean(row.adminLock) }
  : { ...EMPTY });

/** Reads a throttle row (no lock): the cheap check before any password work. */
export async function readThrottle(M: SignInThrottleModel, key: string, transaction?: Transaction): Promise<ThrottleState> {
  return stateOf(await M.findByPk(key, { raw: true, transaction }));
}

/**
 * Reads a throttle row for update inside `transaction`, creating it first: the row lock
 * (PostgreSQL) or the immediate transaction (SQLite) makes concurrent failures count one by one.
 */
export async function lockThrottle(M: SignInThrottleModel, key: string, transaction: Transaction): Promise<ThrottleState> {
  const now = bindValue(M.sequelize!, new Date());
  // Bound parameters only: the key (a client address or a keyed hash) is never part of the SQL text.
  await M.sequelize!.query(
    `INSERT INTO "${SIGN_IN_THROTTLE_TABLE}" ("key", "failures", "lockCount", "adminLock", "createdAt", "updatedAt")
     VALUES ($1, 0, 0, FALSE, $2, $2) ON CONFLICT DO NOTHING`,
    { type: QueryTypes.INSERT, bind: [key, now], transaction },
  );
  return stateOf(await M.findByPk(key, { raw: true, transaction, lock: transaction.LOCK.UPDATE }));
}

export async function saveThrottle(M: SignInThrottleModel, key: string, state: ThrottleState, transaction: Transaction): Promise<void> {
  await M.update({ ...state }, { where: { key }, transaction });
}

/** An account lock in force at `now`: until when (null = until an administrator unlocks it). */
export function lockInForce(state: ThrottleState, now: Date): { until: Date | null } | undefined {
  if (state.adminLock) return { until: null };
  if (state.lockedUntil && new Date(state.lockedUntil) > now) return { until: new Date(state.lockedUntil) };
  return undefined;
}

/** Seconds until the address may try again, or 0 when it is under its limit. */
export function addressRetryAfter(state: ThrottleState, settings: SignInSettings, now: Date): number {
  if (!state.windowStart || state.failures < settings.SIGNIN_ADDRESS_FAILURE_LIMIT) return 0;
  const ends = new Date(state.windowStart).getTime() + settings.SIGNIN_ADDRESS_WINDOW_SECONDS * 1000;
  return ends > now.getTime() ? Math.max(1, Math.ceil((ends - now.getTime()) / 1000)) : 0;
}

/** One more failure from an address: a new window once the old one is over. */
export function addressFailed(state: ThrottleState, settings: SignInSettings, now: Date): ThrottleState {
  const open = state.windowStart && new Date(state.windowStart).getTime() + settings.SIGNIN_ADDRESS_WINDOW_SECONDS * 1000 > now.getTime();
  return open ? { ...state, failures: state.failures + 1 } : { ...state, failures: 1, windowStart: now.toISOString() };
}

/** One more failure for an account name; says whether this one locked it, and for how long. */
export function accountFailed(state: ThrottleState, settings: SignInSettings, now: Date): { state: ThrottleState; locked?: { seconds: number | null; lockCount: number } } {
  const failures = state.failures + 1;
  if (failures < settings.SIGNIN_LOCKOUT_THRESHOLD) return { state: { ...state, failures } };
  const lockCount = state.lockCount + 1;
  const adminLock = settings.SIGNIN_ADMIN_UNLOCK_AFTER > 0 && lockCount >= settings.SIGNIN_ADMIN_UNLOCK_AFTER;
  const seconds = Math.min(settings.SIGNIN_LOCKOUT_SECONDS * 2 ** (lockCount - 1), settings.SIGNIN_LOCKOUT_MAX_SECONDS);
  return {
    state: { ...state, failures: 0, lockCount, adminLock, lockedUntil: new Date(now.getTime() + seconds * 1000).toISOString() },
    locked: { seconds: adminLock ? null : seconds, lockCount },
  };
}

/** After a success or an administrator's unlock: a clean slate. */
export const CLEARED: ThrottleState = EMPTY;
