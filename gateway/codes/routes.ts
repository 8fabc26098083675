import { Router } from 'express';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { ISSUER_ID } from '../../shared/federation/protocol.ts';
import { evaluateRateLimit } from '../../shared/federation/oprf-key.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import { currentHead } from '../../shared/access-log/heads.ts';
import type { GatewayContext } from '../context.ts';
import { attestationsBatchSchema, correspondenceBatchSchema, correspondenceSchema, gatewayEvaluateSchema, rekeyBatchSchema, type CorrespondenceResult } from './schemas.ts';
import { evaluateForMunicipality, registerCorrespondence, registerCorrespondences, rekeyCorrespondences, replaceAttestations } from './service.ts';

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

  /**
   * Blind derivation (docs/DESIGN.md §4.2): a municipality's points (k_I·B from the issuer) times
   * k_G. Municipalities only: the issuer, holding k_I, must not be able to ask.
   */
  router.post('/codes/evaluate', requireMember(['municipality']), evaluateRateLimit(ctx.config, ctx.logger), async (req, res) => {
    const { blinded, head } = parseInput(gatewayEvaluateSchema, req.body);
    const evaluated = await evaluateForMunicipality(ctx, memberOf(req), blinded, head);
    res.status(200).json({ evaluated, head: await currentHead(ctx.sequelize) });
  });

  /** Migration of codes of the old derivation (docs/DESIGN.md §4.2): one result per rekey, in order. */
  router.post('/correspondence/rekey', requireMember(['issuer'], [ISSUER_ID]), async (req, res) => {
    const { rekeys, head } = parseInput(rekeyBatchSchema, req.body);
    const results = await rekeyCorrespondences(ctx, memberOf(req), rekeys, head);
    res.status(200).json({ results, head: await currentHead(ctx.sequelize) });
  });

  /** The issuer's new attestations of moved rows: one result per attestation, in order. */
  router.post('/correspondence/attestations', requireMember(['issuer'], [ISSUER_ID]), async (req, res) => {
    const { attestations, head } = parseInput(attestationsBatchSchema, req.body);
    const results = await replaceAttestations(ctx, memberOf(req), attestations, head);
    res.status(200).json({ results, head: await currentHead(ctx.sequelize) });
  });

  return router;
}
