/**
 * The project's one crypto module. Algorithms are pinned here and nowhere else: signatures are
 * PS256 (members' keys are RSA, from node-forge certificates), encryption is RSA-OAEP-256 with
 * A256GCM, staff sessions are HS256 under a per-municipality secret, data at rest is AES-256-GCM.
 */
import {
  createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, scrypt as scryptCb,
  timingSafeEqual, type KeyObject, type BinaryLike,
} from 'node:crypto';
import { promisify } from 'node:util';
import * as jose from 'jose';
import { AppError } from './errors.ts';

const scrypt = promisify(scryptCb) as (password: BinaryLike, salt: BinaryLike, keylen: number, options: object) => Promise<Buffer>;

export const SIGNING_ALG = 'PS256';
export const KEY_ENCRYPTION_ALG = 'RSA-OAEP-256';
export const CONTENT_ENCRYPTION = 'A256GCM';
export const SESSION_ALG = 'HS256';
/** Tolerated clock difference between members, in seconds. */
export const CLOCK_SKEW_SECONDS = 60;

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
export const hmacSha256 = (key: Buffer | string, data: string | Buffer): Buffer => createHmac('sha256', key).update(data).digest();

/** Constant-time comparison of two strings. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A 32-byte key from its hex or base64 form (configuration holds keys as text). */
export function parseKey(text: string, name: string): Buffer {
  const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new Error(`${name} must be 32 bytes (64 hex characters or base64)`);
  return key;
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
}

export async function signSession(secret: Buffer, claims: SessionClaims, ttlSeconds: number): Promise<string> {
  return new jose.SignJWT({ role: claims.role, municipality: claims.municipality })
    .setProtectedHeader({ alg: SESSION_ALG, typ: 'session+jwt' })
    .setSubject(claims.sub)
    .setIssuer(claims.municipality)
    .setAudience(claims.municipality)
    .setIssuedAt()
    .setJti(crypto.randomUUID())
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(secret);
}

/** Verifies a session token for this municipality only; any failure is a 401. */
export async function verifySession(secret: Buffer, token: string, municipality: string): Promise<SessionClaims> {
  try {
    const { payload } = await jose.jwtVerify(token, secret, {
      algorithms: [SESSION_ALG], issuer: municipality, audience: municipality, typ: 'session+jwt', clockTolerance: CLOCK_SKEW_SECONDS,
    });
    if (typeof payload.sub !== 'string' || typeof payload.role !== 'string' || payload.municipality !== municipality) {
      throw new Error('claims');
    }
    return { sub: payload.sub, role: payload.role, municipality };
  } catch {
    throw new AppError(401, 'unauthorized', 'Session token invalid or expired');
  }
}

/* ---------- member-to-member JWS / JWE ---------- */

export interface SignOptions {
  key: KeyObject;
  kid: string;
  typ: string;
}

/** Signs a JWT whose claims the caller composes (iss, aud, jti, exp are required by verifiers). */
export async function signJwt(claims: jose.JWTPayload, { key, kid, typ }: SignOptions, ttlSeconds: number): Promise<string> {
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: SIGNING_ALG, kid, typ })
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(key);
}

export interface VerifyOptions {
  key: KeyObject;
  issuer: string;
  audience: string;
  typ: string;
  /** Maximum lifetime accepted, in seconds (DESIGN.md: exp ≤ 5 min). */
  maxAgeSeconds: number;
  currentDate?: Date;
}

/**
 * Verifies a member's JWT with the algorithm pinned and iss, aud, typ, exp, iat checked; a
 * token whose exp − iat exceeds `maxAgeSeconds`, or with no jti, is refused as well.
 */
export async function verifyJwt(token: string, options: VerifyOptions): Promise<jose.JWTPayload & { jti: string; exp: number; iat: number }> {
  const { payload } = await jose.jwtVerify(token, options.key, {
    algorithms: [SIGNING_ALG],
    issuer: options.issuer,
    audience: options.audience,
    typ: options.typ,
    maxTokenAge: `${options.maxAgeSeconds}s`,
    clockTolerance: CLOCK_SKEW_SECONDS,
    requiredClaims: ['jti', 'iat', 'exp'],
    currentDate: options.currentDate,
  });
  if (typeof payload.jti !== 'string' || payload.jti.length < 8 || payload.jti.length > 128) throw new jose.errors.JWTClaimValidationFailed('jti malformed', payload, 'jti', 'check_failed');
  if ((payload.exp as number) - (payload.iat as number) > options.maxAgeSeconds) {
    throw new jose.errors.JWTClaimValidationFailed('lifetime too long', payload, 'exp', 'check_failed');
  }
  return payload as jose.JWTPayload & { jti: string; exp: number; iat: number };
}

/** Reads the unverified header and claims, only to pick the key to verify with. */
export function peekJwt(token: string): { header: jose.ProtectedHeaderParameters; claims: jose.JWTPayload } {
  return { header: jose.decodeProtectedHeader(token) as jose.ProtectedHeaderParameters, claims: jose.decodeJwt(token) };
}

/** Compact JWE of a string (usually a JWS) for one recipient's encryption key. */
export async function encryptFor(plaintext: string, recipientKey: KeyObject, kid: string, cty = 'JWT'): Promise<string> {
  return new jose.CompactEncrypt(new TextEncoder().encode(plaintext))
    .setProtectedHeader({ alg: KEY_ENCRYPTION_ALG, enc: CONTENT_ENCRYPTION, kid, cty })
    .encrypt(recipientKey);
}

export async function decryptWith(jwe: string, key: KeyObject): Promise<string> {
  const { plaintext } = await jose.compactDecrypt(jwe, key, {
    keyManagementAlgorithms: [KEY_ENCRYPTION_ALG], contentEncryptionAlgorithms: [CONTENT_ENCRYPTION],
  });
  return new TextDecoder().decode(plaintext);
}

/** Signs an arbitrary JSON payload as a compact JWS (used for checkpoints, certificates of move-out). */
export async function signPayload(payload: unknown, { key, kid, typ }: SignOptions): Promise<string> {
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: SIGNING_ALG, kid, typ })
    .sign(key);
}

export async function verifyPayload<T>(jws: string, key: KeyObject, typ: string): Promise<T> {
  const { payload, protectedHeader } = await jose.compactVerify(jws, key, { algorithms: [SIGNING_ALG] });
  if (protectedHeader.typ !== typ) throw new jose.errors.JWSInvalid(`unexpected typ ${protectedHeader.typ}`);
  return JSON.parse(new TextDecoder().decode(payload)) as T;
}

export { jose };
