/**
 * Writes the benchmark's population into each municipality's own database before the members
 * start: at the source, the person (moved out, with their records); at the receiver, the person
 * moved in, with a consent naming the source. Rows go in with bulkCreate through the service's
 * own models (one transaction per municipality: a transaction per row costs ~40× here), each
 * resident and record with its access-log entry. Every resident starts with codeStatus
 * `pending`, so the running members register the codes through the real issuer afterwards.
 *
 * Run as a worker: `node --import tsx scripts/bench/seed.ts` with a SeedJob as JSON on stdin
 * (stdin, not a file: the job carries the members' data keys).
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CreationAttributes, Transaction } from 'sequelize';
import { appendAccessBatch, type AccessInput } from '../../shared/access-log/chain.ts';
import { encryptField } from '../../shared/crypto.ts';
import { createLogger } from '../../shared/platform/log.ts';
import { CONSENT_SCOPE } from '../../shared/federation/protocol.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import { createMunicipality } from '../../services/municipality/app.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { municipalityConfigSchema } from '../../services/municipality/config.ts';
import type { MunicipalityContext } from '../../services/municipality/context.ts';
import { createResidentSchema } from '../../services/municipality/residents/schemas.ts';
import { myNumberIndex } from '../../services/municipality/residents/service.ts';
import type { ResidentRow } from '../../services/municipality/residents/model.ts';
import type { VaccinationRecordRow } from '../../services/municipality/vaccinations/model.ts';
import type { ConsentRow } from '../../services/municipality/consents/model.ts';
import type { MoveInRow } from '../../services/municipality/moves/model.ts';
import { buildDataset, type Transfer } from './dataset.ts';
import { isMainModule } from '../../shared/platform/main-module.ts';

/** The bench's staff: a clerk asks, an operator watches the registration outbox. */
export const BENCH_STAFF = [
  { username: 'clerk1', displayName: 'Bench Clerk', role: 'clerk' },
  { username: 'operator1', displayName: 'Bench Operator', role: 'operator' },
] as const;
export const BENCH_PURPOSE = 'next-dose-scheduling';
/** The synthetic staff's password (benchmark data folders only). */
export const BENCH_PASSWORD = 'hikitsugi-bench-2026';
const SEED_ACTOR = 'system:bench-seed';
/** Rows per INSERT: stays under SQLite's bound-parameter limit for the widest table. */
const CHUNK = 400;

export interface SeedJob {
  /** The dataset is rebuilt from these, identically, in every worker. */
  municipalities: number;
  subjects: number;
  seed: string;
  /** Environment of each municipality this worker seeds (as its process gets it). */
  envs: Record<string, string>[];
  /** One scrypt hash of the bench password, made once per run (synthetic staff only). */
  passwordHash: string;
  /** ISO time the moves and consents are dated at. */
  now: string;
}

export interface SeedResult {
  municipalities: number;
  residents: number;
  records: number;
  consents: number;
}

async function bulk<T extends object>(model: { bulkCreate(rows: T[], options: { transaction: Transaction }): Promise<unknown> }, rows: T[], t: Transaction) {
  for (let i = 0; i < rows.length; i += CHUNK) await model.bulkCreate(rows.slice(i, i + CHUNK), { transaction: t });
}

/** Fields exactly as the resident service would store them (same schema, same normalisation). */
function residentFields(ctx: MunicipalityContext, id: string, p: Transfer['person'], address: string) {
  const data = parseInput(createResidentSchema, { name: p.name, kana: p.kana, birthDate: p.birthDate, sex: p.sex, address, myNumber: p.myNumber });
  return {
    id, name: data.name, kana: data.kana, birthDate: data.birthDate, sex: data.sex, address: data.address,
    myNumberEncrypted: encryptField(ctx.config.DATA_KEY, data.myNumber, id), myNumberIndex: myNumberIndex(ctx, data.myNumber),
    codeStatus: 'pending' as const, code: null,
  };
}

async function seedOne(ctx: MunicipalityContext, transfers: Transfer[], passwordHash: string, now: string): Promise<Omit<SeedResult, 'municipalities'>> {
  const self = ctx.config.MUNICIPALITY_CODE;
  const m = ctx.models;
  const outgoing = transfers.filter((t) => t.source === self);
  const incoming = transfers.filter((t) => t.receiver === self);
  const residents: CreationAttributes<ResidentRow>[] = [];
  const records: CreationAttributes<VaccinationRecordRow>[] = [];
  const consents: CreationAttributes<ConsentRow>[] = [];
  const moveIns: CreationAttributes<MoveInRow>[] = [];
  const log: AccessInput[] = [];
  const entry = (action: string, subject: string, extra: Partial<AccessInput> = {}): AccessInput =>
    ({ actorType: 'system', actorId: SEED_ACTOR, actingMunicipality: self, action, subject, outcome: 'allowed', requestId: 'bench-seed', ...extra });
  const moveOutDate = now.slice(0, 10);

  for (const t of outgoing) {
    const id = randomUUID();
    residents.push({
      ...residentFields(ctx, id, t.person, `自治体${self}本町1番地`), addresseeNumber: t.person.addresseeNumber,
      status: 'moved-out' as const, movedOutAt: now, moveOutDestination: t.receiver,
    });
    const recordIds: string[] = [];
    for (const r of t.person.records) {
      const recordId = randomUUID();
      recordIds.push(recordId);
      records.push({
        id: randomUUID(), recordId, version: 1, residentId: id, occurrenceDate: r.occurrenceDate, vaccineCode: r.vaccineCode,
        lotNumber: r.lotNumber, doseNumber: r.doseNumber, ticketNumber: null, place: r.place, status: 'completed' as const,
        supersedes: null, current: true, reason: null, actorId: SEED_ACTOR, sourceMunicipality: null, sourceRecordId: null,
        sourceVersion: null, importRequestId: null, retrievedAt: null,
      });
    }
    log.push(entry(Actions.RESIDENT_CREATE, t.person.addresseeNumber));
    if (recordIds.length) log.push(entry(Actions.RECORD_CREATE, t.person.addresseeNumber, { recordIds }));
    log.push(entry(Actions.MOVE_OUT, t.person.addresseeNumber, { details: { destination: t.receiver, moveOutDate } }));
  }
  const expiresAt = new Date(Date.parse(now) + 300 * 86_400_000).toISOString();
  for (const t of incoming) {
    const id = randomUUID();
    residents.push({
      ...residentFields(ctx, id, t.person, t.receiverAddress), addresseeNumber: t.receiverAddressee,
      status: 'resident' as const, previousMunicipality: t.source, movedInAt: now,
    });
    moveIns.push({ id: randomUUID(), residentId: id, fromMunicipality: t.source, certificateJti: randomUUID(), moveOutDate, movedInAt: now, recordedBy: SEED_ACTOR });
    const consentId = randomUUID();
    consents.push({
      id: consentId, residentId: id, scope: CONSENT_SCOPE, purpose: BENCH_PURPOSE, sources: JSON.stringify([t.source]),
      givenAt: now, expiresAt, method: 'written', recordedBy: SEED_ACTOR, residentSignature: null,
    });
    log.push(entry(Actions.RESIDENT_CREATE, t.receiverAddressee));
    log.push(entry(Actions.MOVE_IN, t.receiverAddressee, { details: { from: t.source, moveOutDate } }));
    log.push(entry(Actions.CONSENT_RECORD, t.receiverAddressee, {
      purpose: BENCH_PURPOSE, legalBasis: 'consent', consentId, details: { sources: [t.source], expiresAt },
    }));
  }

  await ctx.sequelize.transaction(async (tx) => {
    if ((await m.Staff.count({ transaction: tx })) === 0) {
      await m.Staff.bulkCreate(BENCH_STAFF.map((s) => ({ id: randomUUID(), ...s, passwordHash })), { transaction: tx });
    }
    await bulk(m.Resident, residents, tx);
    await bulk(m.VaccinationRecord, records, tx);
    await bulk(m.MoveIn, moveIns, tx);
    await bulk(m.Consent, consents, tx);
    for (let i = 0; i < log.length; i += CHUNK) await appendAccessBatch(m.AccessLog, tx, log.slice(i, i + CHUNK));
  });
  return { residents: residents.length, records: records.length, consents: consents.length };
}

/** Seeds every municipality of the job, one after another, each in its own database. */
export async function runSeedJob(job: SeedJob): Promise<SeedResult> {
  const { transfers } = buildDataset(job.municipalities, job.subjects, job.seed);
  const total: SeedResult = { municipalities: 0, residents: 0, records: 0, consents: 0 };
  const logger = createLogger({ name: 'bench-seed', level: 'warn' });
  for (const env of job.envs) {
    // The database only: no federation, no listening (as scripts/seed.ts does).
    const { CERT_DIR: _c, GATEWAY_URL: _g, ISSUER_URL: _i, ...local } = env;
    const config = municipalityConfigSchema.parse({ ...local, LOG_LEVEL: 'warn' });
    const municipality = await createMunicipality(config, logger);
    try {
      const mine = transfers.filter((t) => t.source === config.MUNICIPALITY_CODE || t.receiver === config.MUNICIPALITY_CODE);
      const done = await seedOne(municipality.ctx, mine, job.passwordHash, job.now);
      total.municipalities += 1;
      total.residents += done.residents;
      total.records += done.records;
      total.consents += done.consents;
    } finally {
      await municipality.close();
    }
  }
  return total;
}

/** Seeds in `workers` child processes at once (schema creation dominates with many small members). */
export async function seedInWorkers(job: SeedJob, workers: number): Promise<SeedResult> {
  const parts = Array.from({ length: Math.max(1, Math.min(workers, job.envs.length)) }, (_, w) => job.envs.filter((_e, i) => i % workers === w));
  const results = await Promise.all(parts.map((envs) => new Promise<SeedResult>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { err += c.toString('utf8'); });
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as SeedResult);
      else reject(new Error(`seed worker failed (${code}): ${err.slice(-2000)}`));
    });
    child.stdin.end(JSON.stringify({ ...job, envs }));
  })));
  return results.reduce((a, r) => ({
    municipalities: a.municipalities + r.municipalities, residents: a.residents + r.residents,
    records: a.records + r.records, consents: a.consents + r.consents,
  }), { municipalities: 0, residents: 0, records: 0, consents: 0 });
}

if (isMainModule(import.meta.url)) {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const result = await runSeedJob(JSON.parse(Buffer.concat(chunks).toString('utf8')) as SeedJob);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
