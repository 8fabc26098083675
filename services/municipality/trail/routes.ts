import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { FEDERATION_TRAIL_PATH } from '../../../shared/federation/protocol.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import type { MunicipalityContext } from '../context.ts';
import type { FederationLink } from '../federation/link.ts';
import { answerTrailForward } from './service.ts';

/** POST /federation/trail-requests: the gateway's forward of B's trail request, a compact JWS (docs/PROTOCOL.md §3.10). */
export const trailForwardBodySchema = z.object({ forward: z.string().min(1, 'is required').max(500_000, 'is too large') }).strict();

/** The trail-request route of the federation (mTLS) port: only the gateway reaches it. */
export function trailFederationRoutes(ctx: MunicipalityContext, fed: FederationLink, memberOf: (req: Parameters<RequestHandler>[0]) => string): Router {
  const router = Router();
  router.post(FEDERATION_TRAIL_PATH, async (req, res) => {
    const { forward } = parseInput(trailForwardBodySchema, req.body);
    res.json({ answer: await answerTrailForward(ctx, fed, memberOf(req), forward) });
  });
  return router;
}
