/**
 * Code derivation (DESIGN.md §3). The issuer holds the keys and no table: the gateway holds the
 * table and no key, so neither alone can turn a code back into a My Number.
 */
import { hmacSha256, signPayload } from '../../shared/crypto.ts';
import { inTransaction } from '../../shared/db.ts';
import { AppError } from '../../shared/errors.ts';
import { isPeerUnavailable, type Member } from '../../shared/member-http.ts';
import { GATEWAY_ID, ISSUER_ID, Typ, type Attestation } from '../../shared/protocol.ts';
import { GatewayActions } from '../audit/actions.ts';
import { logMemberAccess } from '../audit/service.ts';
import type { IssuerContext } from './context.ts';

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

/**
 * Derives `municipality`'s code for a My Number, has the gateway record the correspondence, and
 * returns the code with the issuer's signed attestation. The My Number lives only in this call.
 * If the gateway cannot be reached the whole issuance fails (503): a code the gateway does not
 * know would be unusable, and the municipality's outbox retries.
 */
export async function issueCode(ctx: IssuerContext, member: Member, myNumber: string): Promise<IssuedCode> {
  const municipality = member.id;
  const linkId = deriveLinkId(ctx.config.LINK_KEY, myNumber);
  const code = deriveCode(ctx.config.CODE_KEY, municipality, linkId);
  const claims: Attestation = { iss: ISSUER_ID, municipality, code, link: attestationLink(ctx.config.ATTESTATION_KEY, linkId) };
  const attestation = await signPayload(claims, { ...ctx.credentials.signer, typ: Typ.ATTESTATION });

  let status: number;
  try {
    const res = await ctx.client.postJson(`${ctx.config.GATEWAY_URL}/correspondence`, { linkId, municipality, code, attestation }, {
      expectPeer: GATEWAY_ID, timeoutMs: ctx.config.GATEWAY_TIMEOUT_MS,
    });
    status = res.status;
  } catch (err) {
    if (!isPeerUnavailable(err)) throw err;
    status = 0;
  }
  if (status !== 200 && status !== 201) {
    await inTransaction(ctx.sequelize, (t) => logMemberAccess(ctx.models.AccessLog, t, member, [{
      action: GatewayActions.CODE_ISSUE, actingMunicipality: municipality, subject: code, outcome: 'denied',
      reason: status === 0 ? 'gateway_unavailable' : `gateway_refused_${status}`,
    }]));
    ctx.logger.warn({ municipality, gatewayStatus: status }, 'correspondence registration failed');
    throw new AppError(503, 'gateway-unavailable', 'The gateway could not record the code; retry later', {
      retryAfter: REGISTRATION_RETRY_AFTER_SECONDS,
    });
  }
  await inTransaction(ctx.sequelize, (t) => logMemberAccess(ctx.models.AccessLog, t, member, [{
    action: GatewayActions.CODE_ISSUE, actingMunicipality: municipality, subject: code, outcome: 'allowed',
  }]));
  return { code, attestation };
}
