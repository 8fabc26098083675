import { Router } from 'express';
import { authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { requireLink, type FederationLink } from '../federation/link.ts';
import { processRegistrations, processRekeys, registrationBacklog } from './service.ts';

/** The operator's view of code registration (docs/DESIGN.md §4.2): the backlog, and a round on demand. */
export function registrationRoutes(ctx: MunicipalityContext, fed: FederationLink | undefined): Router {
  const router = Router();
  const operator = [authenticate(ctx), requireRole('operator')];

  router.get('/exchange/registrations', ...operator, async (_req, res) => {
    res.json(await registrationBacklog(ctx));
  });

  /** A round on demand: due registrations, then codes of the old derivation (rekeys). */
  router.post('/exchange/registrations/run', ...operator, async (_req, res) => {
    const link = requireLink(fed);
    const run = await processRegistrations(ctx, link);
    const rekeys = await processRekeys(ctx, link);
    res.json({ ...run, rekeyed: rekeys.rekeyed, rekeyPending: rekeys.pending });
  });

  return router;
}
