/**
 * The gateway's own entries about a resident (docs/PROTOCOL.md §3.10, docs/DESIGN.md §4.14). The
 * municipality a resident lives in (B) asks, for the resident signed in at its page, what the
 * gateway logged about them: routed queries and their answers, trail requests, registrations of
 * their codes, correction relays, consent revocations and their relays. The request names B's
 * code alone and the gateway answers on B's word — B is where the resident lives and already
 * holds every fact of these entries that concerns it — so the gateway sees no certificate, no
 * identity, nothing it did not see before. It finds every code on the same link, reads its log,
 * and returns each entry stripped to metadata (municipality, action, purpose, legal basis,
 * outcome, reason, time, flags): no code of any municipality, no staff id, no request id. The
 * entries are signed by the gateway and sealed for B; the request is logged.
 */
import { randomUUID } from 'node:crypto';
import { currentHead, keepHeads } from '../../shared/access-log/heads.ts';
import { logMemberAccess } from '../../shared/access-log/member-access.ts';
import { flagsOf, type AccessEntryView } from '../../shared/access-log/query.ts';
import { sha256Hex } from '../../shared/crypto.ts';
import type { Member } from '../../shared/federation/member-http.ts';
import { sealMessage, signMessage } from '../../shared/federation/messages.ts';
import {
  GATEWAY_ID, Typ, gatewayTrailRequestClaimsSchema, type GatewayTrailItem, type GatewayTrailRequestClaims,
} from '../../shared/federation/protocol.ts';
import { isValidMunicipalityCode } from '../../shared/identifiers.ts';
import { adoptRequestId } from '../../shared/platform/context.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { AppError } from '../../shared/platform/errors.ts';
import { GatewayActions } from '../access-log/actions.ts';
import { verifyMemberMessage } from '../directory/messages.ts';
import { entriesAboutPerson } from '../access-log/model.ts';
import { findByCodes, findByLinks } from '../codes/model.ts';
import type { GatewayContext } from '../context.ts';
import { verifiedOrLogged } from './service.ts';
import { rememberJti } from '../routing/model.ts';

/** The other municipality an entry names in its details (a query's source, a relay's recipient), if any. */
function counterpartOf(details: Record<string, unknown>): string | null {
  const named = details.source ?? details.recipient;
  return typeof named === 'string' && isValidMunicipalityCode(named) ? named : null;
}

/** One entry as the resident may see it: the listed fields only, and a reason that names none of the person's codes. */
function toItem(e: AccessEntryView, codes: string[]): GatewayTrailItem {
  const reason = e.reason && !codes.some((c) => e.reason!.includes(c)) ? e.reason.slice(0, 200) : null;
  return {
    at: e.at, municipality: e.actingMunicipality, counterpart: counterpartOf(e.details), action: e.action, purpose: e.purpose,
    legalBasis: e.legalBasis, outcome: e.outcome, reason, flags: flagsOf(e).slice(0, 20),
  };
}

/** Verifies B's request, reads and logs; returns the gateway's signed answer for B. */
export async function answerGatewayTrail(ctx: GatewayContext, requester: Member, compact: string): Promise<string> {
  const requestHash = sha256Hex(compact);
  const request = await verifiedOrLogged(ctx, requester, requestHash, GatewayActions.TRAIL_DISCLOSE, () => verifyRequest(ctx, requester, compact));
  const found = await inTransaction(ctx.sequelize, async (t) => {
    if (!(await rememberJti(ctx.models.ReplayCache, request.iss, request.jti, request.exp, t))) {
      throw new AppError(409, 'replayed', 'Gateway trail request already received', { field: 'request.jti', rule: 'must not be reused' });
    }
    // B's head as B signed it (§3.0), kept with the entry about its request.
    await keepHeads(ctx.models.WitnessedHead, t, [{ member: request.iss, head: request.head, exchange: 'trail', requestId: request.rid, message: compact }]);
    const mine = (await findByCodes(ctx.models.Correspondence, requester.id, [request.sub], t)).get(request.sub);
    const codes = mine ? [...(await findByLinks(ctx.models.Correspondence, [mine.linkId], t)).values()].map((c) => c.code) : [];
    const about = mine ? await entriesAboutPerson(ctx.models.AccessLog, codes, t) : null;
    await logMemberAccess(ctx.models.AccessLog, t, requester, [{
      requestId: request.rid, action: GatewayActions.TRAIL_DISCLOSE, actingMunicipality: requester.id, subject: request.sub,
      outcome: about ? 'allowed' : 'denied', reason: about ? null : 'code_not_yours', requestHash,
      details: { items: about?.entries.length ?? 0, truncated: about?.truncated ?? false },
    }]);
    return about ? { items: about.entries.map((e) => toItem(e, codes)), truncated: about.truncated } : null;
  });
  const entries = found
    ? await sealMessage({ aud: request.iss, jti: randomUUID(), requestJti: request.jti, items: found.items, truncated: found.truncated },
      ctx.credentials.signer, Typ.GATEWAY_TRAIL_ENTRIES, await ctx.directory.encryptionKey(request.iss))
    : undefined;
  // Our head after the entry about this answer: B keeps it.
  return signMessage({
    aud: request.iss, jti: randomUUID(), rid: request.rid, requestJti: request.jti, status: found ? 'ok' : 'denied',
    ...(found ? {} : { reason: 'code_not_yours' }), ...(entries ? { entries } : {}), head: await currentHead(ctx.sequelize),
  }, ctx.credentials.signer, Typ.GATEWAY_TRAIL_ANSWER);
}

async function verifyRequest(ctx: GatewayContext, requester: Member, compact: string): Promise<GatewayTrailRequestClaims> {
  const request = await verifyMemberMessage(ctx, requester, compact, gatewayTrailRequestClaimsSchema, {
    field: 'request', what: 'Gateway trail request', audience: GATEWAY_ID, typ: Typ.GATEWAY_TRAIL_REQUEST,
  });
  adoptRequestId(request.rid);
  return request;
}
