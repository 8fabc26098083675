/**
 * Code derivation (docs/DESIGN.md §3.4, §2.1). The issuer holds the keys and no table: the gateway holds the
 * table and no key, so neither alone can turn a code back into a My Number.
 */
import type { z } from 'zod';
import { mapWithLimit, SUBJECTS_IN_FLIGHT } from '../../shared/platform/concurrency.ts';
import { hmacSha256, signPayload } from '../../shared/crypto.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { AppError } from '../../shared/platform/errors.ts';
import { isPeerUnavailable, type Member } from '../../shared/federation/member-http.ts';
import { classifyPeerReply } from '../../shared/federation/peer-reply.ts';
import { GATEWAY_ID, ISSUER_ID, Typ, type Attestation, type LogHead } from '../../shared/federation/protocol.ts';
import { logMemberAccess } from '../../shared/access-log/member-access.ts';
import { currentHead, keepHeads, type SeenHead } from '../../shared/access-log/heads.ts';
import { IssuerActions } from './actions.ts';
import type { IssuerContext } from './context.ts';
import { correspondenceBatchAnswerSchema } from './schemas.ts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const CODE_LENGTH = 26;
/** How long a municipality's outbox should wait before retrying when the gateway is down. */
export const REGISTRATION_RETRY_AFTER_SECONDS = 30;

/** RFC 4648 base32, no padding. */
export function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** linkId = HMAC-SHA256(link key, My Number), base64url. Goes to the gateway, never to a municipality. */
export const deriveLinkId = (linkKey: Buffer, myNumber: string): string => hmacSha256(linkKey, myNumber).toString('base64url');

/** code_M = base32(HMAC-SHA256(code key, M ‖ linkId)), first 26 characters (130 bits). M is 6 digits, so ‖ is unambiguous. */
export const deriveCode = (codeKey: Buffer, municipality: string, linkId: string): string =>
  base32(hmacSha256(codeKey, municipality + linkId)).slice(0, CODE_LENGTH);

/** The attestation's link: equal for one person's codes, useless for finding the linkId. */
export const attestationLink = (attestationKey: Buffer, linkId: string): string => hmacSha256(attestationKey, linkId).toString('base64url');

export interface IssuedCode {
  code: string;
  attestation: string;
}

/** A code the gateway refused to record (it knows the code for another link, or the link under another code). */
export interface RefusedCode {
  refused: 'code_taken' | 'link_has_other_code';
}

export type IssueOutcome = IssuedCode | RefusedCode;

export const isIssued = (outcome: IssueOutcome): outcome is IssuedCode => 'code' in outcome;

export const gatewayUnavailable = () => new AppError(503, 'gateway-unavailable', 'The gateway could not record the code; retry later', {
  retryAfter: REGISTRATION_RETRY_AFTER_SECONDS,
});

/**
 * Derives `municipality`'s codes for a batch of My Numbers, has the gateway record the
 * correspondences in one call, and returns each code with its own signed attestation, in order
 * (they are forwarded one by one later). The My Numbers live only in this call. If the gateway
 * cannot be reached, refuses the batch or answers nonsense, the whole batch fails (503): a code the
 * gateway does not know would be unusable, and the municipality's outbox retries. An item the
 * gateway refuses (a conflict) fails alone. One access-log transaction per batch, one entry per item.
 * Heads go both ways at each hop (docs/PROTOCOL.md §3.0): the municipality's and the gateway's are
 * kept with the batch's entries; the issuer's own goes to the gateway and back in the answer.
 */
export async function issueCodes(ctx: IssuerContext, member: Member, myNumbers: string[], senderHead?: LogHead): Promise<{ outcomes: IssueOutcome[]; head: LogHead }> {
  const municipality = member.id;
  const derived = myNumbers.map((myNumber) => {
    const linkId = deriveLinkId(ctx.config.LINK_KEY, myNumber);
    return { linkId, code: deriveCode(ctx.config.CODE_KEY, municipality, linkId) };
  });
  // One signature per person, even when a batch names someone twice; a few at a time (RSA signing runs on libuv's pool).
  const people = [...new Map(derived.map((d) => [d.linkId, d])).values()];
  const signed = await mapWithLimit(people, SUBJECTS_IN_FLIGHT, ({ linkId, code }) => {
    const claims: Attestation = { iss: ISSUER_ID, municipality, code, link: attestationLink(ctx.config.ATTESTATION_KEY, linkId) };
    return signPayload(claims, { ...ctx.credentials.signer, typ: Typ.ATTESTATION });
  });
  const attestationOf = new Map(people.map((p, i) => [p.linkId, signed[i]!]));
  const registrations = derived.map(({ linkId, code }) => ({ linkId, municipality, code, attestation: attestationOf.get(linkId)! }));

  let results: z.infer<typeof correspondenceBatchAnswerSchema>['results'] | undefined;
  let gatewayHead: LogHead | undefined;
  let failure = 'gateway_unavailable';
  const seen = (): SeenHead[] => [
    ...(senderHead ? [{ member: municipality, head: senderHead, exchange: 'registration' as const }] : []),
    ...(gatewayHead ? [{ member: GATEWAY_ID, head: gatewayHead, exchange: 'registration' as const }] : []),
  ];
  try {
    const res = await ctx.client.postJson(`${ctx.config.GATEWAY_URL}/correspondence/batch`, { registrations, head: await currentHead(ctx.sequelize) }, {
      expectPeer: GATEWAY_ID, timeoutMs: ctx.config.GATEWAY_TIMEOUT_MS,
    });
    if (classifyPeerReply(res).outcome !== 'ok') failure = `gateway_refused_${res.status}`;
    else {
      const answer = correspondenceBatchAnswerSchema.safeParse(res.body);
      // Each result must be about the item sent in its place: a code is handed out only once the gateway holds it.
      const matches = answer.success && answer.data.results.length === registrations.length
        && answer.data.results.every((r, i) => r.code === registrations[i]!.code && r.municipality === municipality);
      if (matches) {
        results = answer.data.results;
        gatewayHead = answer.data.head;
      }
      else failure = 'gateway_invalid_answer';
    }
  } catch (err) {
    if (!isPeerUnavailable(err)) throw err;
  }

  if (!results) {
    await inTransaction(ctx.sequelize, async (t) => {
      await logMemberAccess(ctx.models.AccessLog, t, member, registrations.map(({ code }) => ({
        action: IssuerActions.CODE_ISSUE, actingMunicipality: municipality, subject: code, outcome: 'denied' as const, reason: failure,
      })));
      await keepHeads(ctx.models.WitnessedHead, t, seen());
    });
    ctx.logger.warn({ municipality, codes: registrations.length, reason: failure }, 'correspondence registration failed');
    throw gatewayUnavailable();
  }
  const outcomes = results.map((r, i): IssueOutcome => (r.status === 'refused'
    ? { refused: r.reason }
    : { code: registrations[i]!.code, attestation: registrations[i]!.attestation }));
  await inTransaction(ctx.sequelize, async (t) => {
    await logMemberAccess(ctx.models.AccessLog, t, member, outcomes.map((o, i) => ({
      action: IssuerActions.CODE_ISSUE, actingMunicipality: municipality, subject: registrations[i]!.code,
      ...(isIssued(o) ? { outcome: 'allowed' as const } : { outcome: 'denied' as const, reason: `gateway_refused_${o.refused}` }),
    })));
    await keepHeads(ctx.models.WitnessedHead, t, seen());
  });
  const refusedCount = outcomes.filter((o) => !isIssued(o)).length;
  if (refusedCount > 0) ctx.logger.warn({ municipality, codes: registrations.length, refused: refusedCount }, 'gateway refused some correspondences');
  return { outcomes, head: await currentHead(ctx.sequelize) };
}
