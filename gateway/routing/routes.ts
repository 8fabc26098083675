import { Router } from 'express';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { rateLimit } from '../../shared/platform/rate-limit.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import type { GatewayContext } from '../context.ts';
import { queryRequestSchema } from './schemas.ts';
import { routeQuery } from './service.ts';

export function routingRoutes(ctx: GatewayContext): Router {
  const router = Router();
  // Per member (certificate CN), before any signature is checked: a flood costs the gateway nothing.
  const perMember = rateLimit({
    limit: ctx.config.MEMBER_QUERY_LIMIT, windowSeconds: ctx.config.MEMBER_QUERY_WINDOW_SECONDS,
    keyOf: (req) => req.member?.id, scope: 'member', logger: ctx.logger,
  });

  /** B's signed query; the answer lists a status per subject and A's signed answers unchanged. */
  router.post('/queries', requireMember(['municipality']), perMember, async (req, res) => {
    const { query, sealed } = parseInput(queryRequestSchema, req.body);
    const response = await routeQuery(ctx, memberOf(req), query, sealed);
    // The query's own trace id, adopted from its signed claims, is the one all three logs share.
    res.setHeader('X-Request-Id', response.requestId);
    res.json(response);
  });

  return router;
}
