/**
 * Seeds one municipality's own database with demo staff and deterministic synthetic residents
 * (valid My Numbers, records that pass every rule). Idempotent: an already seeded database is
 * left as it is. The residents' codes are registered by the running service (they start pending).
 *
 *   tsx scripts/seed.ts --data-dir data --municipality 293610 --name Tawaramoto --residents 400
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { DEMO_PASSWORD, DEMO_SEED } from './demo.ts';
import { createLogger } from '../shared/platform/log.ts';
import { createMunicipality } from '../services/municipality/app.ts';
import { municipalityConfigSchema } from '../services/municipality/config.ts';
import { createStaff } from '../services/municipality/staff/service.ts';
import type { Actor, Role } from '../services/municipality/staff/roles.ts';
import type { Transaction } from 'sequelize';
import { generateResidents, SEED_REFERENCE_DATE, type GeneratedResident, type GeneratedTicket } from '../services/municipality/seed.ts';
import { createRecords, issueTickets, type SeededTicket } from '../services/municipality/vaccinations/service.ts';
import { createResidents, findResidentByAddressee, type NewResident } from '../services/municipality/residents/service.ts';
import { logStaffAccessBatch, type StaffAccess } from '../services/municipality/access-log/service.ts';
import type { MunicipalityContext } from '../services/municipality/context.ts';
import { enrolCertificate } from '../services/municipality/resident-page/service.ts';
import { issueResidentCertificate, readCertificateAuthority, verifyResidentCertificate, type ResidentSex } from '../shared/federation/pki.ts';
import { isMainModule } from '../shared/platform/main-module.ts';

export const DEMO_STAFF: { username: string; displayName: string; role: Role }[] = [
  { username: 'clerk1', displayName: 'Clerk One', role: 'clerk' },
  { username: 'clerk2', displayName: 'Clerk Two (second approver)', role: 'clerk' },
  { username: 'officer1', displayName: 'Privacy Officer', role: 'privacy_officer' },
  { username: 'operator1', displayName: 'Operator', role: 'operator' },
  { username: 'admin1', displayName: 'Administrator', role: 'admin' },
];
/**
 * Residents per municipality of the demo data `npm start` seeds: the one size the FHIR
 * end-to-end test validates in full (test/e2e/fhir-client.test.ts), so "every resource the demo
 * data produces" stays true when the demo grows.
 */
export const DEMO_RESIDENTS = 400;

/**
 * The demo resident credential (docs/DESIGN.md §4.14): a personal certificate from the federation
 * CA for the first seeded resident, enrolled as a clerk would at the counter, its certificate and
 * key written to `outDir` for the resident page's sign-in. Demo only: a real key stays on the card.
 */
export interface ResidentDemoOptions {
  caDir: string;
  outDir: string;
}

export interface SeedOptions {
  /** The municipality's environment as its process gets it (DATA_KEY, DATABASE_PATH, …). */
  env: Record<string, string>;
  residents: number;
  seed?: string;
  /** Residents per transaction; each transaction's residents go in multi-row statements (`insertGeneratedResidents`). */
  batchSize?: number;
  residentDemo?: ResidentDemoOptions;
}

/** The fields of a generated resident a clerk would register. */
export const residentInput = (g: GeneratedResident): NewResident => ({
  addresseeNumber: g.addresseeNumber, name: g.name, kana: g.kana, birthDate: g.birthDate, sex: g.sex, address: g.address, myNumber: g.myNumber,
});

/** How a generated ticket is issued: its own number, on the reference day. */
export const ticketOptions = (ticket: GeneratedTicket): SeededTicket => ({ ticketNumber: ticket.ticketNumber, issuedAt: `${SEED_REFERENCE_DATE}T00:00:00.000Z` });

/**
 * Writes generated residents with their records and tickets through the services' batch
 * functions, inside the caller's transaction: every rule of the one-by-one service functions
 * applies and the access log gets the entries they would have written, in the same order (each
 * resident's RESIDENT_CREATE, then its records', then its tickets'), in one append. A resident
 * the rules refuse fails the whole batch with the service's error; the caller's transaction
 * then writes nothing. With several at fault, the residents' own fields are all checked before
 * any record or ticket, so the error named may be a later resident's than one by one.
 */
export async function insertGeneratedResidents(ctx: MunicipalityContext, t: Transaction, generated: GeneratedResident[], actor: Actor) {
  const { residents, access: created } = await createResidents(ctx, t, generated.map(residentInput));
  const recordOwners = generated.flatMap((g, i) => g.records.map(() => i));
  const { records, access: recorded } = await createRecords(ctx, t, generated.flatMap((g, i) => g.records.map((input) => ({ resident: residents[i]!, input }))), actor);
  const ticketOwners = generated.flatMap((g, i) => g.tickets.map(() => i));
  const { access: issued } = await issueTickets(ctx, t, generated.flatMap((g, i) => g.tickets.map((ticket) => ({
    ...ticketOptions(ticket), resident: residents[i]!, input: { type: ticket.type, doseNumber: ticket.doseNumber },
  }))), actor);
  // Each resident's entries in the order one-by-one calls write them: the resident, its records, its tickets.
  const entries = residents.map((_, i): StaffAccess[] => [created[i]!]);
  const recordIds = residents.map((): string[] => []);
  recordOwners.forEach((owner, j) => {
    entries[owner]!.push(recorded[j]!);
    recordIds[owner]!.push(records[j]!.recordId);
  });
  ticketOwners.forEach((owner, j) => entries[owner]!.push(issued[j]!));
  await logStaffAccessBatch(ctx, t, actor, entries.flat());
  return residents.map((r, i) => ({ id: r.id, addresseeNumber: r.addresseeNumber, recordIds: recordIds[i]! }));
}

/** Whether the demo resident's certificate on disk still verifies with the CA (not so after an RSA CA was replaced). */
function demoCertificateValid(file: string, caPem: string): boolean {
  try {
    verifyResidentCertificate(readFileSync(file, 'utf8'), caPem);
    return true;
  } catch {
    return false;
  }
}

async function enrolDemoResident(ctx: MunicipalityContext, demo: ResidentDemoOptions, seed: string): Promise<string | null> {
  const certificateFile = join(demo.outDir, 'certificate.pem');
  const ca = readCertificateAuthority(demo.caDir);
  if (existsSync(certificateFile) && demoCertificateValid(certificateFile, ca.cert)) return null;
  const first = generateResidents(ctx.config.MUNICIPALITY_CODE, 1, seed)[0]!;
  const resident = await findResidentByAddressee(ctx, first.addresseeNumber);
  // Only a current resident can be enrolled (one the simulator moved away is left as it is).
  if (!resident || resident.status !== 'resident') return null;
  const { cert, key } = await issueResidentCertificate(ca, { kana: resident.kana, birthDate: resident.birthDate, sex: resident.sex as ResidentSex });
  const clerk = await ctx.models.Staff.findOne({ where: { username: 'clerk1' }, raw: true });
  const actor: Actor = { staffId: clerk?.id ?? 'system:seed', role: 'clerk', municipality: ctx.config.MUNICIPALITY_CODE };
  await enrolCertificate(ctx, { ca: ca.cert, isRevoked: () => false }, resident.addresseeNumber, cert, actor);
  mkdirSync(demo.outDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(demo.outDir, 'key.pem'), key!, { mode: 0o600 });
  writeFileSync(certificateFile, cert);
  writeFileSync(join(demo.outDir, 'resident.txt'), `${resident.name} (${resident.kana}), addressee number ${resident.addresseeNumber}\n`);
  return resident.addresseeNumber;
}

export interface SeedResult { staff: number; residents: number; records: number; demoResident: string | null }

export async function seedMunicipality(options: SeedOptions): Promise<SeedResult> {
  // Seeding needs the database only: no federation, no listening.
  const { CERT_DIR: _c, GATEWAY_URL: _g, ISSUER_URL: _i, ...env } = options.env;
  const config = municipalityConfigSchema.parse({ ...env, LOG_LEVEL: 'warn' });
  const municipality = await createMunicipality(config, createLogger({ name: `seed-${config.MUNICIPALITY_CODE}`, level: 'warn' }));
  const { ctx } = municipality;
  try {
    let staff = 0;
    if ((await ctx.models.Staff.count()) === 0) {
      for (const s of DEMO_STAFF) await createStaff(ctx, { ...s, password: DEMO_PASSWORD });
      staff = DEMO_STAFF.length;
    }
    let residents = 0;
    let records = 0;
    if ((await ctx.models.Resident.count()) === 0 && options.residents > 0) {
      const admin = await ctx.models.Staff.findOne({ where: { username: 'clerk1' }, raw: true });
      const actor: Actor = { staffId: admin?.id ?? 'system:seed', role: 'clerk', municipality: config.MUNICIPALITY_CODE };
      const generated = generateResidents(config.MUNICIPALITY_CODE, options.residents, options.seed ?? DEMO_SEED);
      const batch = options.batchSize ?? 100;
      for (let i = 0; i < generated.length; i += batch) {
        await ctx.sequelize.transaction(async (t) => {
          for (const made of await insertGeneratedResidents(ctx, t, generated.slice(i, i + batch), actor)) {
            residents += 1;
            records += made.recordIds.length;
          }
        });
      }
    }
    const demoResident = options.residentDemo ? await enrolDemoResident(ctx, options.residentDemo, options.seed ?? DEMO_SEED) : null;
    return { staff, residents, records, demoResident };
  } finally {
    await municipality.close();
  }
}

if (isMainModule(import.meta.url)) {
  if (process.argv.includes('--options-on-stdin')) {
    // A list of municipalities (scripts/federation.ts, seedMunicipalities), seeded one after another.
    let text = '';
    for await (const chunk of process.stdin) text += String(chunk);
    const results: SeedResult[] = [];
    for (const options of JSON.parse(text) as SeedOptions[]) results.push(await seedMunicipality(options));
    console.log(JSON.stringify(results));
  } else {
    const program = new Command()
      .requiredOption('--municipality <code>', 'municipality code')
      .option('--name <name>', 'municipality name', 'Municipality')
      .option('--data-dir <dir>', 'data folder', 'data')
      .option('--residents <n>', 'residents to generate', '100')
      .option('--seed <seed>', 'generator seed', DEMO_SEED)
      .parse();
    const o = program.opts<{ municipality: string; name: string; dataDir: string; residents: string; seed: string }>();
    const secrets = JSON.parse(readFileSync(join(o.dataDir, o.municipality, 'secrets.json'), 'utf8')) as Record<string, string>;
    const result = await seedMunicipality({
      env: {
        MUNICIPALITY_CODE: o.municipality, MUNICIPALITY_NAME: o.name, PORT: '0',
        DATABASE_PATH: join(o.dataDir, o.municipality, `${o.municipality}.sqlite`), DATA_KEY: secrets.DATA_KEY!, SESSION_SECRET: secrets.SESSION_SECRET!,
      },
      residents: Number(o.residents), seed: o.seed,
    });
    console.log(JSON.stringify(result));
  }
}
