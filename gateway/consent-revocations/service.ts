/**
 * Consent revocations, the gateway's part (docs/DESIGN.md §4.4, docs/PROTOCOL.md §3.9). The
 * requester (B) sends its signed revocation of one of its consents. The gateway verifies B's
 * signature (signer = client certificate, key from the verified directory), records the revoked
 * consent id for B (append-only), logs metadata, and relays the same signed message to each
 * source named, with backoff while a source is down, until the message expires (as the correction
 * relay, gateway/notifications/). From then on, a query of B whose consent terms carry that id is
 * refused here (`no_consent`/`consent_revoked`, gateway/routing/); A verifies B's own signature
 * and refuses on its own. A revocation sent again is recorded once.
 */
import { verifyMemberMessage } from '../directory/messages.ts';
import { randomUUID } from 'node:crypto';
import { appendAccess } from '../../shared/access-log/chain.ts';
import { keepHeads } from '../../shared/access-log/heads.ts';
import { logMemberAccess, logMemberRefusal, type MemberAccess } from '../../shared/access-log/member-access.ts';
import { runEvery, type PeriodicTask } from '../../shared/access-log/witness.ts';
import { sha256Hex } from '../../shared/crypto.ts';
import { isPeerUnavailable, type Member } from '../../shared/federation/member-http.ts';
import { classifyPeerReply } from '../../shared/federation/peer-reply.ts';
import {
  CONSENT_REVOCATION_MAX_AGE_SECONDS, CONSENT_REVOCATIONS_PATH, GATEWAY_ID, Typ, consentRevocationClaimsSchema, type ConsentRevocationClaims,
} from '../../shared/federation/protocol.ts';
import { backoffSeconds } from '../../shared/platform/backoff.ts';
import { adoptRequestId } from '../../shared/platform/context.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { AppError } from '../../shared/platform/errors.ts';
import { GatewayActions } from '../access-log/actions.ts';
import type { GatewayContext } from '../context.ts';
import {
  dueRevocationRelayItems, findRevokedConsent, insertRevocationRelayItems, insertRevokedConsent, updateRevocationRelayItem,
  type RevocationRelayItem, type RevocationRelayStatus,
} from './model.ts';

const problem = (status: number, code: string, title: string, field: string, rule: string) => new AppError(status, code, title, { field, rule });

/** Verifies B's revocation: signed by the client certificate's member, in its own name, with its directory key. */
async function verifyRevocation(ctx: GatewayContext, sender: Member, message: string): Promise<ConsentRevocationClaims> {
  return verifyMemberMessage(ctx, sender, message, consentRevocationClaimsSchema, {
    field: 'revocation', what: 'Revocation', typ: Typ.CONSENT_REVOCATION, maxAgeSeconds: CONSENT_REVOCATION_MAX_AGE_SECONDS,
    audience: async (claims) => {
      // A municipality revokes its own consents only: another one's consent id is not its to revoke.
      if (typeof claims.requester === 'string' && claims.requester !== sender.id) {
        throw problem(403, 'requester-mismatch', 'Revocation of another municipality\'s consent', 'revocation.requester', 'must equal the signer and the client certificate CN');
      }
      return GATEWAY_ID;
    },
  });
}

const entryOf = (c: Pick<ConsentRevocationClaims, 'requester' | 'consentId' | 'jti'>, requestHash: string, action: string,
  outcome: 'allowed' | 'denied', reason: string | null, details: Record<string, unknown>): MemberAccess => ({
  requestId: c.jti, action, actingMunicipality: c.requester, subject: null, consentId: c.consentId, outcome, reason, requestHash, details,
});

export interface RecordedRevocation {
  consentId: string;
  /** false: this revocation was recorded before; nothing changed now. */
  created: boolean;
}

/** Verifies, records and queues a requester's revocation for relay (the caller kicks the relay). */
export async function acceptConsentRevocation(ctx: GatewayContext, sender: Member, message: string): Promise<RecordedRevocation> {
  const requestHash = sha256Hex(message);
  await ctx.currentDirectory();
  let claims: ConsentRevocationClaims;
  try {
    claims = await verifyRevocation(ctx, sender, message);
    adoptRequestId(claims.jti);
  } catch (err) {
    const e = err instanceof AppError ? err : undefined;
    await logMemberRefusal(ctx.models.AccessLog, sender, {
      action: GatewayActions.CONSENT_REVOCATION_RECORD, actingMunicipality: sender.kind === 'municipality' ? sender.id : null,
      reason: e?.code ?? 'internal', requestHash, details: e ? { status: e.status, field: e.extra.field ?? null, rule: e.extra.rule ?? null } : {},
    });
    throw err;
  }
  const c = claims;
  return inTransaction(ctx.sequelize, async (t) => {
    await keepHeads(ctx.models.WitnessedHead, t, [{ member: c.iss, head: c.head, exchange: 'revocation', requestId: c.jti, message }]);
    const held = await findRevokedConsent(ctx.models.RevokedConsent, c.requester, c.consentId, t);
    if (held) {
      await logMemberAccess(ctx.models.AccessLog, t, sender, [entryOf(c, requestHash, GatewayActions.CONSENT_REVOCATION_RECORD, 'allowed', null, {
        created: false, sources: held.sources, revokedAt: held.revokedAt,
      })]);
      return { consentId: c.consentId, created: false };
    }
    const now = new Date().toISOString();
    await insertRevokedConsent(ctx.models.RevokedConsent, {
      requester: c.requester, consentId: c.consentId, sources: c.sources, revokedAt: c.revokedAt, messageJti: c.jti, messageHash: requestHash, receivedAt: now,
    }, t);
    await insertRevocationRelayItems(ctx.models.RevocationRelay, c.sources.map((recipient) => ({
      id: randomUUID(), requester: c.requester, consentId: c.consentId, recipient, messageJti: c.jti, message, expiresAt: c.exp, nextAttemptAt: now,
    })), t);
    await logMemberAccess(ctx.models.AccessLog, t, sender, [entryOf(c, requestHash, GatewayActions.CONSENT_REVOCATION_RECORD, 'allowed', null, {
      created: true, sources: c.sources, revokedAt: c.revokedAt,
    })]);
    return { consentId: c.consentId, created: true };
  });
}

export interface RevocationRelayRound {
  delivered: number;
  refused: number;
  expired: number;
  retrying: number;
}

/** Stable problem code of a refusal (last segment of its problem type), never its text. */
function problemCode(body: unknown, status: number): string {
  const type = (body as { type?: unknown } | null)?.type;
  const code = typeof type === 'string' ? type.split('/').pop() ?? '' : '';
  return /^[a-z0-9_-]{1,40}$/.test(code) ? code : String(status);
}

/**
 * Relays due revocations to their sources. A final outcome (delivered, refused by the source,
 * expired) is logged with the state change and the stored message cleared; a source that is down
 * or not (yet) in the directory is retried with backoff.
 */
export async function relayConsentRevocations(ctx: GatewayContext, now = new Date()): Promise<RevocationRelayRound> {
  const round: RevocationRelayRound = { delivered: 0, refused: 0, expired: 0, retrying: 0 };
  await ctx.currentDirectory();
  for (const item of await dueRevocationRelayItems(ctx.models.RevocationRelay, now, 50)) {
    let final: { status: Exclude<RevocationRelayStatus, 'pending'>; detail: string } | undefined;
    let retry: string | undefined;
    let retryAfter: number | null = null;
    if (item.expiresAt < Math.floor(now.getTime() / 1000) || !item.message) {
      final = { status: 'expired', detail: 'revocation_expired' };
    } else {
      try {
        const endpoint = await ctx.directory.endpoint(item.recipient);
        const res = await ctx.client.postJson<{ status?: unknown; type?: unknown }>(`${endpoint}${CONSENT_REVOCATIONS_PATH}`, { revocation: item.message }, {
          expectPeer: item.recipient, timeoutMs: ctx.config.SOURCE_TIMEOUT_MS, requestId: item.messageJti,
        });
        const reply = classifyPeerReply(res);
        if (reply.outcome === 'ok') final = { status: 'delivered', detail: typeof res.body?.status === 'string' ? res.body.status.slice(0, 40) : 'delivered' };
        else if (reply.outcome === 'final') final = { status: 'refused', detail: `source_refused:${problemCode(res.body, res.status)}` };
        else {
          retry = `source answered ${res.status}`;
          retryAfter = reply.retryAfter;
        }
      } catch (err) {
        retry = isPeerUnavailable(err) ? String(err.extra.reason ?? err.code) : err instanceof AppError ? err.code : 'error';
        if (!(err instanceof AppError)) ctx.logger.error({ err }, 'consent revocation relay failed');
      }
    }
    if (retry !== undefined) {
      const attempts = item.attempts + 1;
      const wait = backoffSeconds(attempts, ctx.config.CORRECTION_RETRY_MAX_SECONDS, { retryAfter });
      await updateRevocationRelayItem(ctx.models.RevocationRelay, item.id, { attempts, lastError: retry.slice(0, 200), nextAttemptAt: new Date(now.getTime() + wait * 1000).toISOString() });
      ctx.logger.warn({ recipient: item.recipient, relayId: item.id, attempts, retryIn: wait, reason: retry }, 'consent revocation not relayed yet');
      round.retrying += 1;
      continue;
    }
    await finish(ctx, item, final!);
    round[final!.status] += 1;
  }
  return round;
}

async function finish(ctx: GatewayContext, item: RevocationRelayItem, final: { status: Exclude<RevocationRelayStatus, 'pending'>; detail: string }): Promise<void> {
  await inTransaction(ctx.sequelize, async (t) => {
    await updateRevocationRelayItem(ctx.models.RevocationRelay, item.id, {
      status: final.status, attempts: item.attempts + (final.status === 'expired' ? 0 : 1), message: null,
      deliveredAt: final.status === 'delivered' ? new Date().toISOString() : null, lastError: final.status === 'delivered' ? null : final.detail,
    }, t);
    // The gateway's own act: no member asked for this delivery attempt.
    await appendAccess(ctx.models.AccessLog, t, {
      actorType: 'system', actorId: GATEWAY_ID, actorRole: 'relay',
      ...entryOf({ requester: item.requester, consentId: item.consentId, jti: item.messageJti }, sha256Hex(item.messageJti), GatewayActions.CONSENT_REVOCATION_RELAY,
        final.status === 'delivered' ? 'allowed' : 'denied', final.status === 'delivered' ? null : final.detail,
        { recipient: item.recipient, relayId: item.id, result: final.detail, attempts: item.attempts + 1 }),
    });
  });
}

/** The relay worker: a round every CORRECTION_DELIVERY_INTERVAL_SECONDS (the relays share one pace), and at once when kicked. */
export function startConsentRevocationRelay(ctx: GatewayContext): PeriodicTask {
  return runEvery(ctx.config.CORRECTION_DELIVERY_INTERVAL_SECONDS, async () => {
    const round = await relayConsentRevocations(ctx);
    if (round.delivered || round.refused || round.expired) ctx.logger.info({ ...round }, 'consent revocations relayed');
  }, ctx.logger, 'consent revocation relay');
}
