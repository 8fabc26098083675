/**
 * Cost of the federation's JOSE operations through jose (WebCrypto underneath), against the
 * node:crypto primitives the same operations reduce to (docs/BENCHMARKS.md, "JOSE through jose,
 * measured against its primitives"): an ES256 signature made and checked, and an ECDH-ES + A256GCM
 * envelope sealed and opened, on P-256 keys held as KeyObjects as the members hold them. It answers
 * whether jose's own cost is worth hand-written JOSE on the hot path (docs/DESIGN.md §6.3).
 *
 *   npx tsx scripts/bench/jose.ts [--ops 3000]
 *
 * Each operation runs `--ops` times one after the other (awaited) after 300 warm-up rounds; the
 * figure is process CPU (all threads) and wall time per operation, on a payload the size of a
 * one-subject query.
 */
import { createCipheriv, diffieHellman, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { Command } from 'commander';
import * as jose from 'jose';

const options = new Command('jose').option('--ops <n>', 'operations of each kind', '3000').parse().opts<{ ops: string }>();
const OPS = Number(options.ops);

async function time(name: string, op: () => unknown): Promise<void> {
  for (let i = 0; i < 300; i++) await op();
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) await op();
  const wallUs = Number(process.hrtime.bigint() - start) / 1000 / OPS;
  const used = process.cpuUsage(cpu);
  console.log(`  ${name.padEnd(50)} ${((used.user + used.system) / OPS).toFixed(0).padStart(6)} µs CPU  ${wallUs.toFixed(0).padStart(6)} µs wall`);
}

const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const encryption = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const payload = new TextEncoder().encode(JSON.stringify({
  iss: '112241', aud: 'gateway', jti: randomBytes(16).toString('hex'), purpose: 'next-dose-scheduling',
  subjects: [{ ref: '0', sub: randomBytes(32).toString('base64url'), source: '293610', legalBasis: 'consent' }],
}));

console.log(`JOSE, ${OPS} operations each (one process, P-256 KeyObjects)`);
const jws = await new jose.CompactSign(payload).setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'x' }).sign(signing.privateKey);
await time('ES256 sign, jose CompactSign', () => new jose.CompactSign(payload).setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'x' }).sign(signing.privateKey));
await time('ES256 verify, jose compactVerify', () => jose.compactVerify(jws, signing.publicKey, { algorithms: ['ES256'] }));
const signingInput = Buffer.from(jws.slice(0, jws.lastIndexOf('.')));
const signature = Buffer.from(jws.slice(jws.lastIndexOf('.') + 1), 'base64url');
await time('ES256 sign, node:crypto sign', () => sign('sha256', signingInput, { key: signing.privateKey, dsaEncoding: 'ieee-p1363' }));
await time('ES256 verify, node:crypto verify', () => verify('sha256', signingInput, { key: signing.publicKey, dsaEncoding: 'ieee-p1363' }, signature));

const header = { alg: 'ECDH-ES', enc: 'A256GCM', kid: 'e' } as const;
const jwe = await new jose.CompactEncrypt(payload).setProtectedHeader(header).encrypt(encryption.publicKey);
await time('ECDH-ES+A256GCM seal, jose CompactEncrypt', () => new jose.CompactEncrypt(payload).setProtectedHeader(header).encrypt(encryption.publicKey));
await time('ECDH-ES+A256GCM open, jose compactDecrypt', () => jose.compactDecrypt(jwe, encryption.privateKey, { keyManagementAlgorithms: ['ECDH-ES'] }));
// The primitives of a seal: an ephemeral key, the agreement, and AES-256-GCM (the Concat KDF is one SHA-256).
await time('seal primitives, node:crypto (keygen, ECDH, GCM)', () => {
  const ephemeral = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: encryption.publicKey });
  const cipher = createCipheriv('aes-256-gcm', shared.subarray(0, 32), randomBytes(12));
  return Buffer.concat([cipher.update(payload), cipher.final(), cipher.getAuthTag()]);
});
