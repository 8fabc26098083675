import { randomUUID } from 'node:crypto';
import { hashPassword, signSession, verifyPassword } from '../../../shared/crypto.ts';
import { AppError, conflict } from '../../../shared/errors.ts';
import type { MunicipalityContext } from '../context.ts';
import { findStaffForLogin, insertStaff, type StaffView } from './model.ts';
import type { CreateStaffInput } from './schemas.ts';

// Verifying against a fixed hash when the user is unknown keeps the timing of both failures alike.
const UNKNOWN_USER_HASH = 'scrypt$16384$8$1$I6txYubOidvFpkWjf7W2MQ$JXoWozPUzkca5BIgG08wVS1KRldLxkgU3m430FgIX-s';

export async function login(ctx: MunicipalityContext, username: string, password: string) {
  const staff = await findStaffForLogin(ctx.models.Staff, username);
  const ok = await verifyPassword(password, staff?.passwordHash ?? UNKNOWN_USER_HASH);
  if (!staff || !ok || !staff.active) {
    ctx.logger.warn({ username }, 'login refused');
    throw new AppError(401, 'invalid-credentials', 'Unknown user or wrong password');
  }
  const ttl = ctx.config.SESSION_TTL_SECONDS;
  const token = await signSession(ctx.config.SESSION_SECRET, { sub: staff.id, role: staff.role, municipality: ctx.config.MUNICIPALITY_CODE }, ttl);
  const { passwordHash: _omit, ...view } = staff;
  return { token, expiresIn: ttl, staff: view };
}

export async function createStaff(ctx: MunicipalityContext, input: CreateStaffInput): Promise<StaffView> {
  const existing = await findStaffForLogin(ctx.models.Staff, input.username);
  if (existing) throw conflict('duplicate-username', 'Username already exists', { field: 'username', rule: 'must be unique' });
  return insertStaff(ctx.models.Staff, {
    id: randomUUID(), username: input.username, displayName: input.displayName, role: input.role,
    passwordHash: await hashPassword(input.password),
  });
}
