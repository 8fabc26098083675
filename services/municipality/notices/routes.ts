import { Router } from 'express';
import { inTransaction } from '../../../shared/platform/db.ts';
import { Actions } from '../access-log/actions.ts';
import { logStaffAccess } from '../access-log/service.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { addresseeParam } from '../residents/routes.ts';
import { requireResident } from '../residents/service.ts';
import { deliveryCounts } from './model.ts';
import { catchUpNotices, deliverNotices, residentNotices, type NoticeSender } from './service.ts';

/**
 * A resident's notices of cross-municipality access (as the disclosure report shows them, for
 * the same staff), and the operator's view of the delivery outbox.
 */
export function noticeRoutes(ctx: MunicipalityContext, sender: NoticeSender): Router {
  const router = Router();

  router.get('/residents/:addresseeNumber/notices', authenticate(ctx), requireRole('clerk', 'privacy_officer'), async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    await catchUpNotices(ctx);
    const notices = await inTransaction(ctx.sequelize, async (t) => {
      const resident = await requireResident(ctx, addresseeNumber, t);
      const found = await residentNotices(ctx, resident.id, t);
      await logStaffAccess(ctx, t, actorOf(req), { action: Actions.NOTICE_READ, subject: resident.addresseeNumber, outcome: 'allowed', details: { notices: found.length } });
      return found;
    });
    res.json({ addresseeNumber, notices });
  });

  router.get('/notices/outbox', authenticate(ctx), requireRole('operator'), async (_req, res) => {
    res.json({ counts: await deliveryCounts(ctx.models.NoticeOutbox) });
  });

  router.post('/notices/outbox/run', authenticate(ctx), requireRole('operator'), async (_req, res) => {
    res.json(await deliverNotices(ctx, sender));
  });

  return router;
}
