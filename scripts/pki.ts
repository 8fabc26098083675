/**
 * The federation CA's command line (with the launcher of local federations, which runs its `init` in
 * process, the only code that touches ca/ca.key).
 *
 *   tsx scripts/pki.ts init --dir data/pki --member issuer:issuer:Issuer --member gateway:gateway:Gateway \
 *     --member 293610:municipality:Tawaramoto --member 343692:municipality:Akiota --member 112241:municipality:Toda
 *   tsx scripts/pki.ts revoke --dir data/pki --member 343692
 *   tsx scripts/pki.ts refresh --dir data/pki            (daily: re-signs the revocation list)
 *   tsx scripts/pki.ts resident --dir data/pki --kana 'ヤマダ ハナコ' --birth-date 1990-04-01 --sex female --out data/residents/hanako
 *
 * `init` creates what is missing and keeps existing keys; a revoked or expired member, or one whose
 * certificate holds an RSA key, is re-issued. A CA with an RSA key (an earlier version's) stops
 * `init` with what to run; `--replace-rsa-ca` moves it aside and makes a new EC P-256 CA.
 * `init`, `revoke` and `refresh` each sign the next revocation list (docs/PROTOCOL.md §1): number
 * plus one, nextUpdate `--valid-days` ahead (7). Members fail closed once a list is past its
 * nextUpdate plus their grace, so the CA operator re-signs it well before, e.g. daily from cron.
 */
import { Command, InvalidArgumentError } from 'commander';
import { isValidMunicipalityCode } from '../shared/identifiers.ts';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildDirectory, certificateKid, initPki, issueResidentCertificate, MEMBER_KINDS, publishRevocations, readCaRevocations, readCertificateAuthority, revokeMember,
  writeDirectoryFile,
  type MemberKind, type MemberSpec, type ResidentSex,
} from '../shared/federation/pki.ts';

function parseMember(value: string, previous: MemberSpec[] = []): MemberSpec[] {
  const [id, kind, ...rest] = value.split(':');
  const name = rest.join(':');
  if (!id || !kind || !name) throw new InvalidArgumentError('expected id:kind:Name');
  if (!MEMBER_KINDS.includes(kind as MemberKind)) throw new InvalidArgumentError(`kind must be one of ${MEMBER_KINDS.join(', ')}`);
  if (kind === 'municipality' && !isValidMunicipalityCode(id)) throw new InvalidArgumentError(`${id} is not a municipality code with a valid check digit`);
  if (kind !== 'municipality' && id !== kind) throw new InvalidArgumentError(`the ${kind}'s id must be '${kind}'`);
  return [...previous, { id, kind: kind as MemberKind, name }];
}

function parseEndpoint(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const [id, url] = [value.slice(0, value.indexOf('=')), value.slice(value.indexOf('=') + 1)];
  if (!id || !/^https:\/\/[^\s]+$/.test(url)) throw new InvalidArgumentError('expected id=https://host:port');
  return { ...previous, [id]: url };
}

const validDays = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 366) throw new InvalidArgumentError('must be more than 0 and at most 366 days');
  return n;
};
const listValidity = (days: number) => Math.round(days * 86_400);
const describeList = (list: { number: number; nextUpdate: Date; serials: ReadonlySet<string> }) =>
  `revocation list ${list.number} (${list.serials.size} serials), next update due ${list.nextUpdate.toISOString()}`;

const program = new Command('pki').description('hikitsugi federation PKI');

program.command('init')
  .description('create the CA and member certificates that are missing')
  .requiredOption('--dir <dir>', 'PKI folder', 'data/pki')
  .option('--member <id:kind:Name>', 'a member (repeatable)', parseMember, [])
  .option('--endpoint <id=url>', 'a member\'s federation URL for directory.json (repeatable; compose uses it)', parseEndpoint, {})
  .option('--valid-days <days>', 'days until the revocation list\'s nextUpdate', validDays, 7)
  .option('--replace-rsa-ca', 'a CA with an RSA key (made by an earlier version) is moved aside, a new EC P-256 CA made and every member re-issued')
  .action(async (options: { dir: string; member: MemberSpec[]; endpoint: Record<string, string>; validDays: number; replaceRsaCa?: boolean }) => {
    const result = await initPki(options.dir, options.member, { listValidSeconds: listValidity(options.validDays), replaceRsaCa: options.replaceRsaCa });
    if (result.retiredCa) console.log(`replaced the RSA CA with an EC P-256 one (the old one is in ${result.retiredCa}); give every member its new folder`);
    if (Object.keys(options.endpoint).length > 0) {
      writeDirectoryFile(join(options.dir, 'directory.json'), buildDirectory(options.dir, options.endpoint));
    }
    // What every member may see (no keys): deployments mount this folder, never ca/.
    const publicDir = join(options.dir, 'public');
    mkdirSync(publicDir, { recursive: true });
    for (const [from, to] of [['ca/ca.pem', 'ca.pem'], ['directory.json', 'directory.json'], ['ca/revocations.jws', 'revocations.jws']] as const) {
      if (existsSync(join(options.dir, from))) copyFileSync(join(options.dir, from), join(publicDir, to));
    }
    for (const id of result.created) console.log(`created  ${id}`);
    for (const id of result.reissued) console.log(`reissued ${id} (was revoked, expired, or held an RSA key)`);
    for (const id of result.kept) console.log(`kept     ${id}`);
    console.log(`directory ${options.dir}/directory.json`);
    console.log(`signed ${describeList(await readCaRevocations(options.dir))}`);
  });

program.command('revoke')
  .description('revoke both certificates of a member (signs the next ca/revocations.jws with their serials)')
  .requiredOption('--dir <dir>', 'PKI folder', 'data/pki')
  .requiredOption('--member <id>', 'member id')
  .option('--valid-days <days>', 'days until the revocation list\'s nextUpdate', validDays, 7)
  .action(async (options: { dir: string; member: string; validDays: number }) => {
    const serials = await revokeMember(options.dir, options.member, { validSeconds: listValidity(options.validDays) });
    console.log(`revoked ${options.member}: ${serials.join(', ')}`);
  });

program.command('refresh')
  .description('re-sign the revocation list: same serials, next number, a fresh nextUpdate (run it daily)')
  .requiredOption('--dir <dir>', 'PKI folder', 'data/pki')
  .option('--valid-days <days>', 'days until the revocation list\'s nextUpdate', validDays, 7)
  .action(async (options: { dir: string; validDays: number }) => {
    console.log(`signed ${describeList(await publishRevocations(options.dir, [], { validSeconds: listValidity(options.validDays) }))}`);
  });

program.command('resident')
  .description('issue a resident\'s personal signing certificate (stands in for the My Number card\'s signing certificate)')
  .requiredOption('--dir <dir>', 'PKI folder', 'data/pki')
  .requiredOption('--kana <kana>', 'the name in katakana, as registered')
  .requiredOption('--birth-date <date>', 'YYYY-MM-DD')
  .requiredOption('--sex <sex>', 'male, female, other or unknown')
  .requiredOption('--out <dir>', 'where to write resident.pem (and resident.key when the key is made here)')
  .option('--public-key <file>', 'the resident\'s own public key (PEM), which never leaves them; without it a key pair is made')
  .option('--days <n>', 'validity in days (default five years)', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 3650) throw new InvalidArgumentError('must be 1-3650 days');
    return n;
  })
  .action(async (options: { dir: string; kana: string; birthDate: string; sex: string; out: string; publicKey?: string; days?: number }) => {
    if (!['male', 'female', 'other', 'unknown'].includes(options.sex)) throw new InvalidArgumentError('--sex must be male, female, other or unknown');
    const issued = await issueResidentCertificate(readCertificateAuthority(options.dir), {
      kana: options.kana, birthDate: options.birthDate, sex: options.sex as ResidentSex,
    }, { days: options.days, publicKey: options.publicKey ? readFileSync(options.publicKey, 'utf8') : undefined });
    mkdirSync(options.out, { recursive: true, mode: 0o700 });
    writeFileSync(join(options.out, 'resident.pem'), issued.cert);
    if (issued.key) {
      writeFileSync(join(options.out, 'resident.key'), issued.key, { mode: 0o600 });
      chmodSync(join(options.out, 'resident.key'), 0o600);
    }
    console.log(`issued resident certificate kid ${certificateKid(issued.cert)} → ${options.out}/resident.pem`);
  });

await program.parseAsync(process.argv);
