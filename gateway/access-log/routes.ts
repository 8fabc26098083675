import { Router } from 'express';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import type { GatewayContext } from '../context.ts';
import { HEADS_PATH, headsForAsker } from '../../shared/access-log/heads.ts';
import { listCheckpointsQuery, memberEntriesQuery, submitCheckpointSchema } from './schemas.ts';
import { entriesForMember, publishedCheckpoints, witnessMemberCheckpoint } from './service.ts';

/** The gateway's audit API for federation members (mTLS; the member is its certificate CN). */
export function gatewayAuditRoutes(ctx: GatewayContext): Router {
  const router = Router();

  /** A member's signed checkpoint of its own head; answered with the gateway's countersignature. */
  router.post('/checkpoints', requireMember(['municipality', 'issuer']), async (req, res) => {
    const { jws } = parseInput(submitCheckpointSchema, req.body);
    const result = await witnessMemberCheckpoint(ctx, memberOf(req), jws);
    res.status(result.alreadyHeld ? 200 : 201).json({
      member: result.checkpoint.member, seq: result.checkpoint.seq, hash: result.checkpoint.hash, countersignature: result.countersignature,
    });
  });

  router.get('/checkpoints', requireMember(['municipality', 'issuer']), async (req, res) => {
    const { member, fromSeq } = parseInput(listCheckpointsQuery, req.query, 'query');
    const held = await publishedCheckpoints(ctx, member, fromSeq);
    res.json({
      checkpoints: held.map((c) => ({ member: c.member, seq: c.seq, hash: c.hash, at: c.at, jws: c.jws, witnessedBy: c.witnessedBy, countersignature: c.countersignature })),
    });
  });

  /**
   * The heads of the asking member's own log that the gateway saw in its messages (queries,
   * answers, correction notices), so its privacy officer can verify its log against them.
   */
  router.get(HEADS_PATH, requireMember(['municipality', 'issuer']), async (req, res) => {
    res.json(await headsForAsker(ctx.models.WitnessedHead, memberOf(req).id, req.query));
  });

  router.get('/audit/entries', requireMember(['municipality']), async (req, res) => {
    const q = parseInput(memberEntriesQuery, req.query, 'query');
    res.json(await entriesForMember(ctx, memberOf(req), q));
  });

  return router;
}
