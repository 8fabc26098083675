import { Router } from 'express';
import { memberOf, requireMember } from '../../shared/member-http.ts';
import { ISSUER_ID } from '../../shared/protocol.ts';
import { parseInput } from '../../shared/validation.ts';
import type { GatewayContext } from '../context.ts';
import { correspondenceSchema } from './schemas.ts';
import { registerCorrespondence } from './service.ts';

export function codeRoutes(ctx: GatewayContext): Router {
  const router = Router();

  router.post('/correspondence', requireMember(['issuer'], [ISSUER_ID]), async (req, res) => {
    const input = parseInput(correspondenceSchema, req.body);
    const { created } = await registerCorrespondence(ctx, memberOf(req), input);
    res.status(created ? 201 : 200).json({ municipality: input.municipality, code: input.code, created });
  });

  return router;
}
