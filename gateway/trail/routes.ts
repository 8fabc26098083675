import { Router } from 'express';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { rateLimit } from '../../shared/platform/rate-limit.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import { GATEWAY_TRAIL_PATH, TRAIL_REQUESTS_PATH } from '../../shared/federation/protocol.ts';
import type { GatewayContext } from '../context.ts';
import { answerGatewayTrail } from './own-entries.ts';
import { gatewayTrailRequestBodySchema, trailRequestBodySchema } from './schemas.ts';
import { routeTrailRequest } from './service.ts';

/**
 * A resident's trail at a municipality they lived in, and the gateway's own entries about them,
 * both asked by the municipality they live in (docs/PROTOCOL.md §3.10).
 */
export function trailRoutes(ctx: GatewayContext): Router {
  const router = Router();
  const perMember = rateLimit({
    limit: ctx.config.MEMBER_QUERY_LIMIT, windowSeconds: ctx.config.MEMBER_QUERY_WINDOW_SECONDS,
    keyOf: (req) => req.member?.id, scope: 'member', logger: ctx.logger,
  });
  router.post(TRAIL_REQUESTS_PATH, requireMember(['municipality']), perMember, async (req, res) => {
    const { request } = parseInput(trailRequestBodySchema, req.body);
    const response = await routeTrailRequest(ctx, memberOf(req), request);
    res.setHeader('X-Request-Id', response.requestId);
    res.json(response);
  });
  router.post(GATEWAY_TRAIL_PATH, requireMember(['municipality']), perMember, async (req, res) => {
    const { request } = parseInput(gatewayTrailRequestBodySchema, req.body);
    res.json({ answer: await answerGatewayTrail(ctx, memberOf(req), request) });
  });
  return router;
}
