import { Router } from 'express';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { GATEWAY_ID, ISSUER_ID } from '../../shared/federation/protocol.ts';
import { signHead, verifySignedHead, type SignedHead } from '../../shared/federation/messages.ts';
import type { Member } from '../../shared/federation/member-http.ts';
import { evaluateRateLimit } from '../../shared/federation/oprf-key.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import { currentHead } from '../../shared/access-log/heads.ts';
import type { GatewayContext } from '../context.ts';
import { attestationsBatchSchema, correspondenceBatchSchema, correspondenceSchema, gatewayEvaluateSchema, rekeyBatchSchema, type CorrespondenceResult } from './schemas.ts';
import { evaluateForMunicipality, registerCorrespondence, registerCorrespondences, rekeyCorrespondences, replaceAttestations } from './service.ts';

export function codeRoutes(ctx: GatewayContext): Router {
  const router = Router();

  /** The sender's signed log head in a registration call, in its own name (docs/PROTOCOL.md §3.0): checked before anything is done. */
  const senderHead = (sender: Member, statement: unknown): Promise<SignedHead> =>
    verifySignedHead(statement, (id, kid) => ctx.directory.signingKey(id, kid), sender.id, GATEWAY_ID);
  /** The gateway's own head, signed for the member it answers. */
  const ownHead = async (to: Member): Promise<string> => signHead(await currentHead(ctx.sequelize), ctx.credentials.signer, to.id);

  router.post('/correspondence', requireMember(['issuer'], [ISSUER_ID]), async (req, res) => {
    const input = parseInput(correspondenceSchema, req.body);
    const { created } = await registerCorrespondence(ctx, memberOf(req), input);
    res.status(created ? 201 : 200).json({ municipality: input.municipality, code: input.code, created });
  });

  /** A batch of the issuer's registrations: one transaction, one result per item (a conflict refuses its item only). */
  router.post('/correspondence/batch', requireMember(['issuer'], [ISSUER_ID]), async (req, res) => {
    const { registrations, head } = parseInput(correspondenceBatchSchema, req.body);
    const sender = await senderHead(memberOf(req), head);
    const outcomes = await registerCorrespondences(ctx, memberOf(req), registrations, (i, field) => `registrations.${i}.${field}`, sender);
    const results = registrations.map(({ municipality, code }, i): CorrespondenceResult => {
      const outcome = outcomes[i]!;
      return outcome === 'created' || outcome === 'unchanged' ? { municipality, code, status: outcome } : { municipality, code, status: 'refused', reason: outcome };
    });
    res.status(200).json({ results, head: await ownHead(memberOf(req)) });
  });

  /**
   * Blind derivation (docs/DESIGN.md §4.2): a municipality's points (k_I·B from the issuer) times
   * k_G. Municipalities only: the issuer, holding k_I, must not be able to ask.
   */
  router.post('/codes/evaluate', requireMember(['municipality']), evaluateRateLimit(ctx.config, ctx.logger), async (req, res) => {
    const { blinded, head } = parseInput(gatewayEvaluateSchema, req.body);
    const evaluated = await evaluateForMunicipality(ctx, memberOf(req), blinded, await senderHead(memberOf(req), head));
    res.status(200).json({ evaluated, head: await ownHead(memberOf(req)) });
  });

  /** Migration of codes of the old derivation (docs/DESIGN.md §4.2): one result per rekey, in order. */
  router.post('/correspondence/rekey', requireMember(['issuer'], [ISSUER_ID]), async (req, res) => {
    const { rekeys, head } = parseInput(rekeyBatchSchema, req.body);
    const results = await rekeyCorrespondences(ctx, memberOf(req), rekeys, await senderHead(memberOf(req), head));
    res.status(200).json({ results, head: await ownHead(memberOf(req)) });
  });

  /** The issuer's new attestations of moved rows: one result per attestation, in order. */
  router.post('/correspondence/attestations', requireMember(['issuer'], [ISSUER_ID]), async (req, res) => {
    const { attestations, head } = parseInput(attestationsBatchSchema, req.body);
    const results = await replaceAttestations(ctx, memberOf(req), attestations, await senderHead(memberOf(req), head));
    res.status(200).json({ results, head: await ownHead(memberOf(req)) });
  });

  return router;
}
