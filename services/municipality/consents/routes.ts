import { Router, type Request } from 'express';
import { CONSENT_REVOCATIONS_PATH } from '../../../shared/federation/protocol.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { notFound } from '../../../shared/platform/errors.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import type { MunicipalityContext } from '../context.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import { findResidentByAddressee } from '../residents/service.ts';
import { logStaffAccess } from '../access-log/service.ts';
import { Actions } from '../access-log/actions.ts';
import { requireLink, type FederationLink } from '../federation/link.ts';
import { consentInputSchema, relayedRevocationSchema, residentSignedConsentSchema, revocationOutboxQuerySchema, revokeSchema } from './schemas.ts';
import { acceptResidentSignedConsent, listConsentsOf, recordConsent, revokeConsent } from './service.ts';
import { listRevocationOutbox, type ConsentView } from './model.ts';
import { processRevocationOutbox, receiveConsentRevocation } from './revocations.ts';

/** What staff see of a consent: listed field by field, without the internal resident id. */
const toResponse = (c: ConsentView) => ({
  id: c.id, scope: c.scope, purpose: c.purpose, sources: c.sources, givenAt: c.givenAt, expiresAt: c.expiresAt, method: c.method,
  recordedBy: c.recordedBy, residentSignature: c.residentSignature, residentCertificate: c.residentCertificate, revokedAt: c.revokedAt, revokedBy: c.revokedBy, revocationReason: c.revocationReason,
});

/**
 * Consents are recorded and revoked by clerks at the counter, where the resident is. A consent the
 * resident signed themselves needs the federation's CA to check (`fed`); without a link it is a 503.
 */
export function consentRoutes(ctx: MunicipalityContext, fed?: FederationLink): Router {
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
    res.json({ consents: consents.map(toResponse) });
  });

  router.post('/residents/:addresseeNumber/consents', async (req, res) => {
    const input = parseInput(consentInputSchema, req.body);
    const consent = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, req.params.addresseeNumber, t);
      if (!resident) throw notFound('Resident');
      return recordConsent(ctx, t, resident, input, actorOf(req));
    });
    res.status(201).json(toResponse(consent));
  });

  router.post('/residents/:addresseeNumber/consents/resident-signed', async (req, res) => {
    const input = parseInput(residentSignedConsentSchema, req.body);
    const consent = await acceptResidentSignedConsent(ctx, requireLink(fed).trust, req.params.addresseeNumber as string, input, actorOf(req));
    res.status(201).json(toResponse(consent));
  });

  router.post('/residents/:addresseeNumber/consents/:consentId/revoke', async (req, res) => {
    const { reason } = parseInput(revokeSchema, req.body);
    const consent = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await findResidentByAddressee(ctx, req.params.addresseeNumber, t);
      if (!resident) throw notFound('Resident');
      return revokeConsent(ctx, t, resident, req.params.consentId, reason, actorOf(req));
    });
    res.json(toResponse(consent));
  });

  // The revocations on their way to the gateway (docs/DESIGN.md §4.4): metadata only, no resident named.
  router.get('/exchange/consent-revocations/outbox', authenticate(ctx), requireRole('operator'), async (req, res) => {
    const { status, limit } = parseInput(revocationOutboxQuerySchema, req.query, 'query');
    const { items, counts } = await listRevocationOutbox(ctx.models.RevocationOutbox, status, limit);
    res.json({ counts, items });
  });

  router.post('/exchange/consent-revocations/outbox/run', authenticate(ctx), requireRole('operator'), async (_req, res) => {
    res.json(await processRevocationOutbox(ctx, requireLink(fed)));
  });

  return router;
}

/** The federation (mTLS) route at which the gateway relays a requester's consent revocation to this source. */
export function consentFederationRoutes(ctx: MunicipalityContext, fed: FederationLink, memberOf: (req: Request) => string): Router {
  const router = Router();
  router.post(CONSENT_REVOCATIONS_PATH, async (req, res) => {
    const { revocation } = parseInput(relayedRevocationSchema, req.body);
    const { created } = await receiveConsentRevocation(ctx, fed, memberOf(req), revocation);
    res.status(created ? 201 : 200).json({ status: created ? 'recorded' : 'already_recorded' });
  });
  return router;
}
