import { Router } from 'express';
import { inTransaction } from '../../../shared/platform/db.ts';
import { notFound } from '../../../shared/platform/errors.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { findResidentByAddressee } from '../residents/service.ts';
import { requireLink, type FederationLink } from '../federation/link.ts';
import { acceptMoveIn, moveOut } from './service.ts';
import { moveInSchema, moveOutSchema } from './schemas.ts';

/** Move-out and move-in at the counter (DESIGN.md flows 2 and 3). Without a federation link they answer 503. */
export function moveRoutes(ctx: MunicipalityContext, fed: FederationLink | undefined, onResidentCreated: () => void): Router {
  const router = Router();
  const staff = [authenticate(ctx), requireRole('clerk', 'operator')];

  router.post('/residents/:addresseeNumber/move-out', ...staff, async (req, res) => {
    const input = parseInput(moveOutSchema, req.body);
    const link = requireLink(fed);
    const result = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, req.params.addresseeNumber as string, t);
      if (!resident) throw notFound('Resident');
      return moveOut(ctx, link, t, resident, input, actorOf(req));
    });
    res.status(201).json({ certificate: result.certificate, destination: input.destination, moveOutDate: input.moveOutDate });
  });

  router.post('/move-ins', ...staff, async (req, res) => {
    const input = parseInput(moveInSchema, req.body);
    const result = await acceptMoveIn(ctx, requireLink(fed), input, actorOf(req));
    onResidentCreated();
    res.status(201).json({
      resident: { addresseeNumber: result.resident.addresseeNumber, name: result.resident.name, status: result.resident.status },
      from: result.from,
      consent: result.consent ? { id: result.consent.id, purpose: result.consent.purpose, sources: result.consent.sources, expiresAt: result.consent.expiresAt } : null,
    });
  });

  return router;
}
