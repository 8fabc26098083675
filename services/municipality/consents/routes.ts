import { Router } from 'express';
import { parseInput } from '../../../shared/validation.ts';
import { notFound } from '../../../shared/errors.ts';
import { inTransaction } from '../../../shared/db.ts';
import type { MunicipalityContext } from '../context.ts';
import { actorOf, authenticate, requireRole } from '../auth/middleware.ts';
import { findResidentByAddressee } from '../residents/service.ts';
import { logStaffAccess } from '../audit/service.ts';
import { Actions } from '../audit/actions.ts';
import { consentInputSchema, revokeSchema } from './schemas.ts';
import { listConsentsOf, recordConsent, revokeConsent } from './service.ts';

/** Consents are recorded and revoked by clerks at the counter, where the resident is. */
export function consentRoutes(ctx: MunicipalityContext): Router {
  const router = Router();
  router.use('/residents/:addresseeNumber/consents', authenticate(ctx), requireRole('clerk', 'operator'));

  router.get('/residents/:addresseeNumber/consents', async (req, res) => {
    const actor = actorOf(req);
    const consents = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, req.params.addresseeNumber, t);
      if (!resident) throw notFound('Resident');
      await logStaffAccess(ctx, t, actor, { action: Actions.CONSENT_READ, subject: resident.addresseeNumber, outcome: 'allowed' });
      return listConsentsOf(ctx.models.Consent, resident.id, t);
    });
    res.json({ consents });
  });

  router.post('/residents/:addresseeNumber/consents', async (req, res) => {
    const input = parseInput(consentInputSchema, req.body);
    const consent = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, req.params.addresseeNumber, t);
      if (!resident) throw notFound('Resident');
      return recordConsent(ctx, t, resident, input, actorOf(req));
    });
    res.status(201).json(consent);
  });

  router.post('/residents/:addresseeNumber/consents/:consentId/revoke', async (req, res) => {
    const { reason } = parseInput(revokeSchema, req.body);
    const consent = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, req.params.addresseeNumber, t);
      if (!resident) throw notFound('Resident');
      return revokeConsent(ctx, t, resident, req.params.consentId, reason, actorOf(req));
    });
    res.json(consent);
  });

  return router;
}
