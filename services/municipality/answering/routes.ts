import { Router, type RequestHandler } from 'express';
import { parseInput } from '../../../shared/platform/validation.ts';
import type { MunicipalityContext } from '../context.ts';
import type { FederationLink } from '../federation/link.ts';
import { answerForward } from './service.ts';
import { recordRequestSchema } from './schemas.ts';

/** The record-request route of the federation (mTLS) port: only members reach it, identified by certificate. */
export function recordRequestRoutes(ctx: MunicipalityContext, fed: FederationLink, memberOf: (req: Parameters<RequestHandler>[0]) => string): Router {
  const router = Router();
  router.post('/federation/record-requests', async (req, res) => {
    const body = parseInput(recordRequestSchema, req.body);
    res.json(await answerForward(ctx, fed, memberOf(req), body.forward, body.sealed));
  });
  return router;
}
