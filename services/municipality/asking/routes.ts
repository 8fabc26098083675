import { Router } from 'express';
import { notFound } from '../../../shared/platform/errors.ts';
import { rateLimit } from '../../../shared/platform/rate-limit.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { requireLink, type FederationLink } from '../federation/link.ts';
import { BULK_PATH } from './bulk/routes.ts';
import { subjectsOfQuery } from './model.ts';
import { runQuery } from './service.ts';
import { querySchema } from './schemas.ts';

/** Staff routes of queries to other municipalities. Without a federation link they answer 503, and local work goes on. */
export function queryRoutes(ctx: MunicipalityContext, fed: FederationLink | undefined): Router {
  const router = Router();
  const staff = [authenticate(ctx), requireRole('clerk', 'operator')];
  // Per staff account on every query route, single and bulk (SECURITY.md): 429 with Retry-After above the limit.
  router.post(['/exchange/queries', BULK_PATH, `${BULK_PATH}/:id/retry`], ...staff, rateLimit({
    limit: ctx.config.STAFF_QUERY_LIMIT, windowSeconds: ctx.config.STAFF_QUERY_WINDOW_SECONDS, keyOf: (req) => req.actor?.staffId, scope: 'staff account', logger: ctx.logger,
  }));

  router.post('/exchange/queries', ...staff, async (req, res) => {
    const input = parseInput(querySchema, req.body);
    res.json(await runQuery(ctx, requireLink(fed), input, actorOf(req)));
  });

  router.get('/exchange/queries/:queryJti', ...staff, async (req, res) => {
    const rows = await subjectsOfQuery(ctx.models.QuerySubject, req.params.queryJti as string);
    if (rows.length === 0) throw notFound('Query');
    res.json({
      queryJti: req.params.queryJti,
      subjects: rows.map((r) => ({
        ref: r.ref, source: r.source, purpose: r.purpose, legalBasis: r.legalBasis, status: r.status, reason: r.reason,
        recordCount: r.recordCount, imported: r.importedCount, retryAfter: r.retryAfter,
      })),
    });
  });

  return router;
}
