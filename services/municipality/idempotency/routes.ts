import type { Request, Response } from 'express';
import type { Transaction } from 'sequelize';
import { actorOf } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { IDEMPOTENCY_HEADER, parseIdempotencyKey } from './schemas.ts';
import { runIdempotent, type WriteOutcome } from './service.ts';

/**
 * Runs a write route under its Idempotency-Key and sends the (first) response. A replay says so
 * in `Idempotent-Replayed: true`, so a client can tell a retry from a first write.
 */
export async function sendIdempotent<T>(
  ctx: MunicipalityContext, req: Request, res: Response, options: { required: boolean },
  write: (t: Transaction) => Promise<WriteOutcome<T>>,
): Promise<void> {
  const key = parseIdempotencyKey(req.get(IDEMPOTENCY_HEADER), options.required);
  const result = await runIdempotent(ctx, {
    key, actor: actorOf(req), method: req.method, path: req.baseUrl + req.path, body: req.body,
  }, write);
  if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
  res.status(result.status).json(result.body);
}
