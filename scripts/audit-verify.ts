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
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { Command } from 'commander';
import { QueryTypes, type Sequelize } from 'sequelize';
import { ACCESS_LOG_TABLE } from '../shared/audit.ts';
import { CHECKPOINT_TABLE, defineCheckpoints, heldCheckpoints, verifyChain, type HeldCheckpoint, type VerifyReport } from '../shared/audit-verify.ts';
import { openDatabase } from '../shared/db.ts';
import { pkiPaths, readDirectoryFile, verifyMemberCertificate } from '../shared/pki.ts';

const MEMBER_ID = /^[A-Za-z0-9_-]{1,32}$/;

const databaseOf = (dataDir: string, member: string) => join(dataDir, member, `${member}.sqlite`);

async function hasTable(sequelize: Sequelize, table: string): Promise<boolean> {
  const rows = await sequelize.query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = :table`, { type: QueryTypes.SELECT, replacements: { table } });
  return rows.length > 0;
}

/** The member's signing key from the federation directory, its certificate verified against the CA. */
function signingKeyFrom(pkiDir: string, member: string): KeyObject | undefined {
  const paths = pkiPaths(pkiDir);
  if (!existsSync(paths.directory) || !existsSync(paths.caCert)) return undefined;
  const entry = readDirectoryFile(paths.directory).find((e) => e.id === member);
  if (!entry) return undefined;
  return verifyMemberCertificate(entry.signingCertificate, readFileSync(paths.caCert, 'utf8'), { usage: 'signing', expectedId: member }).publicKey;
}

async function auditVerify(member: string, options: { dataDir: string; pki?: string }): Promise<{ report: VerifyReport; sources: string[]; rejected: number }> {
  const file = databaseOf(options.dataDir, member);
  if (!existsSync(file)) throw new Error(`no database for member ${member} at ${file}`);
  const pkiDir = options.pki ?? join(options.dataDir, 'pki');
  const key = existsSync(pkiDir) ? signingKeyFrom(pkiDir, member) : undefined;
  const keyFor = key ? () => key : undefined;

  const checkpoints: HeldCheckpoint[] = [];
  const sources: string[] = [];
  let rejected = 0;
  const holders = readdirSync(options.dataDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && MEMBER_ID.test(d.name) && existsSync(databaseOf(options.dataDir, d.name)))
    .map((d) => d.name);
  for (const holder of holders.filter((h) => h !== member)) {
    const other = await openDatabase({ storage: databaseOf(options.dataDir, holder) });
    try {
      if (!(await hasTable(other, CHECKPOINT_TABLE))) continue;
      const held = await heldCheckpoints(defineCheckpoints(other), member, holder, keyFor);
      checkpoints.push(...held.checkpoints);
      rejected += held.rejected.length;
      if (held.checkpoints.length) sources.push(`${holder} (${held.checkpoints.length})`);
    } finally {
      await other.close();
    }
  }

  const sequelize = await openDatabase({ storage: file });
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
  .action(async (member: string, options: { dataDir: string; pki?: string; json?: boolean }) => {
    if (!MEMBER_ID.test(member)) {
      console.error(`member must be a member id (letters, digits, - or _), got ${JSON.stringify(member)}`);
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
