import { expect } from 'chai';
import fc from 'fast-check';
import * as jose from 'jose';
import { fromBase64, toBase64 } from '../../shared/platform/base64.ts';
import '../../shared/crypto.ts';

const padded = (s: string) => s + '='.repeat((4 - (s.length % 4)) % 4);

describe('base64 methods (ES2026 Uint8Array.toBase64 / fromBase64)', () => {
  it('when bytes are encoded in either alphabet, with or without padding, then they match RFC 4648 and decode back', () => {
    const vectors: [string, string][] = [['', ''], ['f', 'Zg=='], ['fo', 'Zm8='], ['foo', 'Zm9v'], ['foob', 'Zm9vYg=='], ['fooba', 'Zm9vYmE='], ['foobar', 'Zm9vYmFy']];
    for (const [plain, encoded] of vectors) {
      const bytes = new TextEncoder().encode(plain);
      expect(toBase64(bytes)).to.equal(encoded);
      expect(toBase64(bytes, { omitPadding: true })).to.equal(encoded.replace(/=+$/, ''));
      expect(new TextDecoder().decode(fromBase64(encoded))).to.equal(plain);
    }
    let cases = 0;
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(40), fc.boolean(), (bytes, offset, omitPadding) => {
      cases++;
      // A view into a larger buffer, as jose passes subarrays.
      const outer = new Uint8Array(offset + bytes.length + 7);
      outer.set(bytes, offset);
      const view = outer.subarray(offset, offset + bytes.length);
      const url = Buffer.from(bytes).toString('base64url');
      const std = Buffer.from(bytes).toString('base64');
      expect(toBase64(view, { alphabet: 'base64url', omitPadding })).to.equal(omitPadding ? url : padded(url));
      expect(toBase64(view, { alphabet: 'base64', omitPadding })).to.equal(omitPadding ? std.replace(/=+$/, '') : std);
      expect(Buffer.from(fromBase64(url, { alphabet: 'base64url' })).equals(Buffer.from(bytes))).to.equal(true);
      expect(Buffer.from(fromBase64(std, { lastChunkHandling: 'strict' })).equals(Buffer.from(bytes))).to.equal(true);
    }), { numRuns: 300, seed: 11 });
    expect(cases).to.equal(300);
  });

  it('when the input is not base64 of the alphabet asked for, then decoding refuses it with a SyntaxError naming the rule', () => {
    const refused: [string, { alphabet?: 'base64' | 'base64url'; lastChunkHandling?: 'loose' | 'strict' }, RegExp][] = [
      ['Zm9v*', {}, /outside the alphabet/],
      ['Zm+v', { alphabet: 'base64url' }, /outside the alphabet/],
      ['Zm-v', { alphabet: 'base64' }, /outside the alphabet/],
      ['Zm=9v', {}, /outside the alphabet or misplaced padding/],
      ['Zm9vY', {}, /final chunk of one character/],
      ['Zg=', {}, /misplaced padding/],
      ['Zm8==', {}, /misplaced padding/],
      ['Zg', { lastChunkHandling: 'strict' }, /missing padding/],
      ['Zh==', { lastChunkHandling: 'strict' }, /non-zero bits/],
      ['Zm9=', { lastChunkHandling: 'strict' }, /non-zero bits/],
    ];
    for (const [input, options, message] of refused) {
      expect(() => fromBase64(input, options), input).to.throw(SyntaxError, message);
    }
    expect(() => fromBase64('Zg==', { alphabet: 'hex' as never })).to.throw(TypeError, /alphabet/);
    // Loose decoding (the default, which jose uses) takes missing padding, spare bits and ASCII whitespace.
    expect(new TextDecoder().decode(fromBase64('Zg'))).to.equal('f');
    expect(new TextDecoder().decode(fromBase64('Zh=='))).to.equal('f');
    expect(new TextDecoder().decode(fromBase64(' Zm9v\nYmFy\t'))).to.equal('foobar');
    expect(new TextDecoder().decode(fromBase64('Zm9vY', { lastChunkHandling: 'stop-before-partial' } as never))).to.equal('foo');
  });

  it('when decoded, then the bytes are a plain Uint8Array of their own, not a view of Buffer\'s shared pool', () => {
    const bytes = fromBase64('Zm9vYmFy');
    expect(Object.getPrototypeOf(bytes)).to.equal(Uint8Array.prototype);
    expect(bytes.byteOffset).to.equal(0);
    expect(bytes.buffer.byteLength).to.equal(6);
  });

  it('when the crypto module is loaded, then jose encodes and decodes through these methods, refusing what they refuse', async () => {
    expect((Uint8Array.prototype as { toBase64?: unknown }).toBase64).to.be.a('function');
    expect((Uint8Array as { fromBase64?: unknown }).fromBase64).to.be.a('function');
    expect(jose.base64url.encode('foobar')).to.equal('Zm9vYmFy');
    expect(() => jose.base64url.decode('Zm9v*mFy')).to.throw(TypeError, /not correctly encoded/);
    const { privateKey, publicKey } = await jose.generateKeyPair('ES256');
    // Counted on the way through: jose's own fallback (btoa/atob) would not call them.
    const holder = Uint8Array as unknown as { fromBase64: (...args: unknown[]) => Uint8Array };
    const proto = Uint8Array.prototype as unknown as { toBase64: (...args: unknown[]) => string };
    const [decodeOriginal, encodeOriginal] = [holder.fromBase64, proto.toBase64];
    let calls = 0;
    holder.fromBase64 = (...args) => { calls++; return decodeOriginal.apply(Uint8Array, args); };
    proto.toBase64 = function (this: Uint8Array, ...args) { calls++; return encodeOriginal.apply(this, args); };
    try {
      const jws = await new jose.CompactSign(new TextEncoder().encode('{"a":1}')).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
      expect(new TextDecoder().decode((await jose.compactVerify(jws, publicKey)).payload)).to.equal('{"a":1}');
      expect(() => jose.decodeProtectedHeader(`eyJ*${jws.slice(3)}`)).to.throw(TypeError, /Invalid Token or Protected Header/);
    } finally {
      [holder.fromBase64, proto.toBase64] = [decodeOriginal, encodeOriginal];
    }
    expect(calls).to.be.greaterThan(3);
  });
});
