/**
 * The federation's JWS and JWE are made and checked with node:crypto (shared/crypto.ts). jose is
 * the reference here: what we make, jose must read, and what jose makes, we must read; every
 * refusal jose would give (algorithm, signature, claims, tampered ciphertext) we give too, with
 * jose's error codes, which messages.ts turns into problem rules.
 */
import { expect } from 'chai';
import { constants, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import * as jose from 'jose';
import { decryptWith, encryptFor, signJwt, signPayload, verifyJwt, verifyPayload, type VerifyOptions } from '../../shared/crypto.ts';

const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const signer = rsa();
const other = rsa();
const recipient = rsa();
const TYP = 'hikitsugi-test+jwt';

const options = (overrides: Partial<VerifyOptions> = {}): VerifyOptions =>
  ({ key: signer.publicKey, issuer: '293610', audience: 'gateway', typ: TYP, maxAgeSeconds: 300, ...overrides });

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
  return 'accepted';
}

/** A token made by jose itself, so each claim can be set as a hostile sender would. */
async function joseToken(claims: jose.JWTPayload, header: Partial<jose.JWTHeaderParameters> = {}, key = signer.privateKey): Promise<string> {
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'PS256', typ: TYP, kid: 'k', ...header }).sign(key);
}

const now = () => Math.floor(Date.now() / 1000);
const good = () => ({ iss: '293610', aud: 'gateway', jti: randomUUID(), iat: now(), exp: now() + 120 });

describe('native JWS and JWE, checked against jose', () => {
  it('when we sign a JWT, then jose verifies it with PS256 pinned, and the claims come back whole', async () => {
    const token = await signJwt({ iss: '293610', aud: 'gateway', jti: randomUUID(), purpose: 'x' }, { key: signer.privateKey, kid: 'k1', typ: TYP }, 120);
    const { payload, protectedHeader } = await jose.jwtVerify(token, signer.publicKey, { algorithms: ['PS256'], typ: TYP, issuer: '293610', audience: 'gateway' });
    expect(protectedHeader).to.deep.equal({ alg: 'PS256', kid: 'k1', typ: TYP });
    expect(payload.purpose).to.equal('x');
    expect((payload.exp as number) - (payload.iat as number)).to.equal(120);
    expect((await verifyJwt(token, options())).purpose).to.equal('x');
  });

  it('when jose signs a JWT, then we verify it', async () => {
    const token = await joseToken({ ...good(), n: 7 });
    expect((await verifyJwt(token, options())).n).to.equal(7);
  });

  it('when a payload is signed either way, then the other side verifies it and its typ is checked', async () => {
    const ours = await signPayload({ a: [1, 'ü'] }, { key: signer.privateKey, kid: 'k', typ: TYP });
    expect(JSON.parse(new TextDecoder().decode((await jose.compactVerify(ours, signer.publicKey, { algorithms: ['PS256'] })).payload))).to.deep.equal({ a: [1, 'ü'] });
    const theirs = await new jose.CompactSign(new TextEncoder().encode('{"b":2}')).setProtectedHeader({ alg: 'PS256', typ: TYP }).sign(signer.privateKey);
    expect(await verifyPayload(theirs, signer.publicKey, TYP)).to.deep.equal({ b: 2 });
    expect(await codeOf(verifyPayload(theirs, signer.publicKey, 'other+jwt'))).to.equal('ERR_JWS_INVALID');
  });

  it('when a signature, key or algorithm is wrong, then the token is refused with jose\'s codes', async () => {
    const token = await joseToken(good());
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = Buffer.from(s, 'base64url');
    flipped[10]! ^= 1;
    expect(await codeOf(verifyJwt(`${h}.${p}.${flipped.toString('base64url')}`, options()))).to.equal('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    expect(await codeOf(verifyJwt(await joseToken(good(), {}, other.privateKey), options()))).to.equal('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    // Claims changed after signing: the signature no longer covers them.
    const forgedClaims = Buffer.from(JSON.stringify({ ...good(), iss: '293610' })).toString('base64url');
    expect(await codeOf(verifyJwt(`${h}.${forgedClaims}.${s}`, options()))).to.equal('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    const rs256 = await new jose.SignJWT(good()).setProtectedHeader({ alg: 'RS256', typ: TYP }).sign(signer.privateKey);
    expect(await codeOf(verifyJwt(rs256, options()))).to.equal('ERR_JOSE_ALG_NOT_ALLOWED');
    const none = `${Buffer.from('{"alg":"none","typ":"' + TYP + '"}').toString('base64url')}.${p}.`;
    expect(await codeOf(verifyJwt(none, options()))).to.equal('ERR_JOSE_ALG_NOT_ALLOWED');
    const hs256 = await new jose.SignJWT(good()).setProtectedHeader({ alg: 'HS256', typ: TYP }).sign(new Uint8Array(32));
    expect(await codeOf(verifyJwt(hs256, options()))).to.equal('ERR_JOSE_ALG_NOT_ALLOWED');
    // jose will not sign an unknown critical extension: made by hand, with a valid signature.
    const critInput = `${Buffer.from(JSON.stringify({ alg: 'PS256', typ: TYP, crit: ['x'], x: 1 })).toString('base64url')}.${p}`;
    const critSig = sign('sha256', Buffer.from(critInput), { key: signer.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    expect(await codeOf(verifyJwt(`${critInput}.${critSig.toString('base64url')}`, options()))).to.equal('ERR_JWS_INVALID');
    for (const junk of ['', 'a.b', 'a.b.c.d', '!!.e30.x', `${h}.%%%.${s}`]) expect(await codeOf(verifyJwt(junk, options())), junk).to.match(/^ERR_JWS_INVALID|ERR_JWT_INVALID$/);
  });

  it('when a claim is off, then each is refused as jose refuses it', async () => {
    const cases: [string, jose.JWTPayload, Partial<jose.JWTHeaderParameters>, string][] = [
      ['typ', good(), { typ: 'other+jwt' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['iss', { ...good(), iss: '343692' }, {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['aud', { ...good(), aud: 'someone' }, {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['expired', { ...good(), iat: now() - 200, exp: now() - 100 }, {}, 'ERR_JWT_EXPIRED'],
      ['too old', { ...good(), iat: now() - 1000, exp: now() + 100 }, {}, 'ERR_JWT_EXPIRED'],
      ['future iat', { ...good(), iat: now() + 600, exp: now() + 700 }, {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['lifetime', { ...good(), exp: now() + 3600 }, {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['no jti', { ...good(), jti: undefined }, {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['short jti', { ...good(), jti: 'x' }, {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['no exp', { ...good(), exp: undefined }, {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['nbf ahead', { ...good(), nbf: now() + 600 }, {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['exp text', { ...good(), exp: 'soon' as never }, {}, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ];
    for (const [name, claims, header, code] of cases) {
      expect(await codeOf(verifyJwt(await joseToken(claims, header), options())), name).to.equal(code);
    }
    // Within the clock skew either way is still fine.
    expect(await codeOf(verifyJwt(await joseToken({ ...good(), iat: now() + 30 }), options()))).to.equal('accepted');
    expect(await codeOf(verifyJwt(await joseToken({ ...good(), aud: ['x', 'gateway'] }), options()))).to.equal('accepted');
  });

  it('when we encrypt, then jose decrypts with RSA-OAEP-256 and A256GCM; and what jose encrypts, we decrypt', async () => {
    const text = `inner ${'ü'.repeat(100)} payload`;
    const jwe = await encryptFor(text, recipient.publicKey, 'enc-kid');
    const { plaintext, protectedHeader } = await jose.compactDecrypt(jwe, recipient.privateKey, {
      keyManagementAlgorithms: ['RSA-OAEP-256'], contentEncryptionAlgorithms: ['A256GCM'],
    });
    expect(new TextDecoder().decode(plaintext)).to.equal(text);
    expect(protectedHeader).to.deep.equal({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'enc-kid', cty: 'JWT' });
    const theirs = await new jose.CompactEncrypt(new TextEncoder().encode(text)).setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' }).encrypt(recipient.publicKey);
    expect(await decryptWith(theirs, recipient.privateKey)).to.equal(text);
  });

  it('when a JWE is for another key, tampered, or uses other algorithms, then it does not open', async () => {
    const jwe = await encryptFor('secret', recipient.publicKey, 'k');
    expect(await codeOf(decryptWith(jwe, other.privateKey))).to.equal('ERR_JWE_DECRYPTION_FAILED');
    const parts = jwe.split('.');
    for (const i of [1, 2, 3, 4]) {
      const bytes = Buffer.from(parts[i]!, 'base64url');
      bytes[0]! ^= 1;
      const tampered = parts.map((p, j) => (j === i ? bytes.toString('base64url') : p)).join('.');
      expect(await codeOf(decryptWith(tampered, recipient.privateKey)), `part ${i}`).to.equal('ERR_JWE_DECRYPTION_FAILED');
    }
    // The header is authenticated too: another kid under the same ciphertext fails the tag.
    const header = Buffer.from(JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'x', cty: 'JWT' })).toString('base64url');
    expect(await codeOf(decryptWith([header, ...parts.slice(1)].join('.'), recipient.privateKey))).to.equal('ERR_JWE_DECRYPTION_FAILED');
    const a128 = await new jose.CompactEncrypt(new TextEncoder().encode('x')).setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A128GCM' }).encrypt(recipient.publicKey);
    expect(await codeOf(decryptWith(a128, recipient.privateKey))).to.equal('ERR_JOSE_ALG_NOT_ALLOWED');
    const oaep1 = await new jose.CompactEncrypt(new TextEncoder().encode('x')).setProtectedHeader({ alg: 'RSA-OAEP', enc: 'A256GCM' }).encrypt(recipient.publicKey);
    expect(await codeOf(decryptWith(oaep1, recipient.privateKey))).to.equal('ERR_JOSE_ALG_NOT_ALLOWED');
    const zipped = await new jose.CompactEncrypt(new TextEncoder().encode('x')).setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', zip: 'DEF' } as never).encrypt(recipient.publicKey).catch(() => null);
    if (zipped) expect(await codeOf(decryptWith(zipped, recipient.privateKey))).to.equal('ERR_JWE_INVALID');
    for (const junk of ['', 'a.b.c.d', 'a.b.c.d.e.f', '!!.a.b.c.d']) expect(await codeOf(decryptWith(junk, recipient.privateKey)), junk).to.equal('ERR_JWE_INVALID');
  });
});
