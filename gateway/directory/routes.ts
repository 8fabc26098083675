import { Router } from 'express';
import { notFound } from '../../shared/platform/errors.ts';
import type { GatewayContext } from '../context.ts';

/**
 * The directory as configured, to any member. Members verify every certificate against the CA
 * themselves (shared/federation/directory.ts), so serving it needs no trust in the gateway.
 */
export function directoryRoutes(ctx: GatewayContext): Router {
  const router = Router();

  router.get('/directory', async (_req, res) => {
    res.json((await ctx.currentDirectory()).map((e) => ({
      id: e.id, kind: e.kind, name: e.name, ...(e.endpoint ? { endpoint: e.endpoint } : {}),
      signingCertificate: e.signingCertificate, encryptionCertificate: e.encryptionCertificate,
    })));
  });

  /** The CA-signed revocation list, relayed unchanged (members verify the CA's signature). */
  router.get('/revocations', (_req, res) => {
    if (!ctx.revocationsJws) throw notFound('Revocation list');
    res.json({ revocations: ctx.revocationsJws });
  });

  return router;
}
