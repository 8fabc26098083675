import { Router } from 'express';
import type { PeriodicTask } from '../../shared/access-log/witness.ts';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import type { GatewayContext } from '../context.ts';
import { relayRequestSchema } from './schemas.ts';
import { acceptCorrectionNotice } from './service.ts';

/** POST /corrections: a source municipality's signed correction notice, relayed to its recipient. */
export function notificationRoutes(ctx: GatewayContext, relay: Pick<PeriodicTask, 'runNow'>): Router {
  const router = Router();
  router.post('/corrections', requireMember(['municipality']), async (req, res) => {
    const { notice } = parseInput(relayRequestSchema, req.body);
    const accepted = await acceptCorrectionNotice(ctx, memberOf(req), notice);
    // Tried at once; a recipient that is down gets it later from the queue.
    if (accepted.status === 'pending') void relay.runNow();
    res.status(202).json({ id: accepted.id, status: accepted.status === 'pending' ? 'queued' : accepted.status });
  });
  return router;
}
