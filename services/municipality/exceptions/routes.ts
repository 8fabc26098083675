import { Router } from 'express';
import { z } from 'zod';
import { inTransaction } from '../../../shared/platform/db.ts';
import { badRequest, notFound } from '../../../shared/platform/errors.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { findResidentByAddressee } from '../residents/service.ts';
import { approveException, listExceptions, requestException } from './service.ts';
import { exceptionRequestSchema, exceptionStatusSchema } from './schemas.ts';

/** The exception path's requests and approvals (DESIGN.md flow 6): clerks only. */
export function exceptionRoutes(ctx: MunicipalityContext): Router {
  const router = Router();
  const clerk = [authenticate(ctx), requireRole('clerk')];

  router.post('/exchange/exception-requests', ...clerk, async (req, res) => {
    const input = parseInput(exceptionRequestSchema, req.body);
    const view = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, input.addresseeNumber, t);
      if (!resident) throw notFound('Resident');
      return requestException(ctx, t, resident, input, actorOf(req));
    });
    res.status(201).json(view);
  });

  router.post('/exchange/exception-requests/:id/approve', ...clerk, async (req, res) => {
    if (!z.uuid().safeParse(req.params.id).success) throw badRequest('id', 'must be an exception request id');
    res.json(await inTransaction(ctx.sequelize, (t) => approveException(ctx, t, req.params.id as string, actorOf(req))));
  });

  router.get('/exchange/exception-requests', ...clerk, async (req, res) => {
    const status = parseInput(exceptionStatusSchema, req.query.status, 'status');
    res.json({ requests: await listExceptions(ctx, status) });
  });

  return router;
}
