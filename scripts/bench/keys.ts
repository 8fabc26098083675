/**
 * Cost of one federation key operation, and of making the test PKI (docs/BENCHMARKS.md, "Keys"):
 * sign, verify, seal and open as `shared/crypto.ts` does them, with a member's credentials as
 * `shared/federation/pki.ts` makes them, so the figures follow whatever keys the PKI issues.
 *
 *   npx tsx scripts/bench/keys.ts [--ops 2000] [--pki] [--reference]
 *
 * Each operation runs `--ops` times one after the other (awaited), after 50 warm-up rounds; the
 * figure is wall time and process CPU (all threads: libuv's pool signs) per operation. `--pki`
 * also times one full test PKI (test/fixtures/pki.ts, made in a scratch folder and removed).
 * `--reference` adds the P-256 primitives called through node:crypto directly (synchronously, no
 * WebCrypto): what the same keys cost without jose, for comparison only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, diffieHellman, generateKeyPairSync, randomUUID, sign, verify } from 'node:crypto';
import { Command } from 'commander';
import { decryptWith, encryptFor, signJwt, verifyJwt } from '../../shared/crypto.ts';
import { createCertificateAuthority, credentialsFromPem, issueMemberCertificates } from '../../shared/federation/pki.ts';
import { prepareTestPki } from '../../test/fixtures/pki.ts';

const options = new Command('keys').option('--ops <n>', 'operations of each kind', '2000').option('--pki', 'also time making the test PKI')
  .option('--reference', 'also time the P-256 primitives through node:crypto directly').parse().opts<{ ops: string; pki?: boolean; reference?: boolean }>();
const OPS = Number(options.ops);

const ca = await createCertificateAuthority();
const member = async (id: string) => {
  const issued = await issueMemberCertificates(ca, { id, kind: 'municipality', name: id });
  return credentialsFromPem({ ca: ca.cert, tlsCert: issued.tls.cert, tlsKey: issued.tls.key, encCert: issued.enc.cert, encKey: issued.enc.key });
};
const [a, b] = await Promise.all([member('293610'), member('112241')]);
/** The verifier holds the signer's public key, from its certificate. */
const signerPublic = createPublicKey(a.signer.key);
const typ = 'hikitsugi-bench+jwt';
const claims = () => ({ iss: a.id, aud: b.id, jti: randomUUID(), purpose: 'prior-record', subjects: ['x'.repeat(43)] });
const token = await signJwt(claims(), { key: a.signer.key, kid: a.signer.kid, typ }, 300);
const sealed = await encryptFor(token, b.encryption.key, b.encryption.kid);

async function time(name: string, op: () => Promise<unknown>): Promise<{ name: string; wallMs: number; cpuMs: number }> {
  for (let i = 0; i < 50; i++) await op();
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) await op();
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  const used = process.cpuUsage(cpu);
  return { name, wallMs: wall / OPS, cpuMs: (used.user + used.system) / 1000 / OPS };
}

const key = a.signer.key.asymmetricKeyType === 'ec' ? `EC ${a.signer.key.asymmetricKeyDetails?.namedCurve}` : `${a.signer.key.asymmetricKeyType} ${a.signer.key.asymmetricKeyDetails?.modulusLength}`;
const rows = [
  await time('sign (JWT)', () => signJwt(claims(), { key: a.signer.key, kid: a.signer.kid, typ }, 300)),
  await time('verify (JWT, every claim)', () => verifyJwt(token, { key: signerPublic, issuer: a.id, audience: b.id, typ, maxAgeSeconds: 300 })),
  await time('seal (JWE of the JWT)', () => encryptFor(token, b.encryption.key, b.encryption.kid)),
  await time('open (JWE)', () => decryptWith(sealed, b.decryption.key)),
];
console.log(`keys: ${key}; ${OPS} operations each; Node ${process.version}`);
for (const r of rows) console.log(`  ${r.name.padEnd(28)} ${r.wallMs.toFixed(3)} ms wall  ${r.cpuMs.toFixed(3)} ms CPU`);
console.log(`  sizes: JWS ${token.length} characters, JWE ${sealed.length}`);

if (options.reference && a.signer.key.asymmetricKeyType === 'ec') {
  const input = Buffer.from(token.split('.').slice(0, 2).join('.'));
  const p1363 = { dsaEncoding: 'ieee-p1363' } as const;
  const signature = sign('sha256', input, { key: a.signer.key, ...p1363 });
  const ephemeral = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const direct = [
    await time('ECDSA P-256 sign', async () => sign('sha256', input, { key: a.signer.key, ...p1363 })),
    await time('ECDSA P-256 verify', async () => verify('sha256', input, { key: signerPublic, ...p1363 }, signature)),
    await time('P-256 key pair', async () => generateKeyPairSync('ec', { namedCurve: 'P-256' })),
    await time('ECDH P-256', async () => diffieHellman({ privateKey: ephemeral.privateKey, publicKey: b.encryption.key })),
  ];
  console.log('  node:crypto directly, for reference (not used by the federation):');
  for (const r of direct) console.log(`    ${r.name.padEnd(26)} ${r.wallMs.toFixed(3)} ms wall  ${r.cpuMs.toFixed(3)} ms CPU`);
}

if (options.pki) {
  const root = join(mkdtempSync(join(tmpdir(), 'bench-pki-')), 'test-pki');
  try {
    const start = Date.now();
    await prepareTestPki(root);
    console.log(`  test PKI (2 CAs, 5 members each, 3 expired certificates): ${((Date.now() - start) / 1000).toFixed(2)} s`);
  } finally {
    rmSync(join(root, '..'), { recursive: true, force: true });
  }
}
