/**
 * Idempotent writes: the first response to a key is stored in the same transaction as the write,
 * so either both commit or neither does. A retry with the same key and the same request gets the
 * first status and body back and creates nothing; the same key with another request is a 422.
 * SQLite transactions here are IMMEDIATE (one writer), so a concurrent retry waits for the first
 * to commit and then finds its response; on PostgreSQL a transaction-scoped advisory lock on the
 * (staff member, key) pair does the same.
 */
import { UniqueConstraintError, type Transaction } from 'sequelize';
import { sha256Hex } from '../../../shared/crypto.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { AppError, conflict } from '../../../shared/platform/errors.ts';
import type { Action } from '../access-log/actions.ts';
import { logStaffAccess } from '../access-log/service.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { findStoredResponse, lockKey, storeResponse } from './model.ts';
import { IDEMPOTENCY_HEADER } from './schemas.ts';

/** JSON with object keys sorted, so that key order does not make two equal bodies differ. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export interface IdempotentRequest {
  key: string | undefined;
  actor: Actor;
  method: string;
  path: string;
  body: unknown;
}

export interface WriteOutcome<T> {
  status: number;
  body: T;
  /** Addressee number the write concerned (for the access-log entry of a replay). */
  subject: string | null;
  action: Action;
}

/**
 * Runs `write` in one transaction under an idempotency key (when one was sent).
 * @returns the response to send and whether it is a replay of an earlier one.
 */
export async function runIdempotent<T>(
  ctx: MunicipalityContext, request: IdempotentRequest, write: (t: Transaction) => Promise<WriteOutcome<T>>,
): Promise<{ status: number; body: T; replayed: boolean }> {
  const { key, actor } = request;
  if (key === undefined) {
    const out = await inTransaction(ctx.sequelize, write);
    return { status: out.status, body: out.body, replayed: false };
  }
  const requestHash = sha256Hex(`${request.method} ${request.path}\n${canonicalJson(request.body ?? null)}`);
  try {
    return await inTransaction(ctx.sequelize, async (t) => {
      await lockKey(ctx.models.IdempotencyKey, actor.staffId, key, t);
      const stored = await findStoredResponse(ctx.models.IdempotencyKey, actor.staffId, key, t);
      if (stored) {
        if (stored.requestHash !== requestHash) {
          throw new AppError(422, 'idempotency-key-reused', 'This Idempotency-Key was used for a different request', {
            field: IDEMPOTENCY_HEADER, rule: 'must be new for each intended write; a retry must repeat the same request',
          });
        }
        await logStaffAccess(ctx, t, actor, {
          action: stored.action, subject: stored.subject, outcome: 'allowed', details: { idempotentReplay: true },
        });
        return { status: stored.status, body: stored.body as T, replayed: true };
      }
      const out = await write(t);
      await storeResponse(ctx.models.IdempotencyKey, {
        actorId: actor.staffId, key, method: request.method, path: request.path, requestHash,
        status: out.status, body: out.body, subject: out.subject, action: out.action,
      }, t);
      return { status: out.status, body: out.body, replayed: false };
    });
  } catch (err) {
    // Only where writers run in parallel (PostgreSQL): the other request with this key won.
    if (err instanceof UniqueConstraintError && err.fields && 'key' in err.fields) {
      throw conflict('idempotency-in-progress', 'A request with this Idempotency-Key is being processed', { field: IDEMPOTENCY_HEADER, rule: 'retry after the first request completes' });
    }
    throw err;
  }
}
