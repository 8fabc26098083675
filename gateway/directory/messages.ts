/**
 * How the gateway reads a member's signed message (docs/PROTOCOL.md §3): readable, signed in the
 * name of the member whose certificate opened the connection (403 `requester-mismatch` otherwise),
 * then verified with that member's key from the verified directory — the `kid` names which, so a
 * renewed key still verifies. One way for queries, trail requests, correction notices and consent
 * revocations; `verifySignedBy` alone reads a source's answer the gateway relays.
 */
import type { z } from 'zod';
import { peekJwt } from '../../shared/crypto.ts';
import type { Member } from '../../shared/federation/member-http.ts';
import { verifyMessage, type VerifyMessageOptions } from '../../shared/federation/messages.ts';
import { AppError } from '../../shared/platform/errors.ts';
import type { GatewayContext } from '../context.ts';

/** Verifies `compact` as signed by member `signer`, with its directory key. */
export async function verifySignedBy<S extends z.ZodType>(
  ctx: GatewayContext, signer: string, compact: string, schema: S, options: Omit<VerifyMessageOptions, 'key' | 'issuer'>, header?: Record<string, unknown>,
): Promise<z.infer<S>> {
  let kid: unknown;
  try {
    kid = (header ?? peekJwt(compact).header).kid;
  } catch {
    kid = undefined;
  }
  const { key } = await ctx.directory.signingKey(signer, typeof kid === 'string' ? kid : undefined);
  return verifyMessage(compact, schema, { ...options, key, issuer: signer });
}

export interface MemberMessageOptions extends Omit<VerifyMessageOptions, 'key' | 'issuer' | 'audience'> {
  /** The body field that carries the message, for the problems (`query`, `notice` …). */
  field: string;
  /** What it is, for the problems' titles (`Query`, `Notice` …). */
  what: string;
  /** The audience, when it is read from the message itself (a notice names its recipient). */
  audience: string | ((claims: Record<string, unknown>) => Promise<string>);
}

/** A member's own message: readable, in its own name, then `verifySignedBy`. */
export async function verifyMemberMessage<S extends z.ZodType>(
  ctx: GatewayContext, sender: Member, compact: string, schema: S, options: MemberMessageOptions,
): Promise<z.infer<S>> {
  const { field, what, audience, ...verify } = options;
  let peek: ReturnType<typeof peekJwt>;
  try {
    peek = peekJwt(compact);
  } catch {
    throw new AppError(400, 'invalid-token', `${what} is not a readable JWS`, { field, rule: 'must be a compact JWS with a JSON header and claims' });
  }
  const { claims, header } = peek;
  if (typeof claims.iss !== 'string' || typeof header.alg !== 'string') {
    throw new AppError(400, 'invalid-token', `${what} lacks a signer`, { field, rule: 'must name its issuer (iss) and algorithm (alg)' });
  }
  if (claims.iss !== sender.id) {
    throw new AppError(403, 'requester-mismatch', `${what} signed in another member's name`, { field: `${field}.iss`, rule: 'must equal the client certificate CN' });
  }
  return verifySignedBy(ctx, sender.id, compact, schema, { ...verify, audience: typeof audience === 'string' ? audience : await audience(claims) }, header);
}
