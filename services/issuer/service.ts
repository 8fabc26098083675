/**
 * Code derivation (docs/DESIGN.md §3.4, §2.1, §4.2). The issuer holds its OPRF key share, the HMAC keys
 * and no table; the gateway holds the table and the other share. The issuer never sees a My Number:
 * it evaluates blinded points, then derives codes from the seeds municipalities finalized.
 */
import type { z } from 'zod';
import { mapWithLimit, SUBJECTS_IN_FLIGHT } from '../../shared/platform/concurrency.ts';
import { hmacSha256, sha256Hex, signPayload } from '../../shared/crypto.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { AppError } from '../../shared/platform/errors.ts';
import { isPeerUnavailable, type Member } from '../../shared/federation/member-http.ts';
import { classifyPeerReply } from '../../shared/federation/peer-reply.ts';
import { GATEWAY_ID, ISSUER_ID, Typ, type Attestation } from '../../shared/federation/protocol.ts';
import { signHead, verifySignedHead, type SignedHead } from '../../shared/federation/messages.ts';
import { logMemberAccess } from '../../shared/access-log/member-access.ts';
import { currentHead, keepHeads, type SeenHead } from '../../shared/access-log/heads.ts';
import { IssuerActions } from './actions.ts';
import type { IssuerContext } from './context.ts';
import { attestationsAnswerSchema, correspondenceBatchAnswerSchema, rekeyAnswerSchema } from './schemas.ts';

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

/**
 * linkId = HMAC-SHA256(link key, seed), base64url, where seed is the two-member OPRF output of the My
 * Number (docs/DESIGN.md §3.4). Goes to the gateway, never to a municipality. Residents registered
 * before blind derivation were keyed by HMAC(link key, My Number) and move over by rekey (§4.2).
 */
export const deriveLinkId = (linkKey: Buffer, seed: string): string => hmacSha256(linkKey, seed).toString('base64url');

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

/** This issuer's log head, signed for `audience`, the one peer a call or answer goes to (docs/PROTOCOL.md §3.0). */
const ownHead = async (ctx: IssuerContext, audience: string): Promise<string> => signHead(await currentHead(ctx.sequelize), ctx.credentials.signer, audience);

/** The gateway's signed head in its answer; undefined when it is missing or does not verify (the answer is then invalid). */
async function gatewayHeadIn(ctx: IssuerContext, statement: unknown): Promise<SignedHead | undefined> {
  try {
    return await verifySignedHead(statement, ctx.memberKey, GATEWAY_ID, ISSUER_ID);
  } catch {
    return undefined;
  }
}

/** A head a member signed, as the holder keeps it: with the statement that carried it. */
const seenIn = (member: string, signed: SignedHead): SeenHead => ({ member, head: signed.head, exchange: 'registration', message: signed.message });

/**
 * k_I·B for each blinded element of a municipality's batch, in order (docs/DESIGN.md §4.2): the
 * issuer learns nothing of whose they are. One access-log entry per batch, with the count.
 */
export async function evaluateBlinded(ctx: IssuerContext, member: Member, blinded: string[], sender: SignedHead): Promise<{ evaluated: string[]; head: string }> {
  const evaluated = blinded.map((point) => ctx.oprf.evaluate(point));
  await inTransaction(ctx.sequelize, async (t) => {
    await logMemberAccess(ctx.models.AccessLog, t, member, [{
      action: IssuerActions.CODE_EVALUATE, actingMunicipality: member.id, outcome: 'allowed', details: { points: blinded.length },
    }]);
    await keepHeads(ctx.models.WitnessedHead, t, [seenIn(member.id, sender)]);
  });
  return { evaluated, head: await ownHead(ctx, member.id) };
}

/**
 * Logs a batch of codes about to reach the gateway, before it does (docs/PROTOCOL.md §6.1): when
 * this append fails, the batch fails with 503 access-log-unavailable and the gateway hears nothing.
 */
async function logSend(ctx: IssuerContext, member: Member, kind: 'issue' | 'rekey', codes: string[]): Promise<void> {
  await inTransaction(ctx.sequelize, (t) => logMemberAccess(ctx.models.AccessLog, t, member, [{
    action: IssuerActions.CODE_SEND, actingMunicipality: member.id, outcome: 'allowed', details: { kind, codes: codes.length, digest: sha256Hex(codes.join('\n')) },
  }]));
}

const attest = (ctx: IssuerContext, municipality: string, code: string, linkId: string): Promise<string> => {
  const claims: Attestation = { iss: ISSUER_ID, municipality, code, link: attestationLink(ctx.config.ATTESTATION_KEY, linkId) };
  return signPayload(claims, { ...ctx.credentials.signer, typ: Typ.ATTESTATION });
};

/**
 * Derives `municipality`'s codes for a batch of seeds, has the gateway record the
 * correspondences in one call, and returns each code with its own signed attestation, in order
 * (they are forwarded one by one later). No My Number reaches the issuer (§4.2). If the gateway
 * cannot be reached, refuses the batch or answers nonsense, the whole batch fails (503): a code the
 * gateway does not know would be unusable, and the municipality's outbox retries. An item the
 * gateway refuses (a conflict) fails alone. One access-log transaction per batch, one entry per item.
 * Heads go both ways at each hop (docs/PROTOCOL.md §3.0): the municipality's and the gateway's are
 * kept with the batch's entries; the issuer's own goes to the gateway and back in the answer.
 */
export async function issueCodes(ctx: IssuerContext, member: Member, seeds: string[], sender: SignedHead): Promise<{ outcomes: IssueOutcome[]; head: string }> {
  const municipality = member.id;
  const derived = seeds.map((seed) => {
    const linkId = deriveLinkId(ctx.config.LINK_KEY, seed);
    return { linkId, code: deriveCode(ctx.config.CODE_KEY, municipality, linkId) };
  });
  // One signature per person, even when a batch names someone twice; a few at a time (signing runs on libuv's pool).
  const people = [...new Map(derived.map((d) => [d.linkId, d])).values()];
  const signed = await mapWithLimit(people, SUBJECTS_IN_FLIGHT, ({ linkId, code }) => attest(ctx, municipality, code, linkId));
  const attestationOf = new Map(people.map((p, i) => [p.linkId, signed[i]!]));
  const registrations = derived.map(({ linkId, code }) => ({ linkId, municipality, code, attestation: attestationOf.get(linkId)! }));

  let results: z.infer<typeof correspondenceBatchAnswerSchema>['results'] | undefined;
  let gatewayHead: SignedHead | undefined;
  let failure = 'gateway_unavailable';
  const seen = (): SeenHead[] => [seenIn(municipality, sender), ...(gatewayHead ? [seenIn(GATEWAY_ID, gatewayHead)] : [])];
  await logSend(ctx, member, 'issue', registrations.map((r) => r.code));
  try {
    const res = await ctx.client.postJson(`${ctx.config.GATEWAY_URL}/correspondence/batch`, { registrations, head: await ownHead(ctx, GATEWAY_ID) }, {
      expectPeer: GATEWAY_ID, timeoutMs: ctx.config.GATEWAY_TIMEOUT_MS,
    });
    if (classifyPeerReply(res).outcome !== 'ok') failure = `gateway_refused_${res.status}`;
    else {
      const answer = correspondenceBatchAnswerSchema.safeParse(res.body);
      // Each result must be about the item sent in its place: a code is handed out only once the gateway holds it.
      const matches = answer.success && answer.data.results.length === registrations.length
        && answer.data.results.every((r, i) => r.code === registrations[i]!.code && r.municipality === municipality);
      // The gateway's head must be its signed statement (docs/PROTOCOL.md §3.0), like the rest of a valid answer.
      const signedHead = matches ? await gatewayHeadIn(ctx, answer.data.head) : undefined;
      if (matches && signedHead) {
        results = answer.data.results;
        gatewayHead = signedHead;
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
  return { outcomes, head: await ownHead(ctx, municipality) };
}

/** What became of one code of a rekey: moved to its seed's link (or already there), or refused by the gateway. */
export type RekeyOutcome = { status: 'moved' | 'unchanged' } | { refused: 'unknown_code' | 'link_has_other_code' };

/**
 * One call to the gateway, carrying this issuer's signed head, whose answer must parse, match and
 * carry the gateway's signed head; the failure reason otherwise.
 */
async function askGateway<S extends z.ZodType>(ctx: IssuerContext, path: string, body: object, schema: S, matches: (answer: z.infer<S>) => boolean): Promise<{ answer: z.infer<S>; head: SignedHead } | { failure: string }> {
  try {
    const res = await ctx.client.postJson(`${ctx.config.GATEWAY_URL}${path}`, { ...body, head: await ownHead(ctx, GATEWAY_ID) }, { expectPeer: GATEWAY_ID, timeoutMs: ctx.config.GATEWAY_TIMEOUT_MS });
    if (classifyPeerReply(res).outcome !== 'ok') return { failure: `gateway_refused_${res.status}` };
    const answer = schema.safeParse(res.body);
    if (!answer.success || !matches(answer.data)) return { failure: 'gateway_invalid_answer' };
    const head = await gatewayHeadIn(ctx, (answer.data as { head?: unknown }).head);
    return head ? { answer: answer.data, head } : { failure: 'gateway_invalid_answer' };
  } catch (err) {
    if (!isPeerUnavailable(err)) throw err;
    return { failure: 'gateway_unavailable' };
  }
}

/**
 * Migration of codes issued under the old derivation (docs/DESIGN.md §4.2, PROTOCOL §3.1): for each
 * (code, seed) of the asking municipality, the gateway moves every row of that code's link — the
 * person's codes at every municipality — to linkId = HMAC(LINK_KEY, seed), codes unchanged; then
 * the issuer signs a new attestation for each of those codes (their `link` follows the linkId) and
 * the gateway replaces the old ones. Both steps are idempotent, so a retry after a failure between
 * them completes the move. The gateway must hold the code under this municipality: a municipality
 * proves its current code by its certificate and the code alone, never by a My Number.
 */
export async function rekeyCodes(ctx: IssuerContext, member: Member, items: { code: string; seed: string }[], sender: SignedHead): Promise<{ outcomes: RekeyOutcome[]; head: string }> {
  const municipality = member.id;
  const rekeys = items.map(({ code, seed }) => ({ municipality, code, linkId: deriveLinkId(ctx.config.LINK_KEY, seed) }));
  const heads: SeenHead[] = [seenIn(municipality, sender)];
  const fail = async (failure: string) => {
    await inTransaction(ctx.sequelize, async (t) => {
      await logMemberAccess(ctx.models.AccessLog, t, member, rekeys.map(({ code }) => ({
        action: IssuerActions.CODE_REKEY, actingMunicipality: municipality, subject: code, outcome: 'denied' as const, reason: failure,
      })));
      await keepHeads(ctx.models.WitnessedHead, t, heads);
    });
    ctx.logger.warn({ municipality, codes: rekeys.length, reason: failure }, 'rekey failed');
    throw gatewayUnavailable();
  };

  await logSend(ctx, member, 'rekey', rekeys.map((r) => r.code));
  const moved = await askGateway(ctx, '/correspondence/rekey', { rekeys }, rekeyAnswerSchema,
    (a) => a.results.length === rekeys.length && a.results.every((r, i) => r.code === rekeys[i]!.code));
  if ('failure' in moved) return fail(moved.failure);
  heads.push(seenIn(GATEWAY_ID, moved.head));

  // Every code now on each moved link gets an attestation naming the new link, one per (municipality, code).
  const toAttest = new Map<string, { municipality: string; code: string; linkId: string }>();
  moved.answer.results.forEach((r, i) => {
    if (r.status === 'refused') return;
    for (const c of r.codes) toAttest.set(`${c.municipality}|${c.code}`, { ...c, linkId: rekeys[i]!.linkId });
  });
  const rows = [...toAttest.values()];
  if (rows.length > 0) {
    const attestations = await mapWithLimit(rows, SUBJECTS_IN_FLIGHT, (row) => attest(ctx, row.municipality, row.code, row.linkId));
    const replaced = await askGateway(ctx, '/correspondence/attestations', { attestations }, attestationsAnswerSchema,
      (a) => a.results.length === rows.length && a.results.every((r, i) => r.code === rows[i]!.code && r.municipality === rows[i]!.municipality));
    if ('failure' in replaced) return fail(replaced.failure);
    heads.push(seenIn(GATEWAY_ID, replaced.head));
  }

  const outcomes = moved.answer.results.map((r): RekeyOutcome => (r.status === 'refused' ? { refused: r.reason } : { status: r.status }));
  await inTransaction(ctx.sequelize, async (t) => {
    await logMemberAccess(ctx.models.AccessLog, t, member, outcomes.map((o, i) => ({
      action: IssuerActions.CODE_REKEY, actingMunicipality: municipality, subject: rekeys[i]!.code,
      ...('refused' in o ? { outcome: 'denied' as const, reason: `gateway_refused_${o.refused}` } : { outcome: 'allowed' as const, details: { moved: o.status === 'moved' } }),
    })));
    await keepHeads(ctx.models.WitnessedHead, t, heads);
  });
  return { outcomes, head: await ownHead(ctx, municipality) };
}
