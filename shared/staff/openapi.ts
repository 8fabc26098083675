/**
 * OpenAPI descriptions of the staff routes every member with staff mounts (./auth.ts): sign-in,
 * sign-out, password change, `me`, and the administrators' disable and unlock. The request
 * schemas are the ones the routes parse with; each member adds these operations to its staff
 * document (docs/PROTOCOL.md §2).
 */
import { z } from 'zod';
import type { OperationSpec } from '../platform/openapi.ts';
import { loginSchema, passwordChangeSchema } from './auth.ts';

/** A staff account as every staff answer lists it: never the password hash. */
export const staffAccountView = z.object({
  id: z.uuid(),
  username: z.string(),
  displayName: z.string(),
  role: z.string(),
  active: z.boolean(),
});

/** An account's sign-in lock, as an administrator sees it. */
export const signInLockView = z.object({
  locked: z.boolean(),
  lockedUntil: z.string().nullable(),
  untilUnlocked: z.boolean(),
});

const staffIdParam = { id: z.uuid() };

/** Components the operations below refer to by name. */
export const staffComponents = { StaffAccount: staffAccountView };

/**
 * The sign-in routes (POST /auth/login, /auth/logout, /auth/password, GET /auth/me) and the
 * administrators' POST /staff/:id/disable and /staff/:id/unlock. `me` lists the fields a member
 * adds to GET /auth/me.
 */
export function staffAuthOperations(options: { adminRoles: readonly string[]; me?: Record<string, z.ZodType> }): OperationSpec[] {
  const tags = ['staff sign-in'];
  return [
    {
      method: 'post', path: '/auth/login', summary: 'Sign in: a session token (also set as an httpOnly cookie)', tags, access: { public: true },
      description: 'Unknown names and wrong passwords answer alike (401 invalid-credentials); a locked account 423 and a throttled address 429, both with Retry-After.',
      body: loginSchema, bodyExample: { username: 'clerk1', password: 'hikitsugi-demo-2026' },
      responses: { 200: { description: 'Signed in', body: z.object({ token: z.string(), expiresIn: z.number().int(), staff: staffAccountView }) } },
    },
    {
      method: 'post', path: '/auth/logout', summary: 'Sign out: the session ends now (its token id is revoked)', tags, access: { public: true },
      description: 'Without a valid session there is nothing to end; the cookie is cleared all the same.',
      responses: { 204: { description: 'Signed out' } },
    },
    {
      method: 'post', path: '/auth/password', summary: 'Change one\'s own password: every session of the account ends', tags, access: { staff: 'any' },
      body: passwordChangeSchema,
      responses: { 204: { description: 'Changed; sign in again' } },
    },
    {
      method: 'get', path: '/auth/me', summary: 'The signed-in account', tags, access: { staff: 'any' },
      responses: { 200: { description: 'The account', body: staffAccountView.extend({ municipality: z.string(), ...options.me }) } },
    },
    {
      method: 'post', path: '/staff/:id/disable', summary: 'Disable an account: its sessions end at once, nothing is deleted', tags: ['staff accounts'],
      access: { staff: options.adminRoles }, params: staffIdParam,
      responses: { 200: { description: 'The account, now inactive', body: staffAccountView } },
    },
    {
      method: 'post', path: '/staff/:id/unlock', summary: 'Lift an account\'s sign-in lock', tags: ['staff accounts'],
      access: { staff: options.adminRoles }, params: staffIdParam,
      responses: { 200: { description: 'The account, unlocked', body: staffAccountView.extend({ locked: z.literal(false), wasLocked: z.boolean() }) } },
    },
  ];
}
