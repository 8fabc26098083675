/**
 * Seeding writes generated residents through the services' batch functions (scripts/seed.ts
 * `insertGeneratedResidents`). The batch must store what the one-by-one service calls store, log
 * what they log, and refuse what they refuse: the same generated residents go once through each
 * path, into two fresh databases under one data key, and the two are compared.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Op, type Transaction } from 'sequelize';
import { inTransaction } from '../../shared/platform/db.ts';
import { verifyChain } from '../../shared/access-log/verify.ts';
import type { MunicipalityContext } from '../../services/municipality/context.ts';
import { createResident, findResidentById, readMyNumber } from '../../services/municipality/residents/service.ts';
import { createRecord, issueTicket } from '../../services/municipality/vaccinations/service.ts';
import { generateResidents, type GeneratedResident } from '../../services/municipality/seed.ts';
import { insertGeneratedResidents, residentInput, ticketOptions } from '../../scripts/seed.ts';
import { startMunicipality, removeDir, testConfig, DEMO_MUNICIPALITIES, type RunningMunicipality } from '../fixtures/municipality.ts';
import { rowCounts } from '../fixtures/factories.ts';

const { code, name } = DEMO_MUNICIPALITIES.tawaramoto;
const actor = { staffId: 'seed-clerk', role: 'clerk' as const, municipality: code };

/** The one-by-one path: one service call per resident, record and ticket, as seeding wrote them before the batch. */
async function insertOneByOne(ctx: MunicipalityContext, t: Transaction, generated: GeneratedResident[]): Promise<void> {
  for (const g of generated) {
    const created = await createResident(ctx, t, residentInput(g), actor);
    const resident = (await findResidentById(ctx, created.id, t))!;
    for (const record of g.records) await createRecord(ctx, t, resident, record, actor);
    for (const ticket of g.tickets) await issueTicket(ctx, t, resident, { type: ticket.type, doseNumber: ticket.doseNumber }, actor, ticketOptions(ticket));
  }
}

/**
 * What a database holds of the seeded residents, without what differs by nature between two
 * runs: ids, timestamps, the sealed My Number's ciphertext (its plaintext is compared instead),
 * and the log's hash chain. A record id in the log is replaced by what the record is.
 */
async function stored(m: RunningMunicipality, afterSeq: number) {
  const { Resident, VaccinationRecord, VaccinationTicket, AccessLog } = m.ctx.models;
  const residents = await Resident.findAll({ raw: true, order: [['addresseeNumber', 'ASC']] });
  const addresseeOf = new Map(residents.map((r) => [r.id, r.addresseeNumber]));
  const records = await VaccinationRecord.findAll({ raw: true });
  const recordKey = new Map(records.map((r) => [r.recordId, `${addresseeOf.get(r.residentId)} ${r.vaccineCode} ${r.doseNumber} ${r.occurrenceDate}`]));
  const tickets = await VaccinationTicket.findAll({ raw: true, order: [['ticketNumber', 'ASC']] });
  const log = await AccessLog.findAll({ raw: true, where: { seq: { [Op.gt]: afterSeq } }, order: [['seq', 'ASC']] });
  return {
    residents: residents.map(({ id, myNumberEncrypted, createdAt: _c, updatedAt: _u, ...r }) => ({ ...r, myNumber: readMyNumber(m.ctx, { id, myNumberEncrypted }) })),
    records: records
      .map(({ id: _i, recordId, residentId, createdAt: _c, ...r }) => ({ ...r, resident: addresseeOf.get(residentId), record: recordKey.get(recordId) }))
      .sort((a, b) => a.record!.localeCompare(b.record!)),
    tickets: tickets.map(({ residentId, createdAt: _c, updatedAt: _u, ...r }) => ({ ...r, resident: addresseeOf.get(residentId) })),
    log: log.map(({ seq: _s, at: _a, prevHash: _p, hash: _h, createdAt: _c, recordIds, details, flags, ...e }) => ({
      ...e, details: JSON.parse(details), flags: JSON.parse(flags), records: (JSON.parse(recordIds) as string[]).map((id) => recordKey.get(id)),
    })),
  };
}

const head = async (m: RunningMunicipality): Promise<number> => (await m.ctx.models.AccessLog.max('seq') as number | null) ?? 0;

/** The error a write in its own transaction was refused with, as a client would see it; a write that succeeds is rolled back and fails the test. */
async function refusal(m: RunningMunicipality, write: (t: Transaction) => Promise<unknown>) {
  const succeeded = new Error('the write succeeded');
  try {
    await inTransaction(m.ctx.sequelize, async (t) => {
      await write(t);
      throw succeeded;
    });
  } catch (err) {
    if (err === succeeded) throw err;
    const { status, code: problem, message, extra } = err as { status: number; code: string; message: string; extra: unknown };
    return { status, code: problem, message, extra };
  }
  throw new Error('unreachable');
}

describe('seeding generated residents in batches', () => {
  let oneByOne: RunningMunicipality;
  let batched: RunningMunicipality;
  const generated = generateResidents(code, 30, 'seed-batch-test');
  let seeded: { expected: Awaited<ReturnType<typeof stored>>; actual: Awaited<ReturnType<typeof stored>> };

  before(async () => {
    // One data key for both, so the My Number index (a keyed hash) compares too.
    const dataKey = randomBytes(32).toString('hex');
    const start = async () => {
      const dir = mkdtempSync(join(tmpdir(), `hikitsugi-seeding-${code}-`));
      return startMunicipality({ code, name }, { dir, config: testConfig(code, name, dir, { DATA_KEY: dataKey }) });
    };
    oneByOne = await start();
    batched = await start();
    const [fromA, fromB] = [await head(oneByOne), await head(batched)];
    await inTransaction(oneByOne.ctx.sequelize, (t) => insertOneByOne(oneByOne.ctx, t, generated));
    // Batches of 12: two full ones and a partial one, each in its own transaction as seedMunicipality runs them.
    for (let i = 0; i < generated.length; i += 12) {
      await inTransaction(batched.ctx.sequelize, (t) => insertGeneratedResidents(batched.ctx, t, generated.slice(i, i + 12), actor));
    }
    seeded = { expected: await stored(oneByOne, fromA), actual: await stored(batched, fromB) };
  });
  after(async () => {
    for (const m of [oneByOne, batched]) {
      await m.stop();
      removeDir(m.dir);
    }
  });

  it('when the same residents are seeded one by one and in batches, then the stored rows and the access-log entries are equal and the chain verifies', async () => {
    const { expected, actual } = seeded;
    const records = generated.reduce((n, g) => n + g.records.length, 0);
    const tickets = generated.reduce((n, g) => n + g.tickets.length, 0);
    expect(expected.residents).to.have.length(generated.length);
    expect(expected.records).to.have.length(records);
    expect(expected.tickets).to.have.length(tickets).and.length.greaterThan(0);
    expect(expected.log).to.have.length(generated.length + records + tickets);
    expect(actual.residents).to.deep.equal(expected.residents);
    expect(actual.records).to.deep.equal(expected.records);
    expect(actual.tickets).to.deep.equal(expected.tickets);
    expect(actual.log).to.deep.equal(expected.log);

    const report = await verifyChain(batched.ctx.sequelize, { member: code });
    expect(report.ok, JSON.stringify(report.broken)).to.equal(true);
    expect(report.entries).to.equal(await head(batched));

    // The My Number is sealed at rest: no row of any table the batch wrote holds it in plain text.
    const { Resident, VaccinationRecord, VaccinationTicket, AccessLog } = batched.ctx.models;
    const text = JSON.stringify(await Promise.all([Resident, VaccinationRecord, VaccinationTicket, AccessLog].map((model) => (model as typeof Resident).findAll({ raw: true }))));
    for (const g of generated) expect(text).not.to.include(g.myNumber);
  });

  describe('when a batch holds one resident the rules refuse, then it fails with the one-by-one error and writes nothing', () => {
    const issued = generated.flatMap((g) => g.tickets);
    const cases: [string, (batch: GeneratedResident[]) => void][] = [
      ['a My Number with a wrong check digit', (b) => { b[3]!.myNumber = b[3]!.myNumber.slice(0, 11) + String((Number(b[3]!.myNumber[11]) + 1) % 10); }],
      ['the My Number of a current resident', (b) => { b[3]!.myNumber = generated[7]!.myNumber; }],
      ['a My Number twice in the batch', (b) => { b[3]!.myNumber = b[1]!.myNumber; }],
      ['kana in hiragana', (b) => { b[3]!.kana = 'たなか はなこ'; }],
      ['an addressee number with a wrong check digit', (b) => { b[3]!.addresseeNumber = b[3]!.addresseeNumber.slice(0, 9) + String((Number(b[3]!.addresseeNumber[9]) + 1) % 10); }],
      ['an addressee number already in use', (b) => { b[3]!.addresseeNumber = generated[5]!.addresseeNumber; }],
      ['an addressee number twice in the batch', (b) => { b[3]!.addresseeNumber = b[2]!.addresseeNumber; }],
      ['a lot number not of the product’s format', (b) => { b[3]!.records[2]!.lotNumber = 'NOT A LOT'; }],
      ['a dose before the birth date', (b) => { b[3]!.records[0]!.occurrenceDate = '1900-01-01'; }],
      ['a dose number twice in a series', (b) => { b[3]!.records[4]!.doseNumber = b[3]!.records[1]!.doseNumber; }],
      ['a dose on the day of the dose it follows', (b) => { b[3]!.records[4]!.occurrenceDate = b[3]!.records[1]!.occurrenceDate; }],
      ['a vaccine code not in the catalogue', (b) => { b[3]!.records[4]!.vaccineCode = 'no-such-vaccine'; }],
      ['a ticket number already issued', (b) => { b[3]!.tickets = [{ ...issued[0]! }]; }],
      ['a ticket number twice in the batch', (b) => { b[3]!.tickets = [{ ...b[0]!.tickets[0]! }]; }],
    ];
    for (const [what, spoil] of cases) {
      it(`${what}`, async () => {
        const batch = structuredClone(generateResidents(code, 6, 'seed-batch-refusals'));
        expect(batch[0]!.tickets).to.have.length(1);
        // Resident 3's fifth record is dose 2 of the series of its second, given later.
        const [first, second] = [batch[3]!.records[1]!, batch[3]!.records[4]!];
        expect([first.vaccineCode, first.doseNumber, second.vaccineCode, second.doseNumber]).to.deep.equal(['rota-rotarix', 1, 'rota-rotarix', 2]);
        spoil(batch);
        const before = [await rowCounts(oneByOne), await rowCounts(batched)];
        const single = await refusal(oneByOne, (t) => insertOneByOne(oneByOne.ctx, t, batch));
        const batchError = await refusal(batched, (t) => insertGeneratedResidents(batched.ctx, t, batch, actor));
        expect(single.status).to.be.oneOf([400, 409, 422]);
        expect(batchError).to.deep.equal(single);
        expect([await rowCounts(oneByOne), await rowCounts(batched)]).to.deep.equal(before);
      });
    }
  });
});
