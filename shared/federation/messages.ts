/**
 * Signing and verifying federation messages: one function each way, for every member. A message
 * is a JWT with a pinned `typ`, verified with the sender's key (found by the caller in the
 * verified directory), then parsed with its zod schema so that no unexpected claim gets through.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import type { z } from 'zod';
import type { JWTPayload } from 'jose';
import { AppError } from '../platform/errors.ts';
import { CONTENT_ENCRYPTION, decryptWith, sha256Base64url, encryptFor, KEY_ENCRYPTION_ALG, peekJwt, SIGNING_ALG, signJwt, verifyJwt, type SignOptions } from '../crypto.ts';
import { headClaimsSchema, MAX_MESSAGE_AGE_SECONDS, signedHeadField, Typ, type LogHead } from './protocol.ts';

/** A member's own signing identity: its private key and the kid of its signing certificate. */
export interface Signer {
  id: string;
  key: KeyObject;
  kid: string;
}

export async function signMessage(claims: JWTPayload, signer: Signer, typ: string, ttlSeconds = MAX_MESSAGE_AGE_SECONDS): Promise<string> {
  const options: SignOptions = { key: signer.key, kid: signer.kid, typ };
  return signJwt({ ...claims, iss: signer.id }, options, ttlSeconds);
}

export interface VerifyMessageOptions {
  /** The sender's public key (from its CA-verified certificate). */
  key: KeyObject;
  issuer: string;
  audience: string;
  typ: string;
  maxAgeSeconds?: number;
  currentDate?: Date;
}

/**
 * Verifies signature, alg, typ, iss, aud, iat/exp/jti, then the claims' shape. Any failure is a
 * problem with a stable code (`invalid-signature`, `invalid-claims`), never a 500.
 */
export async function verifyMessage<S extends z.ZodType>(token: string, schema: S, options: VerifyMessageOptions): Promise<z.infer<S>> {
  let payload: JWTPayload;
  try {
    payload = await verifyJwt(token, { ...options, maxAgeSeconds: options.maxAgeSeconds ?? MAX_MESSAGE_AGE_SECONDS });
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'ERR_JOSE';
    throw new AppError(401, 'invalid-signature', `Message refused: ${code}`, { field: 'token', rule: ruleFor(code) });
  }
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AppError(400, 'invalid-claims', 'Message claims malformed', {
      field: issue?.path.join('.') || 'claims', rule: issue?.message ?? 'invalid',
    });
  }
  return parsed.data;
}

function ruleFor(code: string): string {
  switch (code) {
    case 'ERR_JWT_EXPIRED': return 'must not be expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': return 'iss, aud, typ, iat, jti and lifetime must match';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return 'signature must verify with the sender\'s key';
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return `alg must be ${SIGNING_ALG}`;
    default: return 'must be a valid signed message';
  }
}

/** Nested JWS in JWE: sign as `signer`, then encrypt for the recipient's encryption key. */
export async function sealMessage(claims: JWTPayload, signer: Signer, typ: string, recipient: { key: KeyObject; kid: string }, ttlSeconds?: number): Promise<string> {
  return encryptFor(await signMessage(claims, signer, typ, ttlSeconds), recipient.key, recipient.kid);
}

/** Decrypts with our encryption key, then verifies the inner message as `verifyMessage` does. */
export async function openMessage<S extends z.ZodType>(jwe: string, decryptionKey: KeyObject, schema: S, options: VerifyMessageOptions): Promise<z.infer<S>> {
  let inner: string;
  try {
    inner = await decryptWith(jwe, decryptionKey);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'ERR_JOSE';
    throw new AppError(400, 'invalid-encryption', `Sealed part refused: ${code}`, { field: 'sealed', rule: `must be a JWE for this member (${KEY_ENCRYPTION_ALG}, ${CONTENT_ENCRYPTION})` });
  }
  return verifyMessage(inner, schema, options);
}

/**
 * A companion envelope travels beside the signed message that names it by this digest
 * (docs/PROTOCOL.md §3.11): the signature covers 43 characters instead of the envelope itself, so no
 * hop base64-encodes, hashes or stores a batch's sealed part again inside another signature.
 */
export function companionDigest(compact: string): string {
  return sha256Base64url(compact);
}

/** The companion is the one the signed message names: both absent, or present with that digest. */
export function companionMatches(compact: string | undefined, digest: string | undefined): boolean {
  if (compact === undefined || digest === undefined) return compact === digest;
  return companionDigest(compact) === digest;
}

/* ---------- the sender's head on a registration call or answer (docs/PROTOCOL.md §3.0) ---------- */

/** How long a signed head is good for: it is signed for one call and read when that call arrives. */
export const HEAD_STATEMENT_TTL_SECONDS = 120;

/** A head as its sender signed it: the head, and the statement that carried it (its hash is kept). */
export interface SignedHead {
  head: LogHead;
  message: string;
}

/** Signs this member's `head` for `audience`, the one peer the call or answer goes to. */
export function signHead(head: LogHead, signer: Signer, audience: string): Promise<string> {
  return signMessage({ aud: audience, jti: randomUUID(), head }, signer, Typ.HEAD, HEAD_STATEMENT_TTL_SECONDS);
}

/** Where a receiver finds a member's verified signing key (the `kid` names which, so a renewed key still verifies). */
export type SigningKeyOf = (id: string, kid?: string) => Promise<{ key: KeyObject }>;

/**
 * Reads the `head` field of a registration call or answer: a compact JWS of typ
 * `hikitsugi-head+jwt`, signed by `sender` (the mTLS peer) for `audience` (this member). A missing,
 * unreadable or unsigned statement, one in another member's name, or one that does not verify with
 * the sender's key is a problem naming the field `head` and the rule; nothing is kept before this passes.
 */
export async function verifySignedHead(statement: unknown, keyOf: SigningKeyOf, sender: string, audience: string, now?: Date): Promise<SignedHead> {
  const field = signedHeadField.safeParse(statement);
  if (!field.success) {
    throw new AppError(400, 'invalid-head', 'The sender\'s signed log head is missing or malformed', { field: 'head', rule: field.error.issues[0]?.message ?? 'must be a compact JWS' });
  }
  let kid: unknown;
  let iss: unknown;
  try {
    const peek = peekJwt(field.data);
    kid = peek.header.kid;
    iss = peek.claims.iss;
  } catch {
    throw new AppError(400, 'invalid-head', 'The sender\'s signed log head is not readable', { field: 'head', rule: 'must be a compact JWS with a JSON header and claims' });
  }
  if (iss !== sender) {
    throw new AppError(403, 'requester-mismatch', 'Log head signed in another member\'s name', { field: 'head', rule: 'must be signed by the sender (iss equal to the peer certificate CN)' });
  }
  let key: KeyObject;
  try {
    ({ key } = await keyOf(sender, typeof kid === 'string' ? kid : undefined));
  } catch {
    throw new AppError(401, 'invalid-signature', 'Log head refused: no such signing key of the sender', { field: 'head', rule: 'kid must name a signing key of the sender in the directory' });
  }
  try {
    const claims = await verifyMessage(field.data, headClaimsSchema, { key, issuer: sender, audience, typ: Typ.HEAD, maxAgeSeconds: HEAD_STATEMENT_TTL_SECONDS, currentDate: now });
    return { head: claims.head, message: field.data };
  } catch (err) {
    if (err instanceof AppError) throw new AppError(err.status, err.code, `Log head refused: ${err.message}`, { field: 'head', rule: err.extra.rule ?? 'must verify' });
    throw err;
  }
}
