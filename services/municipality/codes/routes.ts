import { Router } from 'express';
import { authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { requireLink, type FederationLink } from '../federation/link.ts';
import { processRegistrations, registrationBacklog } from './service.ts';

/** The operator's view of code registration (DESIGN.md flow 1): the backlog, and a round on demand. */
export function registrationRoutes(ctx: MunicipalityContext, fed: FederationLink | undefined): Router {
  const router = Router();
  const operator = [authenticate(ctx), requireRole('operator')];

  router.get('/exchange/registrations', ...operator, async (_req, res) => {
    res.json(await registrationBacklog(ctx));
  });

  router.post('/exchange/registrations/run', ...operator, async (_req, res) => {
    res.json(await processRegistrations(ctx, requireLink(fed)));
  });

  return router;
}
