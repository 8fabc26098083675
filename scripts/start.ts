/**
 * `npm start`: the whole local federation on this machine — issuer, gateway and the three demo
 * municipalities, each its own process with its own SQLite file, keys and port, all over mTLS.
 * First run creates the PKI, secrets and seed data under data/; later runs reuse them.
 * With DATABASE_ADMIN_URL (or --database-admin-url), every member runs on PostgreSQL instead, in its
 * own database with its own role (made or reused with scripts/db-provision.ts).
 */
import { Command } from 'commander';
import { DEMO_MUNICIPALITIES, DEMO_PASSWORD } from './demo.ts';
import { prepareFederation, seedMunicipalities, startControlServer, startFederation, stopFederation } from './federation.ts';
import { DEMO_RESIDENTS, DEMO_STAFF } from './seed.ts';
import { memberDatabaseName, provisionMemberDatabase } from './db-provision.ts';
import { join } from 'node:path';
import { caKeyRefusal, publishRevocations } from '../shared/federation/pki.ts';

/**
 * This launcher plays the CA operator too: the revocation list it signed at start (pki init) is
 * re-signed daily, as a CA's cron job would (`npm run pki -- refresh`), so members of a federation
 * left running never reach the list's nextUpdate and fail closed (docs/PROTOCOL.md §1).
 */
const LIST_RESIGN_MS = 24 * 3600 * 1000;

const program = new Command()
  .option('--data-dir <dir>', 'data folder (git-ignored)', 'data')
  .option('--residents <n>', 'synthetic residents per municipality on first start', String(DEMO_RESIDENTS))
  .option('--log-level <level>', 'members\' log level (logs go to data/<member>/<member>.log)', 'info')
  .option('--database-admin-url <url>', 'run every member on PostgreSQL: an admin role with CREATEDB and CREATEROLE', process.env.DATABASE_ADMIN_URL)
  .parse();
const options = program.opts<{ dataDir: string; residents: string; logLevel: string; databaseAdminUrl?: string }>();
const adminUrl = options.databaseAdminUrl;
const database = adminUrl
  ? async (member: string) => ({ DATABASE_URL: await provisionMemberDatabase(adminUrl, memberDatabaseName('hikitsugi', member)) })
  : undefined;

const started = Date.now();
console.log('hikitsugi: preparing the local federation (PKI, secrets, seed data) …');
const rsaCa = caKeyRefusal(join(options.dataDir, 'pki'));
if (rsaCa) {
  // A data folder of an earlier version: its demo PKI is made again (docs/PROTOCOL.md §1, SECURITY.md).
  console.log(`  ${rsaCa}: making a new CA, re-issuing every member and the demo residents' certificates (the old CA is kept in ${join(options.dataDir, 'pki')}/ca.retired-…)`);
}
const members = await prepareFederation({ dataDir: options.dataDir, municipalities: DEMO_MUNICIPALITIES, gatewayPort: 8443, issuerPort: 8444, gatewayStaffPort: 8445, logLevel: options.logLevel, database });
// Each municipality's own database, seeded in processes of their own, side by side.
const municipalities = members.filter((x) => x.kind === 'municipality');
const seeds = await seedMunicipalities(municipalities.map((m) => ({
  env: m.env, residents: Number(options.residents),
  residentDemo: { caDir: join(options.dataDir, 'pki'), outDir: join(options.dataDir, m.id, 'resident-demo') },
})));
municipalities.forEach((m, i) => {
  const seeded = seeds[i]!;
  if (seeded.residents > 0) console.log(`  seeded ${m.env.MUNICIPALITY_NAME} (${m.id}): ${seeded.residents} residents, ${seeded.records} records`);
  if (seeded.demoResident) console.log(`  enrolled demo resident ${seeded.demoResident} at ${m.id}: ${join(options.dataDir, m.id, 'resident-demo')}/certificate.pem + key.pem`);
});
await startFederation(members);
// Loopback-only, token in data/control.json: lets `npm run simulate -- --kill-source` stop and restart a member.
const control = await startControlServer(members, { dataDir: options.dataDir });
const resign = setInterval(() => {
  publishRevocations(join(options.dataDir, 'pki'), [])
    .then((list) => console.log(`  re-signed revocation list ${list.number}, next update due ${list.nextUpdate.toISOString()}`))
    .catch((err: Error) => console.error(`  could not re-sign the revocation list: ${err.message}`));
}, LIST_RESIGN_MS);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  clearInterval(resign);
  console.log('\nhikitsugi: stopping …');
  await control.close();
  await stopFederation(members);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

console.log(`\nhikitsugi federation is up (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
for (const m of members) {
  const what = m.kind === 'municipality' ? `${m.env.MUNICIPALITY_NAME} ${m.id}` : m.id;
  console.log(`  ${what.padEnd(20)} ${m.url.padEnd(26)} ${m.federationUrl ? `federation ${m.federationUrl}` : '(mTLS only)'}   log ${m.logFile}`);
}
console.log(`\n  Staff logins at every municipality (demo only), password "${DEMO_PASSWORD}":`);
for (const s of DEMO_STAFF) console.log(`    ${s.username.padEnd(10)} ${s.role}`);
console.log('\n  Privacy officer console: http://127.0.0.1:3001/console/  (and :3002, :3003)');
console.log('  Gateway privacy officer console: http://127.0.0.1:8445/console/  (officer1, same demo password)');
console.log(`  Simulator: npm run simulate -- --move-ins 100 [--kill-source]   (control endpoint ${control.url}, token in ${options.dataDir}/control.json)`);
console.log('  Resident page: http://127.0.0.1:3001/resident/  (sign in with data/<municipality>/resident-demo/certificate.pem and key.pem)');
console.log('  Walkthrough: scripts/walkthrough.sh (move-out at Tawaramoto, move-in at Toda, prior records)');
console.log('\n  Ctrl-C stops everything.');
