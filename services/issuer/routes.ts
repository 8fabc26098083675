import { Router, type Request } from 'express';
import type { z } from 'zod';
import { AppError } from '../../shared/platform/errors.ts';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import { logMemberRefusal } from '../../shared/access-log/member-access.ts';
import { IssuerActions } from './actions.ts';
import type { IssuerContext } from './context.ts';
import { issueCodeSchema, issueCodesSchema } from './schemas.ts';
import { gatewayUnavailable, isIssued, issueCodes } from './service.ts';

export function issuerRoutes(ctx: IssuerContext): Router {
  const router = Router();

  /** Parses a request; a refusal is logged (one denied entry naming the field, never its value) before it is answered. */
  async function parseLogged<S extends z.ZodType>(schema: S, req: Request): Promise<z.infer<S>> {
    try {
      return parseInput(schema, req.body);
    } catch (err) {
      if (err instanceof AppError) {
        const member = memberOf(req);
        await logMemberRefusal(ctx.models.AccessLog, member, {
          action: IssuerActions.CODE_ISSUE, actingMunicipality: member.id, reason: `invalid ${err.extra.field}`,
        });
      }
      throw err;
    }
  }

  router.get('/health', async (_req, res) => {
    await ctx.sequelize.authenticate();
    res.json({ status: 'ok', member: ctx.credentials.id });
  });

  /** A municipality (its certificate CN, never a body field) asks for its code for a My Number. */
  router.post('/codes', requireMember(['municipality']), async (req, res) => {
    const input = await parseLogged(issueCodeSchema, req);
    const { outcomes: [issued], head } = await issueCodes(ctx, memberOf(req), [input.myNumber], input.head);
    // A code the gateway refused is unusable: the municipality retries later, as when the gateway is down.
    if (!issued || !isIssued(issued)) throw gatewayUnavailable();
    res.status(200).json({ code: issued.code, attestation: issued.attestation, head });
  });

  /**
   * The same for a batch of My Numbers (the registration outbox sends them so): codes in request
   * order, each with its own attestation; an item the gateway refused carries the reason instead.
   */
  router.post('/codes/batch', requireMember(['municipality']), async (req, res) => {
    const input = await parseLogged(issueCodesSchema, req);
    const { outcomes, head } = await issueCodes(ctx, memberOf(req), input.myNumbers, input.head);
    res.status(200).json({
      codes: outcomes.map((o) => (isIssued(o) ? { code: o.code, attestation: o.attestation } : { error: 'correspondence-conflict', reason: o.refused })),
      head,
    });
  });

  return router;
}
