import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { inTransaction } from '../../../shared/platform/db.ts';
import { AppError, badRequest, notFound } from '../../../shared/platform/errors.ts';
import { rateLimit } from '../../../shared/platform/rate-limit.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { findResidentByAddressee } from '../residents/service.ts';
import { BULK_PATH } from './bulk/routes.ts';
import { answerForward } from '../answering/service.ts';
import { approveException, listExceptions, requestException } from '../exceptions/service.ts';
import type { FederationLink } from '../federation/link.ts';
import { acceptMoveIn, moveOut } from '../moves/service.ts';
import { runQuery } from './service.ts';
import { processRegistrations, registrationBacklog } from '../codes/service.ts';
import { exceptionRequestSchema, moveInSchema, moveOutSchema, querySchema } from './schemas.ts';

/** Staff routes of the exchange. Without a federation link they answer 503, and local work goes on. */
export function exchangeRoutes(ctx: MunicipalityContext, fed: FederationLink | undefined, onResidentCreated: () => void): Router {
  const router = Router();
  const staff = [authenticate(ctx), requireRole('clerk', 'operator')];
  // Per staff account on every query route, single and bulk (SECURITY.md): 429 with Retry-After above the limit.
  router.post(['/exchange/queries', BULK_PATH, `${BULK_PATH}/:id/retry`], ...staff, rateLimit({
    limit: ctx.config.STAFF_QUERY_LIMIT, windowSeconds: ctx.config.STAFF_QUERY_WINDOW_SECONDS, keyOf: (req) => req.actor?.staffId, scope: 'staff account', logger: ctx.logger,
  }));
  const linked = (): FederationLink => {
    if (!fed) throw new AppError(503, 'federation-unavailable', 'This municipality is not connected to the federation');
    return fed;
  };

  router.post('/residents/:addresseeNumber/move-out', ...staff, async (req, res) => {
    const input = parseInput(moveOutSchema, req.body);
    const link = linked();
    const result = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, req.params.addresseeNumber as string, t);
      if (!resident) throw notFound('Resident');
      return moveOut(ctx, link, t, resident, input, actorOf(req));
    });
    res.status(201).json({ certificate: result.certificate, destination: input.destination, moveOutDate: input.moveOutDate });
  });

  router.post('/move-ins', ...staff, async (req, res) => {
    const input = parseInput(moveInSchema, req.body);
    const result = await acceptMoveIn(ctx, linked(), input, actorOf(req));
    onResidentCreated();
    res.status(201).json({
      resident: { addresseeNumber: result.resident.addresseeNumber, name: result.resident.name, status: result.resident.status },
      from: result.from,
      consent: result.consent ? { id: result.consent.id, purpose: result.consent.purpose, sources: result.consent.sources, expiresAt: result.consent.expiresAt } : null,
    });
  });

  router.post('/exchange/queries', ...staff, async (req, res) => {
    const input = parseInput(querySchema, req.body);
    res.json(await runQuery(ctx, linked(), input, actorOf(req)));
  });

  router.get('/exchange/queries/:queryJti', ...staff, async (req, res) => {
    const rows = await ctx.models.QuerySubject.findAll({ where: { queryJti: req.params.queryJti }, order: [['id', 'ASC']], raw: true });
    if (rows.length === 0) throw notFound('Query');
    res.json({
      queryJti: req.params.queryJti,
      subjects: rows.map((r) => ({
        ref: r.ref, source: r.source, purpose: r.purpose, legalBasis: r.legalBasis, status: r.status, reason: r.reason,
        recordCount: r.recordCount, imported: r.importedCount, retryAfter: r.retryAfter,
      })),
    });
  });

  router.post('/exchange/exception-requests', authenticate(ctx), requireRole('clerk'), async (req, res) => {
    const input = parseInput(exceptionRequestSchema, req.body);
    const view = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, input.addresseeNumber, t);
      if (!resident) throw notFound('Resident');
      return requestException(ctx, t, resident, input, actorOf(req));
    });
    res.status(201).json(view);
  });

  router.post('/exchange/exception-requests/:id/approve', authenticate(ctx), requireRole('clerk'), async (req, res) => {
    if (!z.uuid().safeParse(req.params.id).success) throw badRequest('id', 'must be an exception request id');
    res.json(await inTransaction(ctx.sequelize, (t) => approveException(ctx, t, req.params.id as string, actorOf(req))));
  });

  router.get('/exchange/exception-requests', authenticate(ctx), requireRole('clerk'), async (req, res) => {
    const status = parseInput(z.enum(['pending', 'approved', 'used', 'rejected']).optional(), req.query.status, 'status');
    res.json({ requests: await listExceptions(ctx, status) });
  });

  router.get('/exchange/registrations', authenticate(ctx), requireRole('operator'), async (_req, res) => {
    res.json(await registrationBacklog(ctx));
  });

  router.post('/exchange/registrations/run', authenticate(ctx), requireRole('operator'), async (_req, res) => {
    res.json(await processRegistrations(ctx, linked()));
  });

  return router;
}

/** Routes of the federation (mTLS) port: only members reach them, identified by certificate. */
export function federationRoutes(ctx: MunicipalityContext, fed: FederationLink, memberOf: (req: Parameters<RequestHandler>[0]) => string): Router {
  const router = Router();
  router.post('/federation/record-requests', async (req, res) => {
    const body = parseInput(z.object({ forward: z.string().min(1, 'is required').max(5_000_000, 'is too large') }).strict(), req.body);
    const answer = await answerForward(ctx, fed, memberOf(req), body.forward);
    res.json({ answer });
  });
  return router;
}
