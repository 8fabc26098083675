import { Router, type Request } from 'express';
import { inTransaction } from '../../../shared/platform/db.ts';
import { CORRECTION_NOTICES_PATH } from '../../../shared/federation/protocol.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { addresseeParam } from '../residents/routes.ts';
import { requireResident } from '../residents/service.ts';
import { requireLink, type FederationLink } from '../federation/link.ts';
import { listOutbox } from './model.ts';
import { processCorrectionOutbox } from './outbox.ts';
import { outboxQuerySchema, relayedNoticeSchema } from './schemas.ts';
import { readCorrectionNotices, receiveCorrectionNotice } from './service.ts';

/**
 * Staff routes of correction propagation: a clerk sees the notices received for a resident (what
 * changed in the imported copy); an operator watches the outbox of notices sent and can send the
 * due ones now.
 */
export function correctionRoutes(ctx: MunicipalityContext, fed: FederationLink | undefined): Router {
  const router = Router();

  router.get('/residents/:addresseeNumber/correction-notices', authenticate(ctx), requireRole('clerk'), async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const notices = await inTransaction(ctx.sequelize, async (t) => readCorrectionNotices(ctx, t, await requireResident(ctx, addresseeNumber, t), actorOf(req)));
    res.json({ addresseeNumber, notices });
  });

  // Metadata only (record ids, recipients, delivery state): no resident is named.
  router.get('/exchange/corrections/outbox', authenticate(ctx), requireRole('operator'), async (req, res) => {
    const { status, limit } = parseInput(outboxQuerySchema, req.query, 'query');
    const { items, counts } = await listOutbox(ctx.models.CorrectionOutbox, status, limit);
    res.json({
      counts,
      items: items.map((i) => ({
        id: i.id, recordId: i.recordId, version: i.version, recipient: i.recipient, change: i.change, purpose: i.purpose,
        status: i.status, attempts: i.attempts, nextAttemptAt: i.nextAttemptAt, lastError: i.lastError, sentAt: i.sentAt, createdAt: i.createdAt,
      })),
    });
  });

  router.post('/exchange/corrections/outbox/run', authenticate(ctx), requireRole('operator'), async (_req, res) => {
    res.json(await processCorrectionOutbox(ctx, requireLink(fed)));
  });

  return router;
}

/** The federation (mTLS) route at which the gateway relays correction notices to this municipality. */
export function correctionFederationRoutes(ctx: MunicipalityContext, fed: FederationLink, memberOf: (req: Request) => string): Router {
  const router = Router();
  router.post(CORRECTION_NOTICES_PATH, async (req, res) => {
    const { notice } = parseInput(relayedNoticeSchema, req.body);
    const result = await receiveCorrectionNotice(ctx, fed, memberOf(req), notice);
    res.json({ status: result.status });
  });
  return router;
}
