/**
 * Blind code derivation (docs/DESIGN.md §3.4, §4.2): the two-member OPRF of shared/crypto.ts. Its
 * elements and Finalize are RFC 9497's (checked against @noble/curves' own RFC 9497 P256-SHA256
 * suite), a code needs both members' key shares, and every element a member multiplies is checked.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { p256, p256_oprf } from '@noble/curves/nist.js';
import { blindInput, evaluateWithShares, finalizeSeed, isValidPoint, newOprfKey, oprfKeyRefusal, oprfKeyShare } from '../../shared/crypto.ts';
import { deriveCode, deriveLinkId } from '../../services/issuer/service.ts';
import { issuerConfigSchema } from '../../services/issuer/config.ts';
import { randomMyNumber } from '../fixtures/factories.ts';

const N = p256.Point.Fn.ORDER;
const key = () => Buffer.from(newOprfKey(), 'hex');
const hex = (k: bigint) => Buffer.from(k.toString(16).padStart(64, '0'), 'hex');

describe('blind code derivation: a P-256 OPRF whose key two members share', () => {
  it('when a My Number is blinded, evaluated by the issuer\'s share and then the gateway\'s, and finalized, then the seed is the OPRF under k_I·k_G', () => {
    const [kI, kG] = [key(), key()];
    for (let i = 0; i < 20; i++) {
      const myNumber = randomMyNumber();
      const { blind, blinded } = blindInput(myNumber);
      const seed = finalizeSeed(myNumber, blind, oprfKeyShare(kG).evaluate(oprfKeyShare(kI).evaluate(blinded)));
      expect(seed).to.equal(evaluateWithShares([kI, kG], myNumber));
      // The order of the two members does not matter: their shares commute.
      const other = blindInput(myNumber);
      expect(finalizeSeed(myNumber, other.blind, oprfKeyShare(kI).evaluate(oprfKeyShare(kG).evaluate(other.blinded)))).to.equal(seed);
      // Blinded elements of one My Number differ every time: the members cannot link two registrations.
      expect(other.blinded).not.to.equal(blinded);
    }
  });

  it('when the seed is compared with RFC 9497\'s OPRF (P256-SHA256, @noble/curves), then it is the RFC\'s output for k or for n−k (the even-y representative)', () => {
    const k = key();
    const negated = hex(N - BigInt(`0x${k.toString('hex')}`));
    let even = 0;
    for (let i = 0; i < 40; i++) {
      const input = randomMyNumber();
      const ours = evaluateWithShares([k], input);
      // The RFC's own flow with its own blind, evaluation and Finalize.
      const rfc = (sk: Buffer) => {
        const bytes = new TextEncoder().encode(input);
        const { blind, blinded } = p256_oprf.oprf.blind(bytes);
        return Buffer.from(p256_oprf.oprf.finalize(bytes, blind, p256_oprf.oprf.blindEvaluate(new Uint8Array(sk), blinded))).toString('base64url');
      };
      expect([rfc(k), rfc(negated)]).to.include(ours);
      if (ours === rfc(k)) even += 1;
    }
    // About half of the elements have an even y already; the rest are their negation.
    expect(even).to.be.greaterThan(0).and.lessThan(40);
  });

  it('when a member holds only its own keys, then deriving from a My Number gives neither the code nor the link; with both shares it gives them', () => {
    const [kI, kG] = [key(), key()];
    const [linkKey, codeKey] = [randomBytes(32), randomBytes(32)];
    const myNumber = randomMyNumber();
    const codeWith = (shares: Buffer[]) => deriveCode(codeKey, '112241', deriveLinkId(linkKey, evaluateWithShares(shares, myNumber)));
    const { blind, blinded } = blindInput(myNumber);
    const seed = finalizeSeed(myNumber, blind, oprfKeyShare(kG).evaluate(oprfKeyShare(kI).evaluate(blinded)));
    const code = deriveCode(codeKey, '112241', deriveLinkId(linkKey, seed));
    expect(codeWith([kI, kG])).to.equal(code);
    // The issuer alone (k_I and the HMAC keys), the gateway alone (k_G, even lent the HMAC keys), or the old single-key derivation.
    expect(codeWith([kI])).not.to.equal(code);
    expect(codeWith([kG])).not.to.equal(code);
    expect(deriveCode(codeKey, '112241', deriveLinkId(linkKey, myNumber))).not.to.equal(code);
    expect(deriveLinkId(linkKey, evaluateWithShares([kI], myNumber))).not.to.equal(deriveLinkId(linkKey, seed));
  });

  it('when an element is not a compressed point of P-256, then it is refused before any multiplication', () => {
    const valid = blindInput('123456789018').blinded;
    expect(isValidPoint(valid)).to.equal(true);
    const bytes = Buffer.from(valid, 'base64url');
    const offCurve = Buffer.from(bytes);
    do offCurve[32] = (offCurve[32]! + 1) % 256; while (isValidPoint(offCurve.toString('base64url')));
    const refused = [
      offCurve.toString('base64url'),
      Buffer.concat([Buffer.from([0x05]), bytes.subarray(1)]).toString('base64url'),
      Buffer.alloc(33).toString('base64url'), // 0x00…: the identity has no 33-byte encoding
      Buffer.from(p256.Point.BASE.toBytes(false)).toString('base64url'), // uncompressed
      Buffer.concat([Buffer.from([0x02]), hex(p256.Point.Fp.ORDER)]).toString('base64url'), // x = p, out of the field
      valid.slice(1), `${valid}A`, '', 42, null,
    ];
    for (const point of refused) {
      expect(isValidPoint(point), String(point)).to.equal(false);
      if (typeof point === 'string') expect(() => oprfKeyShare(key()).evaluate(point)).to.throw(/point must be a compressed P-256 point/);
    }
  });

  it('when a key share is 0, n or above, then it is refused, and the issuer\'s configuration names OPRF_KEY', () => {
    expect(oprfKeyRefusal(Buffer.alloc(32))).to.be.a('string');
    expect(oprfKeyRefusal(hex(N))).to.be.a('string');
    expect(oprfKeyRefusal(hex(N - 1n))).to.equal(null);
    expect(() => oprfKeyShare(hex(N))).to.throw(/scalar/);
    const parsed = issuerConfigSchema.safeParse({
      PORT: '0', CERT_DIR: 'x', GATEWAY_URL: 'https://127.0.0.1:1', DATABASE_PATH: 'x', OPRF_KEY: '0'.repeat(64),
      LINK_KEY: randomBytes(32).toString('hex'), CODE_KEY: randomBytes(32).toString('hex'), ATTESTATION_KEY: randomBytes(32).toString('hex'),
    });
    expect(parsed.success).to.equal(false);
    expect(parsed.error!.issues.map((i) => i.path.join('.'))).to.include('OPRF_KEY');
  });
});
