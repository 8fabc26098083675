/**
 * Relaying correction notices (docs/DESIGN.md §4.10, gateway's part). A source municipality (A) hands the
 * gateway its signed notice for a municipality that imported a record (B). The gateway checks
 * A's signature (signer = client certificate, key from the verified directory), that the code is
 * A's and that B holds a code for the same person (it never relays a record to a municipality
 * that does not know the resident), logs metadata, and delivers to B over mTLS — at once, or
 * later with backoff while B is down, until the notice expires. It cannot read the record (sealed
 * for B) nor forge a notice (B verifies A's own signature). B applies each version once.
 */
import { verifyMemberMessage } from '../directory/messages.ts';
import { classifyPeerReply } from '../../shared/federation/peer-reply.ts';
import { backoffSeconds } from '../../shared/platform/backoff.ts';
import { randomUUID } from 'node:crypto';
import { appendAccess } from '../../shared/access-log/chain.ts';
import { keepHeads } from '../../shared/access-log/heads.ts';
import { adoptRequestId } from '../../shared/platform/context.ts';
import { sha256Hex } from '../../shared/crypto.ts';
import { runEvery, type PeriodicTask } from '../../shared/access-log/witness.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { AppError } from '../../shared/platform/errors.ts';
import { isPeerUnavailable, type Member } from '../../shared/federation/member-http.ts';
import {
  CORRECTION_NOTICE_MAX_AGE_SECONDS, CORRECTION_NOTICES_PATH, GATEWAY_ID, Typ, correctionClaimsSchema, type CorrectionClaims,
} from '../../shared/federation/protocol.ts';
import { GatewayActions } from '../access-log/actions.ts';
import { logMemberAccess, type MemberAccess } from '../../shared/access-log/member-access.ts';
import { findCorrespondence } from '../codes/model.ts';
import type { GatewayContext } from '../context.ts';
import { dueRelayItems, findRelayItem, insertRelayItem, updateRelayItem, type RelayItem, type RelayStatus } from './model.ts';

const problem = (status: number, code: string, title: string, field: string, rule: string) => new AppError(status, code, title, { field, rule });

async function verifyNotice(ctx: GatewayContext, sender: Member, notice: string): Promise<CorrectionClaims> {
  return verifyMemberMessage(ctx, sender, notice, correctionClaimsSchema, {
    field: 'notice', what: 'Notice', typ: Typ.CORRECTION, maxAgeSeconds: CORRECTION_NOTICE_MAX_AGE_SECONDS,
    audience: async (claims) => {
      const recipient = claims.aud;
      if (typeof recipient !== 'string' || recipient === sender.id) throw problem(400, 'invalid-claims', 'Notice names no other recipient', 'notice.aud', 'must be another municipality');
      const entry = await ctx.directory.entry(recipient).catch(() => null);
      if (entry?.kind !== 'municipality' || !entry.endpoint) {
        throw problem(400, 'unknown-member', 'Unknown recipient municipality', 'notice.aud', 'must be a municipality of the federation directory with an endpoint');
      }
      return recipient;
    },
  });
}

const entryOf = (claims: Pick<CorrectionClaims, 'iss' | 'aud' | 'rid' | 'sub' | 'purpose' | 'sourceRecordId' | 'sourceVersion' | 'change'>, requestHash: string, action: string,
  outcome: 'allowed' | 'denied', reason: string | null, details: Record<string, unknown> = {}): MemberAccess => ({
  requestId: claims.rid, action, actingMunicipality: claims.iss, subject: claims.sub, purpose: claims.purpose, outcome, reason, requestHash,
  details: { recipient: claims.aud, sourceRecordId: claims.sourceRecordId, sourceVersion: claims.sourceVersion, change: claims.change, ...details },
});

export interface Accepted {
  id: string;
  status: RelayStatus;
}

/**
 * Accepts a notice for relay and queues it (the delivery worker is kicked by the caller).
 * A notice accepted before answers with its current state, unchanged: A may safely resend.
 */
export async function acceptCorrectionNotice(ctx: GatewayContext, sender: Member, notice: string): Promise<Accepted> {
  const requestHash = sha256Hex(notice);
  await ctx.currentDirectory();
  let claims: CorrectionClaims;
  try {
    claims = await verifyNotice(ctx, sender, notice);
    adoptRequestId(claims.rid);
  } catch (err) {
    const e = err instanceof AppError ? err : undefined;
    await inTransaction(ctx.sequelize, (t) => logMemberAccess(ctx.models.AccessLog, t, sender, [{
      action: GatewayActions.CORRECTION_RELAY, actingMunicipality: sender.kind === 'municipality' ? sender.id : null, outcome: 'denied',
      reason: e?.code ?? 'internal', requestHash, details: e ? { status: e.status, field: e.extra.field ?? null, rule: e.extra.rule ?? null } : {},
    }]));
    throw err;
  }
  const c = claims;
  const decided = await inTransaction(ctx.sequelize, async (t): Promise<Accepted | { refused: string }> => {
    const key = { issuer: c.iss, recipient: c.aud, sourceRecordId: c.sourceRecordId, sourceVersion: c.sourceVersion, purpose: c.purpose };
    // The sender's head as it signed this notice (a resend may carry a newer one).
    await keepHeads(ctx.models.WitnessedHead, t, [{ member: c.iss, head: c.head, exchange: 'correction', requestId: c.rid, message: notice }]);
    const held = await findRelayItem(ctx.models.CorrectionRelay, key, t);
    if (held) return { id: held.id, status: held.status };
    const own = await findCorrespondence(ctx.models.Correspondence, { municipality: c.iss, code: c.sub }, t);
    const theirs = own ? await findCorrespondence(ctx.models.Correspondence, { municipality: c.aud, linkId: own.linkId }, t) : null;
    if (!theirs) {
      const reason = own ? 'not_registered_at_recipient' : 'code_not_yours';
      await logMemberAccess(ctx.models.AccessLog, t, sender, [entryOf(c, requestHash, GatewayActions.CORRECTION_RELAY, 'denied', reason)]);
      return { refused: reason };
    }
    const id = randomUUID();
    await insertRelayItem(ctx.models.CorrectionRelay, {
      id, ...key, noticeJti: c.jti, requestId: c.rid, sourceCode: c.sub, change: c.change, notice, expiresAt: c.exp,
      nextAttemptAt: new Date().toISOString(),
    }, t);
    await logMemberAccess(ctx.models.AccessLog, t, sender, [entryOf(c, requestHash, GatewayActions.CORRECTION_RELAY, 'allowed', null, { relayId: id })]);
    return { id, status: 'pending' };
  });
  if ('refused' in decided) {
    throw problem(422, decided.refused.replace(/_/g, '-'), 'The recipient holds no code for this resident', 'notice.sub', 'must be the sender\'s code of a resident the recipient also holds a code for');
  }
  return decided;
}

export interface DeliveryRound {
  delivered: number;
  refused: number;
  expired: number;
  retrying: number;
}

/** Backoff after `attempts` failed deliveries: 2, 4, 8 … seconds, at most CORRECTION_RETRY_MAX_SECONDS. */

/**
 * Delivers due notices. A final outcome (delivered, refused by the recipient, expired) is logged
 * with the state change and the stored notice is cleared; a recipient that is down is retried.
 */
export async function deliverCorrectionNotices(ctx: GatewayContext, now = new Date()): Promise<DeliveryRound> {
  const round: DeliveryRound = { delivered: 0, refused: 0, expired: 0, retrying: 0 };
  await ctx.currentDirectory();
  for (const item of await dueRelayItems(ctx.models.CorrectionRelay, now, 50)) {
    let final: { status: Exclude<RelayStatus, 'pending'>; detail: string } | undefined;
    let retry: string | undefined;
    let retryAfter: number | null = null;
    if (item.expiresAt < Math.floor(now.getTime() / 1000) || !item.notice) {
      final = { status: 'expired', detail: 'notice_expired' };
    } else {
      try {
        const endpoint = await ctx.directory.endpoint(item.recipient);
        const res = await ctx.client.postJson<{ status?: unknown; type?: unknown }>(`${endpoint}${CORRECTION_NOTICES_PATH}`, { notice: item.notice }, {
          expectPeer: item.recipient, timeoutMs: ctx.config.SOURCE_TIMEOUT_MS, requestId: item.requestId,
        });
        const reply = classifyPeerReply(res);
        if (reply.outcome === 'ok') final = { status: 'delivered', detail: typeof res.body?.status === 'string' ? res.body.status.slice(0, 40) : 'delivered' };
        else if (reply.outcome === 'final') {
          const type = typeof res.body?.type === 'string' ? res.body.type.split('/').pop()!.slice(0, 40) : String(res.status);
          final = { status: 'refused', detail: `recipient_refused:${type}` };
        } else {
          retry = `recipient answered ${res.status}`;
          retryAfter = reply.retryAfter;
        }
      } catch (err) {
        // Unreachable, timed out, or not (yet) in the directory: the recipient may come back.
        retry = isPeerUnavailable(err) ? String(err.extra.reason ?? err.code) : err instanceof AppError ? err.code : 'error';
        if (!(err instanceof AppError)) ctx.logger.error({ err }, 'correction delivery failed');
      }
    }
    if (retry !== undefined) {
      const attempts = item.attempts + 1;
      const wait = backoffSeconds(attempts, ctx.config.CORRECTION_RETRY_MAX_SECONDS, { retryAfter });
      await updateRelayItem(ctx.models.CorrectionRelay, item.id, { attempts, lastError: retry.slice(0, 200), nextAttemptAt: new Date(now.getTime() + wait * 1000).toISOString() });
      ctx.logger.warn({ recipient: item.recipient, relayId: item.id, attempts, retryIn: wait, reason: retry }, 'correction notice not delivered yet');
      round.retrying += 1;
      continue;
    }
    await finish(ctx, item, final!);
    round[final!.status] += 1;
  }
  return round;
}

async function finish(ctx: GatewayContext, item: RelayItem, final: { status: Exclude<RelayStatus, 'pending'>; detail: string }): Promise<void> {
  await inTransaction(ctx.sequelize, async (t) => {
    await updateRelayItem(ctx.models.CorrectionRelay, item.id, {
      status: final.status, attempts: item.attempts + (final.status === 'expired' ? 0 : 1), notice: null,
      deliveredAt: final.status === 'delivered' ? new Date().toISOString() : null, lastError: final.status === 'delivered' ? null : final.detail,
    }, t);
    // The gateway's own act: no member asked for this delivery attempt.
    await appendAccess(ctx.models.AccessLog, t, {
      actorType: 'system', actorId: GATEWAY_ID, actorRole: 'relay',
      ...entryOf({
        iss: item.issuer, aud: item.recipient, rid: item.requestId, sub: item.sourceCode, purpose: item.purpose as CorrectionClaims['purpose'],
        sourceRecordId: item.sourceRecordId, sourceVersion: item.sourceVersion, change: item.change as CorrectionClaims['change'],
      }, sha256Hex(item.noticeJti), GatewayActions.CORRECTION_DELIVER, final.status === 'delivered' ? 'allowed' : 'denied',
      final.status === 'delivered' ? null : final.detail, { relayId: item.id, result: final.detail, attempts: item.attempts + 1 }),
    });
  });
}

/** The delivery worker: a round every CORRECTION_DELIVERY_INTERVAL_SECONDS, and at once when kicked. */
export function startCorrectionRelay(ctx: GatewayContext): PeriodicTask {
  return runEvery(ctx.config.CORRECTION_DELIVERY_INTERVAL_SECONDS, async () => {
    const round = await deliverCorrectionNotices(ctx);
    if (round.delivered || round.refused || round.expired) ctx.logger.info({ ...round }, 'correction notices relayed');
  }, ctx.logger, 'correction relay');
}
