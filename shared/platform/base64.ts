/**
 * The ES2026 base64 methods of Uint8Array (`toBase64`, `Uint8Array.fromBase64`) where the runtime
 * lacks them (Node 20 does), backed by Buffer's native codec. jose uses these methods when they
 * exist and otherwise goes through `btoa`/`atob`, which Node 20 implements in JavaScript: in bulk
 * that fallback was a fifth of a source's main thread (docs/BENCHMARKS.md, "Later the same day"). Decoding keeps the standard's strictness — an alphabet character, ASCII
 * whitespace or correct padding, nothing else — because Buffer alone would skip what it does not
 * understand. Installed once, by the crypto module; a runtime that has the methods keeps its own.
 */

type Alphabet = 'base64' | 'base64url';
type LastChunkHandling = 'loose' | 'strict' | 'stop-before-partial';

interface ToBase64Options { alphabet?: Alphabet; omitPadding?: boolean }
interface FromBase64Options { alphabet?: Alphabet; lastChunkHandling?: LastChunkHandling }

const ASCII_WHITESPACE = /[\t\n\f\r ]/g;
const BODY: Record<Alphabet, RegExp> = { base64: /^[A-Za-z0-9+/]*$/, base64url: /^[A-Za-z0-9_-]*$/ };
const VALUE = (alphabet: Alphabet, char: string): number =>
  (alphabet === 'base64' ? 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/' : 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_').indexOf(char);

function alphabetOf(options: { alphabet?: unknown } | undefined): Alphabet {
  const alphabet = options?.alphabet ?? 'base64';
  if (alphabet !== 'base64' && alphabet !== 'base64url') throw new TypeError('alphabet must be "base64" or "base64url"');
  return alphabet;
}

/** `Uint8Array.prototype.toBase64` (ECMA-262, 2026). */
export function toBase64(bytes: Uint8Array, options?: ToBase64Options): string {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('toBase64 needs a Uint8Array');
  const alphabet = alphabetOf(options);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(alphabet);
  // Buffer pads base64 and never pads base64url: make both follow `omitPadding`.
  const bare = alphabet === 'base64' ? text.replace(/=+$/, '') : text;
  return options?.omitPadding ? bare : bare + '='.repeat((4 - (bare.length % 4)) % 4);
}

/** `Uint8Array.fromBase64` (ECMA-262, 2026): a SyntaxError for anything outside the alphabet. */
export function fromBase64(input: string, options?: FromBase64Options): Uint8Array {
  if (typeof input !== 'string') throw new TypeError('fromBase64 needs a string');
  const alphabet = alphabetOf(options);
  const last = options?.lastChunkHandling ?? 'loose';
  if (last !== 'loose' && last !== 'strict' && last !== 'stop-before-partial') {
    throw new TypeError('lastChunkHandling must be "loose", "strict" or "stop-before-partial"');
  }
  const text = input.replace(ASCII_WHITESPACE, '');
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  let body = text.slice(0, text.length - padding);
  if (!BODY[alphabet].test(body)) throw new SyntaxError(`not ${alphabet}: a character outside the alphabet or misplaced padding`);
  const partial = body.length % 4;
  if (padding > 0) {
    // "==" completes a chunk of two characters, "=" one of three.
    if (partial !== 4 - padding) throw new SyntaxError(`not ${alphabet}: misplaced padding`);
  } else if (partial !== 0) {
    if (last === 'stop-before-partial') body = body.slice(0, body.length - partial);
    else if (partial === 1) throw new SyntaxError(`not ${alphabet}: a final chunk of one character`);
    else if (last === 'strict') throw new SyntaxError(`not ${alphabet}: missing padding`);
  }
  const rest = body.length % 4;
  if (last === 'strict' && rest !== 0) {
    // Strict decoding refuses bits the last character carries beyond the last byte.
    const unused = rest === 2 ? 0b1111 : 0b11;
    if ((VALUE(alphabet, body[body.length - 1]!) & unused) !== 0) throw new SyntaxError(`not ${alphabet}: non-zero bits after the last byte`);
  }
  // A plain Uint8Array of its own, never a view of Buffer's shared pool.
  return new Uint8Array(Buffer.from(body, 'base64'));
}

/** Adds the two methods where they are missing; a runtime's own stay. */
export function installBase64Methods(): void {
  if (typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64 !== 'function') {
    Object.defineProperty(Uint8Array.prototype, 'toBase64', {
      value: function toBase64Method(this: Uint8Array, options?: ToBase64Options) { return toBase64(this, options); },
      writable: true, configurable: true, enumerable: false,
    });
  }
  if (typeof (Uint8Array as { fromBase64?: unknown }).fromBase64 !== 'function') {
    Object.defineProperty(Uint8Array, 'fromBase64', {
      value: function fromBase64Method(input: string, options?: FromBase64Options) { return fromBase64(input, options); },
      writable: true, configurable: true, enumerable: false,
    });
  }
}
