import { Router } from 'express';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { ISSUER_ID } from '../../shared/federation/protocol.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import { currentHead } from '../../shared/access-log/heads.ts';
import type { GatewayContext } from '../context.ts';
import { correspondenceBatchSchema, correspondenceSchema, type CorrespondenceResult } from './schemas.ts';
import { registerCorrespondence, registerCorrespondences } from './service.ts';

export function codeRoutes(ctx: GatewayContext): Router {
  const router = Router();

  router.post('/correspondence', requireMember(['issuer'], [ISSUER_ID]), async (req, res) => {
    const input = parseInput(correspondenceSchema, req.body);
    const { created } = await registerCorrespondence(ctx, memberOf(req), input);
    res.status(created ? 201 : 200).json({ municipality: input.municipality, code: input.code, created });
  });

  /** A batch of the issuer's registrations: one transaction, one result per item (a conflict refuses its item only). */
  router.post('/correspondence/batch', requireMember(['issuer'], [ISSUER_ID]), async (req, res) => {
    const { registrations, head } = parseInput(correspondenceBatchSchema, req.body);
    const outcomes = await registerCorrespondences(ctx, memberOf(req), registrations, (i, field) => `registrations.${i}.${field}`, head);
    const results = registrations.map(({ municipality, code }, i): CorrespondenceResult => {
      const outcome = outcomes[i]!;
      return outcome === 'created' || outcome === 'unchanged' ? { municipality, code, status: outcome } : { municipality, code, status: 'refused', reason: outcome };
    });
    res.status(200).json({ results, head: await currentHead(ctx.sequelize) });
  });

  return router;
}
