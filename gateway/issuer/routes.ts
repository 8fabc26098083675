import { Router } from 'express';
import { inTransaction } from '../../shared/db.ts';
import { AppError } from '../../shared/errors.ts';
import { memberOf, requireMember } from '../../shared/member-http.ts';
import { parseInput } from '../../shared/validation.ts';
import { GatewayActions } from '../audit/actions.ts';
import { logMemberAccess } from '../audit/service.ts';
import type { IssuerContext } from './context.ts';
import { issueCodeSchema } from './schemas.ts';
import { issueCode } from './service.ts';

export function issuerRoutes(ctx: IssuerContext): Router {
  const router = Router();

  router.get('/health', async (_req, res) => {
    await ctx.sequelize.authenticate();
    res.json({ status: 'ok', member: ctx.credentials.id });
  });

  /** A municipality (its certificate CN, never a body field) asks for its code for a My Number. */
  router.post('/codes', requireMember(['municipality']), async (req, res) => {
    const member = memberOf(req);
    let input;
    try {
      input = parseInput(issueCodeSchema, req.body);
    } catch (err) {
      if (err instanceof AppError) {
        await inTransaction(ctx.sequelize, (t) => logMemberAccess(ctx.models.AccessLog, t, member, [{
          action: GatewayActions.CODE_ISSUE, actingMunicipality: member.id, outcome: 'denied', reason: `invalid ${err.extra.field}`,
        }]));
      }
      throw err;
    }
    const issued = await issueCode(ctx, member, input.myNumber);
    res.status(200).json({ code: issued.code, attestation: issued.attestation });
  });

  return router;
}
