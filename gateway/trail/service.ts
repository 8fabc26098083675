/**
 * Routing a resident's trail request (docs/PROTOCOL.md §3.10, gateway's part). B asks, for a
 * resident signed in at B's resident page, a municipality the resident lived in (A) for its
 * access-log entries about them. The gateway does for it what it does for a query subject, and
 * learns no more: it verifies B's own signature (signer = client certificate), refuses a replay,
 * checks that the code is B's, translates it into A's through the correspondence table, forwards
 * B's request unchanged in a gateway-signed envelope with both issuer attestations, and relays A's
 * signed answer unchanged. The resident's proof is sealed for A and the entries for B: the
 * gateway reads neither. One access-log entry per request.
 */
import { verifyMemberMessage, verifySignedBy } from '../directory/messages.ts';
import { randomUUID } from 'node:crypto';
import { currentHead, keepHeads, type SeenHead } from '../../shared/access-log/heads.ts';
import { logMemberAccess, logMemberRefusal } from '../../shared/access-log/member-access.ts';
import { sha256Hex } from '../../shared/crypto.ts';
import { classifyPeerReply } from '../../shared/federation/peer-reply.ts';
import { isPeerUnavailable, type Member } from '../../shared/federation/member-http.ts';
import { signMessage } from '../../shared/federation/messages.ts';
import {
  FEDERATION_TRAIL_PATH, GATEWAY_ID, Typ, trailAnswerClaimsSchema, trailRequestClaimsSchema, type TrailRequestClaims, type TrailStatus,
} from '../../shared/federation/protocol.ts';
import { adoptRequestId } from '../../shared/platform/context.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { AppError } from '../../shared/platform/errors.ts';
import { GatewayActions } from '../access-log/actions.ts';
import { findByCodes, findByLinks } from '../codes/model.ts';
import type { GatewayContext } from '../context.ts';
import { rememberJti } from '../routing/model.ts';
import { trailSourceReplySchema, type TrailResponse } from './schemas.ts';

const problem = (status: number, code: string, title: string, field: string, rule: string) => new AppError(status, code, title, { field, rule });

async function verifyRequest(ctx: GatewayContext, requester: Member, compact: string): Promise<TrailRequestClaims> {
  const request = await verifyMemberMessage(ctx, requester, compact, trailRequestClaimsSchema, {
    field: 'request', what: 'Trail request', audience: GATEWAY_ID, typ: Typ.TRAIL_REQUEST,
  });
  adoptRequestId(request.rid);
  const entry = await ctx.directory.entry(request.source).catch(() => null);
  if (entry?.kind !== 'municipality' || !entry.endpoint || request.source === requester.id) {
    throw problem(400, 'unknown-member', 'Unknown source municipality', 'request.source', 'must be another municipality of the federation directory with an endpoint');
  }
  return request;
}

/** A trail request that fails verification is refused with its problem and logged as denied under `action`. */
export async function verifiedOrLogged<T>(ctx: GatewayContext, requester: Member, requestHash: string, action: string, verify: () => Promise<T>): Promise<T> {
  try {
    return await verify();
  } catch (err) {
    if (err instanceof AppError) {
      await logMemberRefusal(ctx.models.AccessLog, requester, { action, actingMunicipality: requester.id, reason: err.code, requestHash });
    }
    throw err;
  }
}

/** Verifies, translates, forwards and relays one trail request; logs it with its outcome. */
export async function routeTrailRequest(ctx: GatewayContext, requester: Member, compact: string): Promise<TrailResponse> {
  const requestHash = sha256Hex(compact);
  const request = await verifiedOrLogged(ctx, requester, requestHash, GatewayActions.TRAIL_ROUTE, () => verifyRequest(ctx, requester, compact));
  const route = await inTransaction(ctx.sequelize, async (t) => {
    if (!(await rememberJti(ctx.models.ReplayCache, request.iss, request.jti, request.exp, t))) {
      throw problem(409, 'replayed', 'Trail request already received', 'request.jti', 'must not be reused');
    }
    // B's head as B signed it (§3.0), kept with the entry about its request.
    await keepHeads(ctx.models.WitnessedHead, t, [{ member: request.iss, head: request.head, exchange: 'trail', requestId: request.rid, message: compact }]);
    const mine = (await findByCodes(ctx.models.Correspondence, requester.id, [request.sub], t)).get(request.sub);
    const theirs = mine ? (await findByLinks(ctx.models.Correspondence, [mine.linkId], t)).get(`${mine.linkId}|${request.source}`) : undefined;
    return mine && theirs ? { mine, theirs } : { refused: mine ? 'not_registered_at_source' : 'code_not_yours' };
  });
  const finish = async (status: TrailStatus, reason: string | null, answer?: string, sourceHead?: SeenHead): Promise<TrailResponse> => {
    await inTransaction(ctx.sequelize, async (t) => {
      await logMemberAccess(ctx.models.AccessLog, t, requester, [{
        requestId: request.rid, action: GatewayActions.TRAIL_ROUTE, actingMunicipality: requester.id, subject: request.sub,
        outcome: status === 'ok' ? 'allowed' : 'denied', reason, requestHash, details: { source: request.source, status },
      }]);
      // The source's head as its verified answer carried it.
      if (sourceHead) await keepHeads(ctx.models.WitnessedHead, t, [sourceHead]);
    });
    return { requestId: request.rid, status, ...(reason ? { reason } : {}), ...(answer ? { answer } : {}) };
  };
  if ('refused' in route) return finish(route.refused === 'code_not_yours' ? 'denied' : 'not_found', route.refused ?? null);

  const forward = await signMessage({
    aud: request.source, jti: randomUUID(), rid: request.rid, request: compact, code: route.theirs.code,
    requesterAttestation: route.mine.attestation, sourceAttestation: route.theirs.attestation, head: await currentHead(ctx.sequelize),
  }, ctx.credentials.signer, Typ.TRAIL_FORWARD);
  let res;
  try {
    const endpoint = await ctx.directory.endpoint(request.source);
    res = await ctx.client.postJson(`${endpoint}${FEDERATION_TRAIL_PATH}`, { forward }, {
      expectPeer: request.source, timeoutMs: ctx.config.SOURCE_TIMEOUT_MS, requestId: request.rid,
    });
  } catch (err) {
    if (!isPeerUnavailable(err)) throw err;
    return finish('source_unavailable', String(err.extra.reason ?? 'unreachable'));
  }
  const reply = classifyPeerReply(res);
  if (reply.outcome === 'retry') return finish('source_unavailable', `source_status_${res.status}`);
  if (reply.outcome === 'final') return finish('denied', `source_refused_${res.status}`);
  const body = trailSourceReplySchema.safeParse(res.body);
  if (!body.success) return finish('source_unavailable', 'invalid_answer');
  const answer = await verifySignedBy(ctx, request.source, body.data.answer, trailAnswerClaimsSchema, { audience: request.iss, typ: Typ.TRAIL_ANSWER }).catch(() => null);
  if (!answer || answer.requestJti !== request.jti || answer.rid !== request.rid) return finish('source_unavailable', 'invalid_answer');
  return finish(answer.status, answer.reason ?? null, body.data.answer, {
    member: request.source, head: answer.head, exchange: 'trail', requestId: request.rid, message: body.data.answer,
  });
}
