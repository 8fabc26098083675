/**
 * The federation's JWS and JWE go through jose with every algorithm pinned (shared/crypto.ts):
 * ES256 signatures, ECDH-ES + A256GCM encryption. What a member signs or seals, jose reads back
 * under the same pins; anything made with another algorithm, or carrying a header parameter the
 * federation does not use, is refused with the error that names it (jose's classes, which
 * messages.ts turns into problem rules). Attacker tokens are made here with keys of their own:
 * an RSA key for the algorithms members used before (RS256, PS256, RSA-OAEP-256), the signer's
 * public key as an HMAC secret, no signature at all.
 */
import { expect } from 'chai';
import { createSecretKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import * as jose from 'jose';
import {
  CONTENT_ENCRYPTION, KEY_ENCRYPTION_ALG, SIGNING_ALG, decryptWith, encryptFor, signJwt, signPayload, verifyJwt, verifyPayload, type VerifyOptions,
} from '../../shared/crypto.ts';
import { rejectionOf } from '../fixtures/refusals.ts';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = p256();
const other = p256();
const recipient = p256();
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const TYP = 'hikitsugi-test+jwt';
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** The refusals, as jose names them (err.code). */
const Refused = {
  ALG: 'ERR_JOSE_ALG_NOT_ALLOWED',
  SIGNATURE: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  JWS: 'ERR_JWS_INVALID',
  JWT: 'ERR_JWT_INVALID',
  CLAIM: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
  EXPIRED: 'ERR_JWT_EXPIRED',
  JWE: 'ERR_JWE_INVALID',
  DECRYPTION: 'ERR_JWE_DECRYPTION_FAILED',
} as const;

const options = (overrides: Partial<VerifyOptions> = {}): VerifyOptions =>
  ({ key: signer.publicKey, issuer: '293610', audience: 'gateway', typ: TYP, maxAgeSeconds: 300, ...overrides });

const now = () => Math.floor(Date.now() / 1000);
const good = () => ({ iss: '293610', aud: 'gateway', jti: randomUUID(), iat: now(), exp: now() + 120 });

/** A token made by jose itself, so each claim and header can be set as a hostile sender would. */
async function joseToken(claims: jose.JWTPayload, header: Partial<jose.JWTHeaderParameters> = {}, key: KeyObject | Uint8Array = signer.privateKey): Promise<string> {
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: TYP, kid: 'k', ...header }).sign(key);
}

/** An ES256 JWS over any header, signed by hand (jose will not sign a header it would refuse). */
function handSigned(header: Record<string, unknown>, payload: unknown, key = signer.privateKey): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

describe('JOSE with pinned algorithms (ES256, ECDH-ES + A256GCM)', () => {
  it('when a member signs a JWT, then it is ES256 with the kid and typ, and jose reads it back under the pin with the claims whole', async () => {
    expect(SIGNING_ALG).to.equal('ES256');
    const token = await signJwt({ iss: '293610', aud: 'gateway', jti: randomUUID(), purpose: 'x' }, { key: signer.privateKey, kid: 'k1', typ: TYP }, 120);
    const { payload, protectedHeader } = await jose.jwtVerify(token, signer.publicKey, { algorithms: ['ES256'], typ: TYP, issuer: '293610', audience: 'gateway' });
    expect(protectedHeader).to.deep.equal({ alg: 'ES256', kid: 'k1', typ: TYP });
    expect(payload.purpose).to.equal('x');
    expect((payload.exp as number) - (payload.iat as number)).to.equal(120);
    // ES256 signatures are the raw r‖s of RFC 7518 §3.4: 64 bytes.
    expect(Buffer.from(token.split('.')[2]!, 'base64url')).to.have.length(64);
    expect((await verifyJwt(token, options())).purpose).to.equal('x');
  });

  it('when a token is signed with another algorithm (RS256, PS256, HS256 keyed with the public key, ES384, none), then it is refused as an algorithm not allowed', async () => {
    const publicPem = signer.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const attempts: [string, () => Promise<string>][] = [
      ['RS256 with an RSA key', () => joseToken(good(), { alg: 'RS256' }, rsa.privateKey)],
      ['PS256 with an RSA key', () => joseToken(good(), { alg: 'PS256' }, rsa.privateKey)],
      ['HS256 keyed with the signer\'s public key (PEM)', () => joseToken(good(), { alg: 'HS256' }, createSecretKey(Buffer.from(publicPem)))],
      ['ES384 with a P-384 key', () => joseToken(good(), { alg: 'ES384' }, p384.privateKey)],
      ['alg none', async () => `${b64({ alg: 'none', typ: TYP })}.${b64(good())}.`],
    ];
    for (const [label, build] of attempts) {
      const token = await build();
      expect(await rejectionOf(verifyJwt(token, options())), `${label}: verifyJwt`).to.equal(Refused.ALG);
      expect(await rejectionOf(verifyPayload(token, signer.publicKey, TYP)), `${label}: verifyPayload`).to.equal(Refused.ALG);
    }
  });

  it('when the signature, the key or the signed bytes are wrong, then the token is refused as a failed verification', async () => {
    const token = await joseToken(good());
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = Buffer.from(s, 'base64url');
    flipped[10]! ^= 1;
    expect(await rejectionOf(verifyJwt(`${h}.${p}.${flipped.toString('base64url')}`, options()))).to.equal(Refused.SIGNATURE);
    expect(await rejectionOf(verifyJwt(await joseToken(good(), {}, other.privateKey), options()))).to.equal(Refused.SIGNATURE);
    // Claims changed after signing: the signature no longer covers them.
    expect(await rejectionOf(verifyJwt(`${h}.${b64({ ...good(), iss: '293610' })}.${s}`, options()))).to.equal(Refused.SIGNATURE);
    // A DER-encoded ECDSA signature (what OpenSSL makes by default) is not the JWS form.
    const input = `${h}.${p}`;
    const derSignature = sign('sha256', Buffer.from(input), signer.privateKey).toString('base64url');
    expect(await rejectionOf(verifyJwt(`${input}.${derSignature}`, options()))).to.equal(Refused.SIGNATURE);
  });

  it('when a signed token carries crit (an unknown extension, or an unencoded payload) then it is refused as an invalid JWS, signature or not', async () => {
    for (const [label, header] of [
      ['crit naming an unknown extension', { alg: 'ES256', typ: TYP, crit: ['x'], x: 1 }],
      ['crit b64 false (RFC 7797 unencoded payload)', { alg: 'ES256', typ: TYP, crit: ['b64'], b64: false }],
    ] as const) {
      const token = handSigned(header, good());
      expect(await rejectionOf(verifyJwt(token, options())), label).to.equal(Refused.JWS);
      expect(await rejectionOf(verifyPayload(token, signer.publicKey, TYP)), label).to.equal(Refused.JWS);
    }
    // The control: the same hand-made signature without crit is accepted.
    expect(await rejectionOf(verifyJwt(handSigned({ alg: 'ES256', typ: TYP }, good()), options()))).to.equal('accepted');
  });

  it('when a token is not a compact JWS at all, then it is refused as invalid before any key is used', async () => {
    for (const junk of ['', 'a.b', 'a.b.c.d', '!!.e30.x', `${b64('not json')}.e30.x`]) {
      expect(await rejectionOf(verifyJwt(junk, options())), junk).to.equal(Refused.JWS);
    }
    const token = await joseToken(good());
    // A payload that is not a JSON object, properly signed: the claims set is refused.
    expect(await rejectionOf(verifyJwt(handSigned({ alg: 'ES256', typ: TYP }, '"just a string"'), options()))).to.equal(Refused.JWT);
    expect(await rejectionOf(verifyPayload(token, signer.publicKey, 'other+jwt')), 'typ of a payload').to.equal(Refused.JWS);
  });

  it('when a claim is off, then each is refused with the class that names it', async () => {
    const cases: [string, jose.JWTPayload, Partial<jose.JWTHeaderParameters>, string][] = [
      ['typ', good(), { typ: 'other+jwt' }, Refused.CLAIM],
      ['iss', { ...good(), iss: '343692' }, {}, Refused.CLAIM],
      ['aud', { ...good(), aud: 'someone' }, {}, Refused.CLAIM],
      ['expired', { ...good(), iat: now() - 200, exp: now() - 100 }, {}, Refused.EXPIRED],
      ['too old', { ...good(), iat: now() - 1000, exp: now() + 100 }, {}, Refused.EXPIRED],
      ['future iat', { ...good(), iat: now() + 600, exp: now() + 700 }, {}, Refused.CLAIM],
      ['lifetime', { ...good(), exp: now() + 3600 }, {}, Refused.CLAIM],
      ['no jti', { ...good(), jti: undefined }, {}, Refused.CLAIM],
      ['short jti', { ...good(), jti: 'x'.repeat(7) }, {}, Refused.CLAIM],
      ['long jti', { ...good(), jti: 'x'.repeat(129) }, {}, Refused.CLAIM],
      ['jti not a string', { ...good(), jti: 12345678 as never }, {}, Refused.CLAIM],
      ['no exp', { ...good(), exp: undefined }, {}, Refused.CLAIM],
      ['no iat', { ...good(), iat: undefined }, {}, Refused.CLAIM],
      ['nbf ahead', { ...good(), nbf: now() + 600 }, {}, Refused.CLAIM],
      ['exp text', { ...good(), exp: 'soon' as never }, {}, Refused.CLAIM],
    ];
    for (const [name, claims, header, code] of cases) {
      expect(await rejectionOf(verifyJwt(await joseToken(claims, header), options())), name).to.equal(code);
    }
    // Within the clock skew either way is still fine, and so are jti lengths 8 and 128 and an aud list.
    for (const claims of [{ ...good(), iat: now() + 30 }, { ...good(), exp: now() - 30 }, { ...good(), jti: 'x'.repeat(8) }, { ...good(), jti: 'x'.repeat(128) }, { ...good(), aud: ['x', 'gateway'] }]) {
      expect(await rejectionOf(verifyJwt(await joseToken(claims), options())), JSON.stringify(claims)).to.equal('accepted');
    }
  });

  it('when a payload is signed, then jose verifies it under the pin and so do we, with its typ checked', async () => {
    const ours = await signPayload({ a: [1, 'ü'] }, { key: signer.privateKey, kid: 'k', typ: TYP });
    expect(JSON.parse(text((await jose.compactVerify(ours, signer.publicKey, { algorithms: ['ES256'] })).payload))).to.deep.equal({ a: [1, 'ü'] });
    expect(await verifyPayload(ours, signer.publicKey, TYP)).to.deep.equal({ a: [1, 'ü'] });
    expect(await rejectionOf(verifyPayload(ours, other.publicKey, TYP))).to.equal(Refused.SIGNATURE);
  });

  it('when a member seals, then the JWE is ECDH-ES (direct) with A256GCM and no wrapped key, and jose opens it under the pins', async () => {
    expect([KEY_ENCRYPTION_ALG, CONTENT_ENCRYPTION]).to.deep.equal(['ECDH-ES', 'A256GCM']);
    const plaintext = `inner ${'ü'.repeat(100)} payload`;
    const jwe = await encryptFor(plaintext, recipient.publicKey, 'enc-kid');
    expect(jwe.split('.')[1], 'the encrypted key of direct key agreement is empty').to.equal('');
    const { plaintext: opened, protectedHeader } = await jose.compactDecrypt(jwe, recipient.privateKey, {
      keyManagementAlgorithms: ['ECDH-ES'], contentEncryptionAlgorithms: ['A256GCM'],
    });
    expect(text(opened)).to.equal(plaintext);
    expect(protectedHeader).to.include({ alg: 'ECDH-ES', enc: 'A256GCM', kid: 'enc-kid', cty: 'JWT' });
    expect(protectedHeader.epk).to.include({ kty: 'EC', crv: 'P-256' });
    expect(await decryptWith(jwe, recipient.privateKey)).to.equal(plaintext);
    // Each seal has its own ephemeral key, so two seals of the same text share nothing.
    const again = await encryptFor(plaintext, recipient.publicKey, 'enc-kid');
    expect(jose.decodeProtectedHeader(again).epk).not.to.deep.equal(protectedHeader.epk);
  });

  it('when a JWE uses another key management or content encryption (ECDH-ES+A256KW, RSA-OAEP-256, dir, A128GCM), then it is refused as an algorithm not allowed', async () => {
    const seal = (header: jose.CompactJWEHeaderParameters, key: Parameters<jose.CompactEncrypt['encrypt']>[0]) =>
      new jose.CompactEncrypt(bytes('x')).setProtectedHeader(header).encrypt(key);
    const attempts: [string, () => Promise<string>][] = [
      ['ECDH-ES+A256KW', () => seal({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' }, recipient.publicKey)],
      ['RSA-OAEP-256 to an RSA key', () => seal({ alg: 'RSA-OAEP-256', enc: 'A256GCM' }, rsa.publicKey)],
      ['dir with a guessed key', () => seal({ alg: 'dir', enc: 'A256GCM' }, new Uint8Array(32))],
      ['ECDH-ES with A128GCM', () => seal({ alg: 'ECDH-ES', enc: 'A128GCM' }, recipient.publicKey)],
      ['ECDH-ES with A256CBC-HS512', () => seal({ alg: 'ECDH-ES', enc: 'A256CBC-HS512' }, recipient.publicKey)],
    ];
    for (const [label, build] of attempts) expect(await rejectionOf(decryptWith(await build(), recipient.privateKey)), label).to.equal(Refused.ALG);
  });

  it('when a JWE carries zip or crit, then it is refused as an invalid JWE before any key agreement', async () => {
    const zipped = await new jose.CompactEncrypt(bytes('x')).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', zip: 'DEF' }).encrypt(recipient.publicKey);
    expect(await rejectionOf(decryptWith(zipped, recipient.privateKey)), 'zip').to.equal(Refused.JWE);
    const jwe = await encryptFor('x', recipient.publicKey, 'k');
    const header = jose.decodeProtectedHeader(jwe);
    const withCrit = [b64({ ...header, crit: ['x'], x: 1 }), ...jwe.split('.').slice(1)].join('.');
    expect(await rejectionOf(decryptWith(withCrit, recipient.privateKey)), 'crit').to.equal(Refused.JWE);
    for (const junk of ['', 'a.b.c.d', 'a.b.c.d.e.f', '!!.a.b.c.d']) expect(await rejectionOf(decryptWith(junk, recipient.privateKey)), junk).to.equal(Refused.JWE);
  });

  it('when a JWE is for another key, tampered, or its ephemeral key is off the curve, then it is refused as a failed decryption, one answer for all', async () => {
    const jwe = await encryptFor('secret', recipient.publicKey, 'k');
    expect(await rejectionOf(decryptWith(jwe, other.privateKey)), 'another recipient').to.equal(Refused.DECRYPTION);
    const parts = jwe.split('.');
    for (const i of [2, 3, 4]) {
      const changed = Buffer.from(parts[i]!, 'base64url');
      changed[0]! ^= 1;
      const tampered = parts.map((p, j) => (j === i ? changed.toString('base64url') : p)).join('.');
      expect(await rejectionOf(decryptWith(tampered, recipient.privateKey)), `part ${i}`).to.equal(Refused.DECRYPTION);
    }
    const header = jose.decodeProtectedHeader(jwe);
    // The header is authenticated: another kid under the same ciphertext fails the tag.
    expect(await rejectionOf(decryptWith([b64({ ...header, kid: 'x' }), ...parts.slice(1)].join('.'), recipient.privateKey)), 'kid').to.equal(Refused.DECRYPTION);
    // An invalid-curve point as the ephemeral key: refused by the key agreement, answered like any other failure.
    const epk = header.epk as { x: string; y: string };
    const offCurve = { ...epk, y: Buffer.from(Buffer.from(epk.y, 'base64url').map((b, i) => (i === 31 ? b ^ 1 : b))).toString('base64url') };
    expect(await rejectionOf(decryptWith([b64({ ...header, epk: offCurve }), ...parts.slice(1)].join('.'), recipient.privateKey)), 'epk off the curve').to.equal(Refused.DECRYPTION);
  });

  it('when the same signed payload is verified again (a resident asked about again), then the answer is the one it was the first time: the same payload, refused under another key or typ, a changed byte refused', async () => {
    const attestation = await signPayload({ iss: 'issuer', municipality: '293610', code: 'c'.repeat(43), link: 'l'.repeat(43) }, { key: signer.privateKey, kid: 'k', typ: TYP });
    const first = await verifyPayload<Record<string, unknown>>(attestation, signer.publicKey, TYP);
    const again = await verifyPayload<Record<string, unknown>>(attestation, signer.publicKey, TYP);
    expect(again).to.deep.equal(first);
    expect(again).to.not.equal(first);
    // What a caller does with its copy changes nothing kept.
    first.code = 'changed';
    expect((await verifyPayload<Record<string, unknown>>(attestation, signer.publicKey, TYP)).code).to.equal('c'.repeat(43));
    expect(await rejectionOf(verifyPayload(attestation, other.publicKey, TYP)), 'another key').to.equal(Refused.SIGNATURE);
    expect(await rejectionOf(verifyPayload(attestation, signer.publicKey, 'another+jwt')), 'another typ').to.equal(Refused.JWS);
    const [h, p, sig] = attestation.split('.');
    // One character of the signature's first half changed (never the last, whose low bits are padding).
    const flipped = `${h}.${p}.${sig!.slice(0, 10)}${sig![10] === 'A' ? 'B' : 'A'}${sig!.slice(11)}`;
    expect(flipped).to.not.equal(attestation);
    expect(await rejectionOf(verifyPayload(flipped, signer.publicKey, TYP)), 'a changed signature').to.equal(Refused.SIGNATURE);
    // Verified first under the right key, then asked under another: still refused.
    expect(await rejectionOf(verifyPayload(attestation, other.publicKey, TYP)), 'another key, after a hit').to.equal(Refused.SIGNATURE);
  });
});
