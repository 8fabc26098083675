/**
 * Consent revocations across the federation (docs/DESIGN.md §4.4, docs/PROTOCOL.md §3.9).
 *
 * - At the requester (B): `revokeConsent` queues one revocation in its own transaction; the worker
 *   signs it (B's member key, typ `hikitsugi-consent-revocation+jwt`) and hands it to the gateway,
 *   retrying with backoff while the gateway is down, also across restarts (the queue is a table).
 * - At a source (A): the gateway relays B's message unchanged; A verifies B's own signature with
 *   B's key from its own verified directory (the gateway cannot forge one), keeps the revoked id
 *   for B, and from then on refuses B's query subjects carrying it (answering/service.ts, through
 *   `checkLegalBasis`).
 */
import { deliverToGateway, nextAttemptAt } from '../federation/deliver.ts';
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { appendAccess } from '../../../shared/access-log/chain.ts';
import { currentHead, keepHeads } from '../../../shared/access-log/heads.ts';
import { runEvery, type PeriodicTask } from '../../../shared/access-log/witness.ts';
import { peekJwt, sha256Hex } from '../../../shared/crypto.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import { signMessage, verifyMessage } from '../../../shared/federation/messages.ts';
import {
  CONSENT_REVOCATION_MAX_AGE_SECONDS, CONSENT_REVOCATIONS_GATEWAY_PATH, GATEWAY_ID, Typ, consentRevocationClaimsSchema, type ConsentRevocationClaims,
} from '../../../shared/federation/protocol.ts';
import { adoptRequestId } from '../../../shared/platform/context.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { AppError } from '../../../shared/platform/errors.ts';
import { Actions } from '../access-log/actions.ts';
import type { MunicipalityContext } from '../context.ts';
import type { FederationLink } from '../federation/link.ts';
import {
  dueRevocationOutboxItems, findReceivedRevocation, insertReceivedRevocation, insertRevocationOutboxItem, updateRevocationOutboxItem,
  type ConsentView, type RevocationOutboxItem,
} from './model.ts';

/** The actor of the requester's send entries: the outbox worker, not a staff member. */
export const REVOCATION_ACTOR = 'system:consent-revocations';
const DAY_SECONDS = 24 * 3600;

/**
 * Queues the revocation of `consent` for the gateway, in the transaction that revoked it; the
 * worker is woken once that transaction commits.
 */
export async function enqueueConsentRevocation(ctx: MunicipalityContext, t: Transaction, consent: Pick<ConsentView, 'id' | 'sources' | 'expiresAt'>, revokedAt: string): Promise<void> {
  await insertRevocationOutboxItem(ctx.models.RevocationOutbox, {
    id: randomUUID(), consentId: consent.id, sources: consent.sources, revokedAt, consentExpiresAt: consent.expiresAt, nextAttemptAt: new Date().toISOString(),
  }, t);
  t.afterCommit(() => ctx.wake?.consentRevocations?.());
}

/**
 * The signed revocation of one outbox item. It lives as long as the consent could still be in
 * force, plus a day (so a source that is down still hears of it), never longer than the protocol allows.
 */
export async function buildConsentRevocation(ctx: MunicipalityContext, fed: FederationLink, item: RevocationOutboxItem, now = new Date()): Promise<string> {
  const untilExpiry = Math.ceil((Date.parse(item.consentExpiresAt) - now.getTime()) / 1000);
  const ttl = Math.min(CONSENT_REVOCATION_MAX_AGE_SECONDS, Math.max(DAY_SECONDS, untilExpiry + DAY_SECONDS));
  return signMessage({
    aud: GATEWAY_ID, jti: item.id, requester: fed.self, consentId: item.consentId, sources: item.sources, revokedAt: item.revokedAt,
    head: await currentHead(ctx.sequelize),
  }, fed.signer, Typ.CONSENT_REVOCATION, ttl);
}

export interface RevocationOutboxRun {
  sent: number;
  refused: number;
  deferred: number;
}

/**
 * Sends due revocations to the gateway. Recorded there (201, or 200 when it already held it) →
 * `sent`; refused for good (4xx) → `refused`; the gateway down → retried with backoff. Each final
 * outcome is logged with the state change, in one transaction.
 */
export async function processRevocationOutbox(ctx: MunicipalityContext, fed: FederationLink, options: { now?: Date; limit?: number } = {}): Promise<RevocationOutboxRun> {
  const run: RevocationOutboxRun = { sent: 0, refused: 0, deferred: 0 };
  for (const item of await dueRevocationOutboxItems(ctx.models.RevocationOutbox, options.now ?? new Date(), options.limit ?? 100)) {
    const outcome = await deliverToGateway(fed, CONSENT_REVOCATIONS_GATEWAY_PATH, async () => ({ revocation: await buildConsentRevocation(ctx, fed, item) }), item.id, 'recorded');
    if ('retry' in outcome) {
      const attempts = item.attempts + 1;
      await updateRevocationOutboxItem(ctx.models.RevocationOutbox, item.id, { attempts, lastError: outcome.retry.slice(0, 200), nextAttemptAt: nextAttemptAt(attempts, outcome.retryAfter) });
      ctx.logger.warn({ revocation: item.id, attempts, error: outcome.retry }, 'consent revocation deferred');
      run.deferred += 1;
      continue;
    }
    const final = outcome;
    await inTransaction(ctx.sequelize, async (t) => {
      await updateRevocationOutboxItem(ctx.models.RevocationOutbox, item.id, {
        status: final.status, attempts: item.attempts + 1, lastError: final.status === 'refused' ? final.detail : null,
        sentAt: final.status === 'sent' ? new Date().toISOString() : null,
      }, t);
      await appendAccess(ctx.models.AccessLog, t, {
        requestId: item.id, actorType: 'system', actorId: REVOCATION_ACTOR, actingMunicipality: ctx.config.MUNICIPALITY_CODE,
        action: Actions.CONSENT_REVOCATION_SEND, consentId: item.consentId, outcome: final.status === 'sent' ? 'allowed' : 'denied',
        reason: final.status === 'sent' ? null : final.detail, details: { sources: item.sources, revokedAt: item.revokedAt, via: GATEWAY_ID, gateway: final.detail },
      });
    });
    run[final.status] += 1;
  }
  return run;
}

/** Sends queued revocations every `seconds`; woken at once when a revocation commits. */
export function startRevocationOutbox(ctx: MunicipalityContext, fed: FederationLink, seconds = 2): PeriodicTask {
  return runEvery(seconds, async () => {
    const run = await processRevocationOutbox(ctx, fed);
    if (run.sent || run.refused) ctx.logger.info({ ...run }, 'consent revocations sent');
  }, ctx.logger, 'consent revocation outbox');
}

/* ---------- at a source: the revocation the gateway relays ---------- */

const refused = (status: number, code: string, title: string, field: string, rule: string) => new AppError(status, code, title, { field, rule });

/** Verifies a relayed revocation: relayed by the gateway, signed by the requester itself, naming us as a source. */
async function verifyRelayedRevocation(ctx: MunicipalityContext, fed: FederationLink, peer: string, message: string): Promise<ConsentRevocationClaims> {
  const self = ctx.config.MUNICIPALITY_CODE;
  if (peer !== GATEWAY_ID) throw refused(403, 'forbidden', 'Only the gateway relays consent revocations', 'client certificate', 'must be the gateway');
  let requester: unknown;
  try {
    requester = peekJwt(message).claims.iss;
  } catch {
    throw refused(400, 'invalid-token', 'Revocation is not a readable JWS', 'revocation', 'must be a compact JWS');
  }
  if (typeof requester !== 'string' || !isValidMunicipalityCode(requester) || requester === self) {
    throw refused(400, 'invalid-claims', 'Revocation issuer malformed', 'revocation.iss', 'must be another municipality of the federation');
  }
  // The requester's own signature, with its key from our verified directory: the gateway cannot forge a revocation.
  const { key } = await fed.peers.signingKey(requester);
  const claims = await verifyMessage(message, consentRevocationClaimsSchema, {
    key, issuer: requester, audience: GATEWAY_ID, typ: Typ.CONSENT_REVOCATION, maxAgeSeconds: CONSENT_REVOCATION_MAX_AGE_SECONDS,
  });
  if (!claims.sources.includes(self)) throw refused(400, 'invalid-claims', 'Revocation not about a consent to ask this municipality', 'revocation.sources', 'must name this municipality');
  return claims;
}

/**
 * Handles one relayed revocation (`peer` is the verified client certificate's CN): records the
 * revoked consent id for its requester once, logs it, and answers whether it was new. Refusals
 * are logged too, then returned as problems (the gateway stops retrying a 4xx).
 */
export async function receiveConsentRevocation(ctx: MunicipalityContext, fed: FederationLink, peer: string, message: string): Promise<{ created: boolean }> {
  const requestHash = sha256Hex(message);
  const log = (t: Transaction, entry: { requester: string | null; consentId: string | null; outcome: 'allowed' | 'denied'; reason: string | null; details: Record<string, unknown> }) =>
    appendAccess(ctx.models.AccessLog, t, {
      actorType: 'member', actorId: entry.requester ?? peer, actorRole: 'requester', actingMunicipality: entry.requester, action: Actions.CONSENT_REVOCATION_RECEIVE,
      consentId: entry.consentId, outcome: entry.outcome, reason: entry.reason, requestHash, details: { via: GATEWAY_ID, ...entry.details },
    });
  let claims: ConsentRevocationClaims;
  try {
    claims = await verifyRelayedRevocation(ctx, fed, peer, message);
    adoptRequestId(claims.jti);
  } catch (err) {
    const e = err instanceof AppError ? err : undefined;
    await inTransaction(ctx.sequelize, (t) => log(t, {
      requester: null, consentId: null, outcome: 'denied', reason: e?.code ?? 'invalid-revocation',
      details: { peer, field: e?.extra.field ?? null, rule: e?.extra.rule ?? null },
    }));
    ctx.logger.warn({ peer, code: e?.code }, 'consent revocation refused');
    throw e ?? refused(400, 'invalid-revocation', 'Consent revocation refused', 'revocation', 'must be a valid consent revocation');
  }
  const c = claims;
  return inTransaction(ctx.sequelize, async (t) => {
    await keepHeads(ctx.models.WitnessedHead, t, [{ member: c.iss, head: c.head, exchange: 'revocation', requestId: c.jti, message }]);
    const held = await findReceivedRevocation(ctx.models.ReceivedRevocation, c.requester, c.consentId, t);
    if (!held) {
      await insertReceivedRevocation(ctx.models.ReceivedRevocation, {
        requester: c.requester, consentId: c.consentId, revokedAt: c.revokedAt, messageJti: c.jti, messageHash: requestHash, receivedAt: new Date().toISOString(),
      }, t);
    }
    await log(t, { requester: c.requester, consentId: c.consentId, outcome: 'allowed', reason: null, details: { created: !held, revokedAt: c.revokedAt } });
    return { created: !held };
  });
}
