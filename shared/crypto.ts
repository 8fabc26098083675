/**
 * The project's one crypto module. Algorithms are pinned here and nowhere else: signatures are
 * ES256 (members' keys are EC P-256, docs/PROTOCOL.md §1), encryption is ECDH-ES with A256GCM,
 * staff sessions are HS256 under a per-municipality secret, data at rest is AES-256-GCM;
 * vaccination certificates (SMART Health Cards) are ES256 under the municipality's own P-256 key;
 * codes are derived blind with an RFC 9497 OPRF on P-256 whose key two members share (below).
 */
import {
  createCipheriv, createECDH, ECDH, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey,
  randomBytes, scrypt as scryptCb, timingSafeEqual, type KeyObject, type BinaryLike, type JsonWebKey,
} from 'node:crypto';
import { promisify } from 'node:util';
import * as jose from 'jose';
import { p256, p256_hasher } from '@noble/curves/nist.js';
import { AppError } from './platform/errors.ts';
import { impossibleDateIn } from './platform/dates.ts';
import { installBase64Methods } from './platform/base64.ts';

// jose's base64 through the runtime's native codec (why: shared/platform/base64.ts).
installBase64Methods();

const scrypt = promisify(scryptCb) as (password: BinaryLike, salt: BinaryLike, keylen: number, options: object) => Promise<Buffer>;

export const SIGNING_ALG = 'ES256';
/** Direct key agreement, no key wrap: why, at `encryptFor`. */
export const KEY_ENCRYPTION_ALG = 'ECDH-ES';
export const CONTENT_ENCRYPTION = 'A256GCM';
export const SESSION_ALG = 'HS256';
/** Tolerated clock difference between members, in seconds. */
export const CLOCK_SKEW_SECONDS = 60;

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
export const sha256Base64url = (data: string | Buffer): string => createHash('sha256').update(data).digest('base64url');
export const hmacSha256 = (key: Buffer | string, data: string | Buffer): Buffer => createHmac('sha256', key).update(data).digest();

/** Constant-time comparison of two strings. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/* ---------- data at rest ---------- */

/**
 * AES-256-GCM with a fresh 96-bit IV. `context` is bound as associated data so that a ciphertext
 * copied onto another row (another resident) fails to decrypt.
 */
export function encryptField(key: Buffer, plaintext: string, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
}

export function decryptField(key: Buffer, sealed: string, context: string): string {
  const [version, iv, tag, ciphertext] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('unknown field encryption format');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
}

/* ---------- passwords ---------- */

const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, 32, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  return timingSafeEqual(actual, expected);
}

/* ---------- staff session tokens ---------- */

export interface SessionClaims {
  sub: string;
  role: string;
  municipality: string;
  /** The account's session version at sign-in: a password change moves it on, ending older sessions. */
  ver: number;
}

/** A verified session: its claims plus the token id and times (the revocation list keys on `jti`). */
export interface VerifiedSession extends SessionClaims {
  jti: string;
  iat: number;
  exp: number;
}

/** A staff session's token type; a resident's session has its own (and its own key), so neither passes for the other. */
export const STAFF_SESSION_TYP = 'session+jwt';

export async function signSession(secret: Buffer, claims: SessionClaims, ttlSeconds: number, typ = STAFF_SESSION_TYP, jti: string = crypto.randomUUID()): Promise<string> {
  return new jose.SignJWT({ role: claims.role, municipality: claims.municipality, ver: claims.ver })
    .setProtectedHeader({ alg: SESSION_ALG, typ })
    .setSubject(claims.sub)
    .setIssuer(claims.municipality)
    .setAudience(claims.municipality)
    .setIssuedAt()
    .setJti(jti)
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(secret);
}

const sessionRefused = (code: string, message: string) => new AppError(401, code, message);

/**
 * Verifies a session token for this member only. Every refusal is a 401 naming why: a bad
 * signature or claim (`session-invalid`), no `exp`/`iat`/`jti` (`session-incomplete`), a lifetime
 * beyond `maxLifetimeSeconds` (`session-too-long`), issued or valid only in the future beyond the
 * clock skew (`session-not-yet-valid`), or expired (`session-expired`). Whether the account and
 * the token id are still good is the caller's check (shared/staff/auth.ts).
 */
export async function verifySession(secret: Buffer, token: string, municipality: string, maxLifetimeSeconds: number, typ = STAFF_SESSION_TYP): Promise<VerifiedSession> {
  let payload: jose.JWTPayload;
  try {
    ({ payload } = await jose.jwtVerify(token, secret, {
      algorithms: [SESSION_ALG], issuer: municipality, audience: municipality, typ, clockTolerance: CLOCK_SKEW_SECONDS,
    }));
  } catch (err) {
    if (err instanceof jose.errors.JWTExpired) throw sessionRefused('session-expired', 'Session expired: sign in again');
    if (err instanceof jose.errors.JWTClaimValidationFailed && (err.claim === 'nbf' || err.claim === 'iat')) {
      throw sessionRefused('session-not-yet-valid', 'Session token is not valid yet');
    }
    throw sessionRefused('session-invalid', 'Session token invalid');
  }
  const { exp, iat, jti, sub, role, ver } = payload;
  if (typeof exp !== 'number' || typeof iat !== 'number' || typeof jti !== 'string' || jti.length === 0 || jti.length > 64) {
    throw sessionRefused('session-incomplete', 'Session token lacks an expiry, issue time or token id');
  }
  const now = Math.floor(Date.now() / 1000);
  if (iat > now + CLOCK_SKEW_SECONDS) throw sessionRefused('session-not-yet-valid', 'Session token is issued in the future');
  if (exp - iat > maxLifetimeSeconds) throw sessionRefused('session-too-long', `Session token lives longer than ${maxLifetimeSeconds} seconds`);
  if (typeof sub !== 'string' || typeof role !== 'string' || payload.municipality !== municipality || typeof ver !== 'number' || !Number.isInteger(ver)) {
    throw sessionRefused('session-invalid', 'Session token invalid');
  }
  return { sub, role, municipality, ver, jti, iat, exp };
}

/* ---------- member-to-member JWS / JWE ---------- */

export interface SignOptions {
  key: KeyObject;
  kid: string;
  typ: string;
}

/*
 * The federation's JWS (ES256) and JWE (ECDH-ES + A256GCM) are made and checked by jose, with
 * every algorithm pinned on the way in: `algorithms` for signatures, `keyManagementAlgorithms` and
 * `contentEncryptionAlgorithms` for encryption. Errors are jose's own classes (messages.ts turns
 * their codes into problem rules). Two header parameters jose would honour are refused first,
 * because nothing in this federation uses them: `crit` (an extension the sender insists on, e.g.
 * an unencoded payload, RFC 7797) and, in a JWE, `zip` (compressed plaintext).
 */
const SIGNING = { algorithms: [SIGNING_ALG] };
const DECRYPTION = { keyManagementAlgorithms: [KEY_ENCRYPTION_ALG], contentEncryptionAlgorithms: [CONTENT_ENCRYPTION] };

/** The protected header of a compact JWS or JWE, refused with `Invalid` when it carries `crit` (or, in a JWE, `zip`). */
function refuseUnusedHeaders(compact: string, Invalid: typeof jose.errors.JWSInvalid | typeof jose.errors.JWEInvalid): void {
  let header: Record<string, unknown>;
  try {
    header = jose.decodeProtectedHeader(compact) as Record<string, unknown>;
  } catch {
    throw new Invalid('protected header is not a base64url JSON object');
  }
  if (header.crit !== undefined) throw new Invalid('"crit" (Critical) Header Parameter is not used in this federation');
  if (Invalid === jose.errors.JWEInvalid && header.zip !== undefined) throw new Invalid('"zip" (Compression Algorithm) Header Parameter is not used in this federation');
}

/**
 * Refuses to sign claims holding a date that is not a calendar date in range (docs/PROTOCOL.md §3):
 * 2026-02-30 never leaves a member under its signature, whatever it signs — a message, an
 * attestation, a checkpoint, a move link or a revocation list. `signJwt` and `signPayload`, the
 * only two ways a member signs JSON, both call it. 422: the data at hand, not the transport, is
 * at fault. The verifiers' schemas refuse the same dates on arrival (`dateTime`, `calendarDate`).
 */
export function checkClaimsBeforeSigning(claims: unknown): void {
  const found = impossibleDateIn(claims);
  if (found) throw new AppError(422, 'unsignable-claims', `Refused to sign: ${found.field} ${found.rule}`, found);
}

/**
 * Signs a JWT whose claims the caller composes (iss, aud, jti, exp are required by verifiers), with
 * iat and exp set here. A JWT is a JWS of its JSON claims (RFC 7519 §7.1): jose's CompactSign over
 * the claims serialized once, because SignJWT first deep-copies them (structuredClone), which for
 * a batch's claims cost more than the signature.
 */
export async function signJwt(claims: jose.JWTPayload, { key, kid, typ }: SignOptions, ttlSeconds: number): Promise<string> {
  checkClaimsBeforeSigning(claims);
  const iat = Math.floor(Date.now() / 1000);
  const payload = new TextEncoder().encode(JSON.stringify({ ...claims, iat, exp: iat + ttlSeconds }));
  return new jose.CompactSign(payload).setProtectedHeader({ alg: SIGNING_ALG, kid, typ }).sign(key);
}

export interface VerifyOptions {
  key: KeyObject;
  issuer: string;
  audience: string;
  typ: string;
  /** Maximum lifetime accepted, in seconds (docs/PROTOCOL.md §3: at most 300 s). */
  maxAgeSeconds: number;
  currentDate?: Date;
}

/**
 * Verifies a member's JWT with the algorithm pinned and iss, aud, typ (RFC 7515 §4.1.9: compared
 * as a media type), exp, nbf and iat checked with 60 s of clock skew, jti, iat and exp required,
 * iat no older than `maxAgeSeconds`: all jose's jwtVerify. Then what jose has no option for: a jti
 * of 8–128 characters and a lifetime (exp − iat) of at most `maxAgeSeconds`.
 */
export async function verifyJwt(token: string, options: VerifyOptions): Promise<jose.JWTPayload & { jti: string; exp: number; iat: number }> {
  if (typeof token !== 'string') throw new jose.errors.JWSInvalid('JWS must be a string');
  refuseUnusedHeaders(token, jose.errors.JWSInvalid);
  const { payload } = await jose.jwtVerify(token, options.key, {
    ...SIGNING, issuer: options.issuer, audience: options.audience, typ: options.typ,
    requiredClaims: ['jti', 'iat', 'exp'], maxTokenAge: options.maxAgeSeconds, clockTolerance: CLOCK_SKEW_SECONDS,
    ...(options.currentDate ? { currentDate: options.currentDate } : {}),
  });
  const fail = (message: string, claim: string) => new jose.errors.JWTClaimValidationFailed(message, payload, claim, 'check_failed');
  if (typeof payload.jti !== 'string' || payload.jti.length < 8 || payload.jti.length > 128) throw fail('jti malformed', 'jti');
  const { iat, exp } = payload as { iat: number; exp: number };
  if (exp - iat > options.maxAgeSeconds) throw fail('lifetime too long', 'exp');
  return payload as jose.JWTPayload & { jti: string; exp: number; iat: number };
}

/** Reads the unverified header and claims, only to pick the key to verify with. */
export function peekJwt(token: string): { header: jose.ProtectedHeaderParameters; claims: jose.JWTPayload } {
  return { header: jose.decodeProtectedHeader(token) as jose.ProtectedHeaderParameters, claims: jose.decodeJwt(token) };
}

/**
 * Compact JWE of a string (usually a JWS) for one recipient's encryption key: ECDH-ES in direct
 * key agreement mode (RFC 7518 §4.6) with A256GCM. Direct, not ECDH-ES+A256KW: every JWE has one
 * recipient and a fresh ephemeral key, so the agreed key is already a fresh content key; wrapping
 * a random one would add an AES-KW step and 40 bytes and buy nothing (key wrapping earns its
 * place only when one content key goes to several recipients).
 */
export async function encryptFor(plaintext: string, recipientKey: KeyObject, kid: string, cty = 'JWT'): Promise<string> {
  return new jose.CompactEncrypt(new TextEncoder().encode(plaintext))
    .setProtectedHeader({ alg: KEY_ENCRYPTION_ALG, enc: CONTENT_ENCRYPTION, kid, cty })
    .encrypt(recipientKey);
}

/**
 * Opens a compact JWE made for our key, with ECDH-ES and A256GCM pinned. jose answers every
 * failure after the header checks (an ephemeral key off the curve, another recipient's key, a
 * changed byte) with one JWEDecryptionFailed: no oracle on which part was wrong.
 */
export async function decryptWith(jwe: string, key: KeyObject): Promise<string> {
  if (typeof jwe !== 'string') throw new jose.errors.JWEInvalid('JWE must be a string');
  refuseUnusedHeaders(jwe, jose.errors.JWEInvalid);
  const { plaintext } = await jose.compactDecrypt(jwe, key, DECRYPTION);
  return new TextDecoder().decode(plaintext);
}

/**
 * Signs a JSON payload as a compact JWS (attestations, checkpoints and countersignatures, move
 * links, revocation lists), its dates checked first like a JWT's claims.
 */
export async function signPayload(payload: unknown, { key, kid, typ }: SignOptions): Promise<string> {
  checkClaimsBeforeSigning(payload);
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: SIGNING_ALG, kid, typ }).sign(key);
}

/** Verifies a compact JWS made by `signPayload` with the algorithm and `typ` pinned; returns its JSON payload. */
export async function verifyPayload<T>(jws: string, key: KeyObject, typ: string): Promise<T> {
  if (typeof jws !== 'string') throw new jose.errors.JWSInvalid('JWS must be a string');
  let known = verifiedPayloads.get(key);
  let verified = known?.get(jws);
  if (!verified) {
    refuseUnusedHeaders(jws, jose.errors.JWSInvalid);
    const { protectedHeader, payload } = await jose.compactVerify(jws, key, SIGNING);
    verified = { typ: protectedHeader.typ, payload: new TextDecoder().decode(payload) };
    if (!known) verifiedPayloads.set(key, known = new Map());
    if (known.size >= VERIFIED_PAYLOADS_PER_KEY) known.delete(known.keys().next().value!);
    known.set(jws, verified);
  }
  if (verified.typ !== typ) throw new jose.errors.JWSInvalid(`unexpected typ ${String(verified.typ)}`);
  try {
    return JSON.parse(verified.payload) as T;
  } catch {
    throw new jose.errors.JWSInvalid('JWS Payload is not JSON');
  }
}

/**
 * What `verifyPayload` found, per key and signed text. Its answer depends on nothing else (no
 * clock, no audience): the same bytes under the same key verify the same way every time. The
 * issuer's attestations are the case it is for — a source verifies two per subject of every
 * query (docs/PROTOCOL.md §3.6), and a resident asked about again carries the same two. Kept per
 * key object, so a rotated or revoked key takes its entries with it; the oldest go first.
 */
const verifiedPayloads = new WeakMap<KeyObject, Map<string, { typ: unknown; payload: string }>>();
const VERIFIED_PAYLOADS_PER_KEY = 10_000;

/* ---------- SMART Health Cards (docs/DESIGN.md §4.11) ---------- */

/** The one algorithm of SMART Health Cards (spec: "ES256", P-256 keys). */
export const HEALTH_CARD_ALG = 'ES256';

/**
 * A municipality's health-card signing key from its configuration text: a PKCS#8 (or SEC 1) PEM,
 * with real or `\n`-escaped line breaks, or a private JWK. Anything but an EC P-256 private key is
 * refused; the message names the setting, never the value.
 */
export function parseHealthCardKey(text: string, name: string): KeyObject {
  const refused = new Error(`${name} must be an EC P-256 private key (PKCS#8 PEM or a private JWK)`);
  const source = text.trim();
  let key: KeyObject;
  try {
    key = source.startsWith('{')
      ? createPrivateKey({ key: JSON.parse(source) as JsonWebKey, format: 'jwk' })
      : createPrivateKey({ key: source.replace(/\\n/g, '\n'), format: 'pem' });
  } catch {
    throw refused;
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw refused;
  return key;
}

/** The public half of a health-card key as a JWKS entry: public members only, `kid` its thumbprint. */
export interface HealthCardPublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  use: 'sig';
  alg: typeof HEALTH_CARD_ALG;
}

/**
 * The JWK a verifier fetches from `<iss>/.well-known/jwks.json`. The `kid` is the RFC 7638 JWK
 * thumbprint (SHA-256 over the required members crv, kty, x, y in that order, no whitespace), as
 * the SMART Health Cards spec requires; nothing private is copied across.
 */
export function healthCardPublicJwk(privateKey: KeyObject): HealthCardPublicJwk {
  const { x, y } = createPublicKey(privateKey).export({ format: 'jwk' });
  if (typeof x !== 'string' || typeof y !== 'string') throw new Error('not an EC key');
  const kid = createHash('sha256').update(JSON.stringify({ crv: 'P-256', kty: 'EC', x, y })).digest('base64url');
  return { kty: 'EC', crv: 'P-256', x, y, kid, use: 'sig', alg: HEALTH_CARD_ALG };
}

/**
 * A health card's compact JWS: ES256 over the already DEFLATE-compressed payload, header
 * `{ alg: 'ES256', zip: 'DEF', kid }` (SMART Health Cards spec, "Health Cards are encoded as
 * compact serialization JSON Web Signatures"). jose signs, as it signs every federation message.
 */
export function signHealthCard(deflatedPayload: Uint8Array, key: KeyObject, kid: string): Promise<string> {
  return new jose.CompactSign(deflatedPayload).setProtectedHeader({ alg: HEALTH_CARD_ALG, zip: 'DEF', kid }).sign(key);
}

export { jose };

/* ---------- blind code derivation: a two-member OPRF (docs/DESIGN.md §3.4, §4.2) ---------- */

/**
 * 2HashDH (RFC 9497 OPRF, mode 0x00, suite P256-SHA256) with the key split between two members:
 * the issuer multiplies by k_I, the gateway by k_G, so the output is the OPRF under
 * k = k_I·k_G mod n and only a holder of both shares, or a municipality that asks both members,
 * can evaluate it. HashToGroup is RFC 9380's P256_XMD:SHA-256_SSWU_RO_ with RFC 9497's DST
 * (@noble/curves); every scalar multiplication is node:crypto's ECDH (OpenSSL, constant time,
 * 0.17 ms against 5.5 ms in JavaScript, docs/DESIGN.md §4.2), which yields the x-coordinate only.
 * So every element travels as the compressed point of even y with that x (SEC1 0x02 ‖ x, 33 bytes,
 * base64url): k·(−P) = −(k·P), so the hops commute with the sign and the municipality's unblinded
 * element is ±k·H(x), normalized to even y before RFC 9497's Finalize hash. The output is the RFC's
 * for the even representative: a deterministic PRF of (k, My Number) either way.
 */
export const OPRF_SUITE = 'P256-SHA256';
const OPRF_CURVE = 'prime256v1';
const HASH_TO_GROUP_DST = `HashToGroup-OPRFV1-\x00-${OPRF_SUITE}`;
/** A compressed P-256 point in base64url (33 bytes → 44 characters). */
export const POINT_PATTERN = /^[A-Za-z0-9_-]{44}$/;
export const POINT_RULE = 'must be a compressed P-256 point (base64url), on the curve and not the identity';
const KEY_RULE = 'must be a P-256 scalar between 1 and n−1 (64 hex characters)';

const P256_ORDER = p256.Point.Fn.ORDER;
const scalarOf = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
const scalarBytes = (k: bigint): Buffer => Buffer.from(k.toString(16).padStart(64, '0'), 'hex');
const evenPoint = (x: Buffer): Buffer => Buffer.concat([Buffer.from([0x02]), x]);

/** True when `text` is a point a member may multiply: 33-byte compressed, on P-256 (OpenSSL decodes it); the identity has no such encoding (RFC 9497 §3.3). */
export function isValidPoint(text: unknown): text is string {
  if (typeof text !== 'string' || !POINT_PATTERN.test(text)) return false;
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.length !== 33 || (bytes[0] !== 0x02 && bytes[0] !== 0x03)) return false;
  try {
    ECDH.convertKey(bytes, OPRF_CURVE);
    return true;
  } catch {
    return false;
  }
}

/** Why a key share from configuration is not one (a scalar in [1, n−1]), or null. */
export function oprfKeyRefusal(key: Buffer): string | null {
  const k = scalarOf(key);
  return key.length === 32 && k > 0n && k < P256_ORDER ? null : KEY_RULE;
}

/** A fresh key share (64 hex characters), for `npm start` and test fixtures. */
export const newOprfKey = (): string => Buffer.from(p256.utils.randomSecretKey()).toString('hex');

/** k·P for a scalar k, as the even point with that x; throws when P is not a point of the curve. */
function multiply(k: Buffer, point: Buffer): Buffer {
  const ecdh = createECDH(OPRF_CURVE);
  ecdh.setPrivateKey(k);
  return evenPoint(ecdh.computeSecret(point));
}

/** One member's share of the OPRF key, bound once: `evaluate(P)` = k·P. */
export interface OprfKeyShare {
  evaluate(point: string): string;
}

/** A member's share from its configuration (a 32-byte key). */
export function oprfKeyShare(key: Buffer): OprfKeyShare {
  const refusal = oprfKeyRefusal(key);
  if (refusal) throw new Error(`OPRF key ${refusal}`);
  const ecdh = createECDH(OPRF_CURVE);
  ecdh.setPrivateKey(key);
  return {
    evaluate(point) {
      if (!isValidPoint(point)) throw new Error(`point ${POINT_RULE}`);
      return evenPoint(ecdh.computeSecret(Buffer.from(point, 'base64url'))).toString('base64url');
    },
  };
}

const hashToGroup = (input: string): Buffer =>
  Buffer.from(p256_hasher.hashToCurve(new TextEncoder().encode(input), { DST: HASH_TO_GROUP_DST }).toBytes(true));

/** RFC 9497 §3.3.1 Finalize: Hash(len ‖ input ‖ len ‖ element ‖ "Finalize"), base64url. */
function finalizeHash(input: string, element: Buffer): string {
  const bytes = Buffer.from(input, 'utf8');
  const len = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  return createHash('sha256').update(Buffer.concat([len(bytes.length), bytes, len(element.length), element, Buffer.from('Finalize')])).digest('base64url');
}

/** Municipality: B = r·H(input), with r kept to unblind. */
export function blindInput(input: string): { blind: Buffer; blinded: string } {
  const blind = Buffer.from(p256.utils.randomSecretKey());
  return { blind, blinded: multiply(blind, hashToGroup(input)).toString('base64url') };
}

/** Municipality: r⁻¹·(k_G·k_I·B) = ±k·H(input), finalized into the seed (base64url of 32 bytes). */
export function finalizeSeed(input: string, blind: Buffer, evaluated: string): string {
  if (!isValidPoint(evaluated)) throw new Error(`evaluated ${POINT_RULE}`);
  const inverse = scalarBytes(p256.Point.Fn.inv(scalarOf(blind)));
  return finalizeHash(input, multiply(inverse, Buffer.from(evaluated, 'base64url')));
}

/** The seed a holder of the given shares computes without blinding (k = Π shares mod n). Tests and analysis only. */
export function evaluateWithShares(shares: Buffer[], input: string): string {
  const k = shares.reduce((acc, share) => (acc * scalarOf(share)) % P256_ORDER, 1n);
  return finalizeHash(input, multiply(scalarBytes(k), hashToGroup(input)));
}
