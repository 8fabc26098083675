/**
 * Verifies one member's access log from its database file, as an auditor with the files would:
 *
 *   npm run audit:verify -- 293610 [--data-dir data] [--pki data/pki] [--json]
 *   npm run audit:verify -- gateway
 *   npm run audit:verify -- issuer
 *
 * Walks the hash chain of data/<member>/<member>.sqlite and checks it against every checkpoint of
 * that member held by anyone in the data folder (its own table, the gateway's, peers'), so a
 * member that rewrote and re-hashed its whole log is still caught: a municipality's and the
 * issuer's checkpoints are countersigned and kept by the gateway, the gateway's own are kept by
 * every municipality that fetched them. With a PKI folder (default
 * <data-dir>/pki when present) each checkpoint's signature is verified and forged ones are set
 * aside. Prints OK or the first broken entry; exit code 0 when OK, 1 when broken, 2 on bad usage.
 *
 * Members on PostgreSQL have no file in the data folder: name their databases with
 * `--database <member>=<postgres://…>` (repeatable; also counted as holders of checkpoints).
 *
 * Besides checkpoints, the heads of the member's log that others saw in its signed messages
 * (witnessed_heads, docs/PROTOCOL.md §3.0) are checked, so the tail since the last checkpoint is
 * covered too. A municipality's privacy officer without the others' files fetches them over the
 * federation instead, with the municipality's own certificate:
 *
 *   npm run audit:verify -- 293610 --gateway https://gateway:8443 --cert-dir data/pki/293610
 *
 * (the gateway's checkpoints of our log, and the heads the gateway and every peer hold, each
 * answering only about the asking member's own log).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { Command } from 'commander';
import type { Sequelize } from 'sequelize';
import { ACCESS_LOG_TABLE } from '../shared/access-log/chain.ts';
import { WITNESSED_HEADS_TABLE, defineWitnessedHeads, federationHeadHolders, fetchHeldHeads, heldHeads } from '../shared/access-log/heads.ts';
import { gatewayHeldCheckpoints } from '../shared/access-log/witness.ts';
import { createDirectoryClient } from '../shared/federation/directory.ts';
import { createMemberClient } from '../shared/federation/member-http.ts';
import { loadMemberCredentials } from '../shared/federation/pki.ts';
import { GATEWAY_ID } from '../shared/federation/protocol.ts';
import { CHECKPOINT_TABLE, defineCheckpoints, heldCheckpoints, verifyChain, type HeldCheckpoint, type VerifyReport } from '../shared/access-log/verify.ts';
import { openDatabase } from '../shared/platform/db.ts';
import { pkiPaths, readDirectoryFile, verifyMemberCertificate } from '../shared/federation/pki.ts';

const MEMBER_ID = /^[A-Za-z0-9_-]{1,32}$/;

const databaseOf = (dataDir: string, member: string) => join(dataDir, member, `${member}.sqlite`);

/** Where a member's database is: a PostgreSQL URL given with --database, else its SQLite file in the data folder. */
type Databases = Record<string, string>;
const openMember = (dataDir: string, databases: Databases, member: string): Promise<Sequelize> => {
  const given = databases[member];
  if (given && /^postgres(ql)?:\/\//.test(given)) return openDatabase({ url: given });
  return openDatabase({ storage: given ?? databaseOf(dataDir, member) });
};
const hasDatabase = (dataDir: string, databases: Databases, member: string): boolean =>
  Boolean(databases[member]) || existsSync(databaseOf(dataDir, member));

function hasTable(sequelize: Sequelize, table: string): Promise<boolean> {
  return sequelize.getQueryInterface().tableExists(table);
}

/** The member's signing key from the federation directory, its certificate verified against the CA. */
function signingKeyFrom(pkiDir: string, member: string): KeyObject | undefined {
  const paths = pkiPaths(pkiDir);
  if (!existsSync(paths.directory) || !existsSync(paths.caCert)) return undefined;
  const entry = readDirectoryFile(paths.directory).find((e) => e.id === member);
  if (!entry) return undefined;
  return verifyMemberCertificate(entry.signingCertificate, readFileSync(paths.caCert, 'utf8'), { usage: 'signing', expectedId: member }).publicKey;
}

/**
 * What the federation holds of `member`'s log, fetched over mTLS with the member's own
 * certificate: the gateway's countersigned checkpoints (each checked against our own signature)
 * and the heads the gateway and every peer saw. A holder that cannot be asked is named.
 */
async function heldOverFederation(member: string, gatewayUrl: string, certDir: string): Promise<{ held: HeldCheckpoint[]; sources: string[] }> {
  const credentials = loadMemberCredentials(certDir);
  if (credentials.id !== member) throw new Error(`--cert-dir holds the certificate of ${credentials.id}, not of ${member}`);
  const client = createMemberClient(credentials);
  try {
    const base = gatewayUrl.replace(/\/+$/, '');
    const directory = createDirectoryClient(client, base, credentials.ca);
    const link = { client, gatewayUrl: base, timeoutMs: 10_000, gatewayKey: async () => (await directory.signingKey(GATEWAY_ID)).key };
    const checkpoints = await gatewayHeldCheckpoints(link, credentials.signer, createPublicKey(credentials.signer.key));
    const heads = await fetchHeldHeads(client, member, await federationHeadHolders(directory, member, base), { timeoutMs: 5000 });
    const sources = [
      ...(checkpoints.length ? [`${GATEWAY_ID} over the federation (${checkpoints.length})`] : []),
      ...heads.sources.map((s) => (s.unavailable ? `${s.holder} (unavailable: ${s.unavailable})` : `${s.holder} heads (${s.heads})`)),
    ];
    return { held: [...checkpoints, ...heads.held], sources };
  } finally {
    client.close();
  }
}

async function auditVerify(
  member: string, options: { dataDir: string; pki?: string; database?: Databases; gateway?: string; certDir?: string },
): Promise<{ report: VerifyReport; sources: string[]; rejected: number }> {
  const databases = options.database ?? {};
  const file = databases[member] ? `the database given for ${member}` : databaseOf(options.dataDir, member);
  if (!hasDatabase(options.dataDir, databases, member)) throw new Error(`no database for member ${member} at ${file}`);
  const pkiDir = options.pki ?? join(options.dataDir, 'pki');
  const key = existsSync(pkiDir) ? signingKeyFrom(pkiDir, member) : undefined;
  const keyFor = key ? () => key : undefined;

  const checkpoints: HeldCheckpoint[] = [];
  const sources: string[] = [];
  let rejected = 0;
  const inFolder = existsSync(options.dataDir)
    ? readdirSync(options.dataDir, { withFileTypes: true }).filter((d) => d.isDirectory() && MEMBER_ID.test(d.name)).map((d) => d.name)
    : [];
  const holders = [...new Set([...inFolder, ...Object.keys(databases)])].sort()
    .filter((h) => hasDatabase(options.dataDir, databases, h));
  for (const holder of holders.filter((h) => h !== member)) {
    const other = await openMember(options.dataDir, databases, holder);
    try {
      if (!(await hasTable(other, CHECKPOINT_TABLE))) continue;
      const held = await heldCheckpoints(defineCheckpoints(other), member, holder, keyFor);
      checkpoints.push(...held.checkpoints);
      rejected += held.rejected.length;
      if (held.checkpoints.length) sources.push(`${holder} (${held.checkpoints.length})`);
      if (await hasTable(other, WITNESSED_HEADS_TABLE)) {
        const heads = await heldHeads(defineWitnessedHeads(other), member, holder);
        checkpoints.push(...heads);
        if (heads.length) sources.push(`${holder} heads (${heads.length})`);
      }
    } finally {
      await other.close();
    }
  }

  if (options.gateway && options.certDir) {
    const remote = await heldOverFederation(member, options.gateway, options.certDir);
    checkpoints.push(...remote.held);
    sources.push(...remote.sources);
  }

  const sequelize = await openMember(options.dataDir, databases, member);
  try {
    if (!(await hasTable(sequelize, ACCESS_LOG_TABLE))) throw new Error(`${file} has no ${ACCESS_LOG_TABLE} table`);
    if (await hasTable(sequelize, CHECKPOINT_TABLE)) {
      const own = await heldCheckpoints(defineCheckpoints(sequelize), member, member, keyFor);
      checkpoints.push(...own.checkpoints);
      rejected += own.rejected.length;
      if (own.checkpoints.length) sources.push(`${member} (${own.checkpoints.length})`);
    }
    const report = await verifyChain(sequelize, { member, checkpoints });
    return { report, sources, rejected };
  } finally {
    await sequelize.close();
  }
}

const program = new Command('audit-verify')
  .description('verify a member\'s hash-chained access log and the checkpoints held about it')
  .argument('<member>', 'member id: a municipality code, gateway or issuer')
  .option('--data-dir <dir>', 'folder holding <member>/<member>.sqlite for every member', 'data')
  .option('--pki <dir>', 'PKI folder with directory.json and ca/ca.pem, to verify checkpoint signatures (default <data-dir>/pki)')
  .option('--json', 'print the report as JSON')
  .option('--gateway <url>', 'also fetch what the federation holds of this log over mTLS, from this gateway (needs --cert-dir)')
  .option('--cert-dir <dir>', 'the member\'s own certificate folder (ca.pem, tls.pem, tls.key, enc.pem, enc.key) for --gateway')
  .option('--database <member=url>', 'a member\'s database on PostgreSQL (postgres://…) or elsewhere than <data-dir>; repeatable',
    (spec: string, all: Databases = {}) => {
      const at = spec.indexOf('=');
      return { ...all, [at > 0 ? spec.slice(0, at) : spec]: at > 0 ? spec.slice(at + 1) : '' };
    })
  .action(async (member: string, options: { dataDir: string; pki?: string; json?: boolean; database?: Databases; gateway?: string; certDir?: string }) => {
    if (Boolean(options.gateway) !== Boolean(options.certDir)) {
      console.error('--gateway and --cert-dir go together: the federation is asked with the member\'s own certificate');
      process.exitCode = 2;
      return;
    }
    if (!MEMBER_ID.test(member)) {
      console.error(`member must be a member id (letters, digits, - or _), got ${JSON.stringify(member)}`);
      process.exitCode = 2;
      return;
    }
    const badDatabase = Object.entries(options.database ?? {}).find(([id, where]) => !MEMBER_ID.test(id) || !where);
    if (badDatabase) {
      console.error(`--database must be <member>=<postgres://… or file>, got ${JSON.stringify(badDatabase[0])}`);
      process.exitCode = 2;
      return;
    }
    let result;
    try {
      result = await auditVerify(member, options);
    } catch (err) {
      console.error((err as Error).message);
      process.exitCode = 2;
      return;
    }
    const { report, sources, rejected } = result;
    if (options.json) console.log(JSON.stringify({ ...report, checkpointSources: sources, checkpointsRejected: rejected }, null, 2));
    else if (report.ok) {
      console.log(`OK ${member}: ${report.entries} entries, head seq ${report.head?.seq ?? 0} ${report.head?.hash ?? ''}`);
      console.log(`   checkpoints agreeing: ${report.checkpoints.agreeing}${sources.length ? ` (held by ${sources.join(', ')})` : ''}${rejected ? `; ${rejected} with a bad signature set aside` : ''}`);
    } else {
      const b = report.broken!;
      console.log(`BROKEN ${member}: first broken entry seq ${b.seq} (${b.kind})`);
      console.log(`   ${b.detail}`);
      if (b.expected !== undefined) console.log(`   expected ${b.expected}`);
      if (b.actual !== undefined) console.log(`   actual   ${b.actual}`);
    }
    process.exitCode = report.ok ? 0 : 1;
  });

await program.parseAsync(process.argv);
