import { Router, type Request } from 'express';
import type { z } from 'zod';
import { AppError } from '../../shared/platform/errors.ts';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { evaluateRateLimit } from '../../shared/federation/oprf-key.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import { logMemberRefusal } from '../../shared/access-log/member-access.ts';
import { verifySignedHead, type SignedHead } from '../../shared/federation/messages.ts';
import { ISSUER_ID } from '../../shared/federation/protocol.ts';
import { IssuerActions } from './actions.ts';
import type { IssuerContext } from './context.ts';
import { evaluateSchema, issueCodeSchema, issueCodesSchema, rekeyCodesSchema } from './schemas.ts';
import { evaluateBlinded, gatewayUnavailable, isIssued, issueCodes, rekeyCodes } from './service.ts';

export function issuerRoutes(ctx: IssuerContext): Router {
  const router = Router();

  /**
   * Parses a request and verifies the sender's signed log head in it (docs/PROTOCOL.md §3.0); a
   * refusal is logged (one denied entry naming the field, never its value) before it is answered.
   */
  async function parseLogged<S extends z.ZodType>(schema: S, req: Request, action: string = IssuerActions.CODE_ISSUE): Promise<{ input: z.infer<S>; sender: SignedHead }> {
    try {
      const input = parseInput(schema, req.body);
      const sender = await verifySignedHead((input as { head?: unknown }).head, ctx.memberKey, memberOf(req).id, ISSUER_ID);
      return { input, sender };
    } catch (err) {
      if (err instanceof AppError) {
        const member = memberOf(req);
        await logMemberRefusal(ctx.models.AccessLog, member, {
          action, actingMunicipality: member.id, reason: `invalid ${err.extra.field}`,
        });
      }
      throw err;
    }
  }

  router.get('/health', async (_req, res) => {
    await ctx.sequelize.authenticate();
    res.json({ status: 'ok', member: ctx.credentials.id });
  });

  /**
   * Blind derivation, first step (docs/DESIGN.md §4.2): a municipality's blinded points times k_I,
   * in order. Every point is checked on the curve first (400 naming `blinded.N`).
   */
  router.post('/codes/evaluate', requireMember(['municipality']), evaluateRateLimit(ctx.config, ctx.logger), async (req, res) => {
    const { input, sender } = await parseLogged(evaluateSchema, req, IssuerActions.CODE_EVALUATE);
    res.status(200).json(await evaluateBlinded(ctx, memberOf(req), input.blinded, sender));
  });

  /** A municipality (its certificate CN, never a body field) asks for its code for one seed. */
  router.post('/codes', requireMember(['municipality']), async (req, res) => {
    const { input, sender } = await parseLogged(issueCodeSchema, req);
    const { outcomes: [issued], head } = await issueCodes(ctx, memberOf(req), [input.seed], sender);
    // A code the gateway refused is unusable: the municipality retries later, as when the gateway is down.
    if (!issued || !isIssued(issued)) throw gatewayUnavailable();
    res.status(200).json({ code: issued.code, attestation: issued.attestation, head });
  });

  /**
   * The same for a batch of seeds (the registration outbox sends them so): codes in request
   * order, each with its own attestation; an item the gateway refused carries the reason instead.
   */
  router.post('/codes/batch', requireMember(['municipality']), async (req, res) => {
    const { input, sender } = await parseLogged(issueCodesSchema, req);
    const { outcomes, head } = await issueCodes(ctx, memberOf(req), input.seeds, sender);
    res.status(200).json({
      codes: outcomes.map((o) => (isIssued(o) ? { code: o.code, attestation: o.attestation } : { error: 'correspondence-conflict', reason: o.refused })),
      head,
    });
  });

  /**
   * Migration (docs/DESIGN.md §4.2): codes issued under the old derivation move to their seeds'
   * links, codes kept; one result per item in order, a refused item carrying the gateway's reason.
   */
  router.post('/codes/rekey', requireMember(['municipality']), async (req, res) => {
    const { input, sender } = await parseLogged(rekeyCodesSchema, req, IssuerActions.CODE_REKEY);
    const { outcomes, head } = await rekeyCodes(ctx, memberOf(req), input.rekeys, sender);
    res.status(200).json({
      results: outcomes.map((o, i) => ('refused' in o
        ? { code: input.rekeys[i]!.code, error: 'rekey-refused', reason: o.refused }
        : { code: input.rekeys[i]!.code, status: o.status })),
      head,
    });
  });

  return router;
}
