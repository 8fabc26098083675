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

  /**
   * The CA-signed revocation list, relayed unchanged (members verify the CA's signature and refuse
   * a lower number than theirs). The file is looked at first, so a member's refresh sees a list
   * the CA just wrote without waiting for the gateway's own.
   */
  router.get('/revocations', async (_req, res) => {
    await ctx.revocations.refresh().catch(() => undefined);
    const list = ctx.revocations.current();
    if (!list) throw notFound('Revocation list');
    res.json({ revocations: list.jws });
  });

  return router;
}
