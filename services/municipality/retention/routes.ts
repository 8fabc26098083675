/**
 * The privacy officer's view of retention (docs/DESIGN.md §4.13): run the job now, and list every
 * removal from its tombstone in the access log. Privacy officers only: a clerk or an operator
 * works with residents and records, never removes them.
 */
import { Router } from 'express';
import { inTransaction } from '../../../shared/platform/db.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { listRemovalsSchema } from './schemas.ts';
import { listRemovals, runRetentionFor } from './service.ts';

export function retentionRoutes(ctx: MunicipalityContext): Router {
  const router = Router();
  const officers = [authenticate(ctx), requireRole('privacy_officer')];

  router.post('/retention/run', ...officers, async (req, res) => {
    res.json(await runRetentionFor(ctx, actorOf(req)));
  });

  router.get('/retention/removals', ...officers, async (req, res) => {
    const input = parseInput(listRemovalsSchema, req.query, 'query');
    res.json(await inTransaction(ctx.sequelize, (t) => listRemovals(ctx, t, input, actorOf(req))));
  });

  return router;
}
