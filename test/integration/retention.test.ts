/**
 * Retention by the national rule (docs/DESIGN.md §4.13) on a real municipality instance: the
 * records of a resident dead longer than the period, and then their personal data, leave the
 * database in one transaction per resident, with one tombstone in the access log, which still
 * verifies; nothing else is touched, a second run removes nothing, and a removal whose tombstone
 * cannot be written does not happen.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { QueryTypes, type Sequelize } from 'sequelize';
import { inTransaction } from '../../shared/platform/db.ts';
import { todayInJapan } from '../../shared/platform/dates.ts';
import { createResident, findResidentByAddressee, setResidentStatus } from '../../services/municipality/residents/service.ts';
import { importRecords } from '../../services/municipality/vaccinations/service.ts';
import { runRetention } from '../../services/municipality/retention/service.ts';
import { breakAccessLog, databaseContents, repairAccessLog } from '../fixtures/database.ts';
import { api } from '../fixtures/http.ts';
import { buildResident, createResidentVia, postRecord } from '../fixtures/factories.ts';
import { DEMO_MUNICIPALITIES, removeDir, startMunicipality, testConfig, type RunningMunicipality } from '../fixtures/municipality.ts';

const actor = { staffId: 'test-clerk', role: 'clerk' as const, municipality: DEMO_MUNICIPALITIES.tawaramoto.code };

/** The date `years` years before today in Japan (29 February falls back to the 28th). */
function yearsAgo(years: number): string {
  const [y, m, d] = todayInJapan().split('-');
  return `${Number(y) - years}-${m}-${m === '02' && d === '29' ? '28' : d}`;
}

/** Tables that hold a resident's rows by `residentId`, and how the test counts them. */
const BY_RESIDENT = ['resident_history', 'vaccination_records', 'vaccination_tickets', 'consents', 'resident_notices', 'correction_notices', 'move_ins', 'query_subjects', 'bulk_job_subjects', 'exception_requests', 'registration_attempts', 'correction_outbox'];

const count = async (db: Sequelize, sql: string, bind: unknown[] = []): Promise<number> =>
  Number((await db.query<{ n: number }>(sql, { type: QueryTypes.SELECT, bind }))[0]!.n);

/** Rows about one resident in every table that holds them. */
async function rowsOf(m: RunningMunicipality, person: Person): Promise<Record<string, number>> {
  const db = m.ctx.sequelize;
  const rows: Record<string, number> = {
    residents: await count(db, 'SELECT count(*) AS n FROM residents WHERE id = $1', [person.id]),
    idempotency_keys: await count(db, 'SELECT count(*) AS n FROM idempotency_keys WHERE subject = $1', [person.addresseeNumber]),
    ticket_reviews: await count(db, 'SELECT count(*) AS n FROM ticket_reviews WHERE "residentId" = $1 OR "ticketHolderId" = $1', [person.id]),
  };
  for (const table of BY_RESIDENT) rows[table] = await count(db, `SELECT count(*) AS n FROM ${table} WHERE "residentId" = $1`, [person.id]);
  return rows;
}

/** An Idempotency-Key of letters only (a random run of digits could pass for a My Number and be refused). */
const letterKey = () => `retention-${Array.from({ length: 16 }, () => 'abcdefghijklmnopqrstuvwxyz'[randomInt(26)]).join('')}`;

const KATAKANA = 'アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワ';
const katakana = (n: number) => Array.from({ length: n }, () => KATAKANA[randomInt(KATAKANA.length)]).join('');

interface Person {
  id: string;
  addresseeNumber: string;
  name: string;
  kana: string;
  address: string;
  myNumber: string;
  myNumberIndex: string;
}

/**
 * A resident with a personal name, two local doses (one corrected: two versions), an imported
 * copy, a consent and a notice; deceased on `deceasedOn` unless null.
 */
async function residentWithData(m: RunningMunicipality, clerk: string, deceasedOn: string | null): Promise<Person> {
  const tag = randomBytes(4).toString('hex');
  const { input, resident } = await createResidentVia(m, clerk, {
    name: `退蔵 ${tag}`, kana: `タイゾウ\u3000${katakana(6)}`, address: `奈良県磯城郡田原本町大字保存 ${tag}番地`,
  });
  const a = resident.addresseeNumber;
  const first = await postRecord(m, clerk, a, { occurrenceDate: '2021-06-01', doseNumber: 1 }, letterKey());
  expect(first.status, JSON.stringify(first.body)).to.equal(201);
  expect((await postRecord(m, clerk, a, { occurrenceDate: '2021-07-01', doseNumber: 2 }, letterKey())).status).to.equal(201);
  const corrected = await api('POST', `${m.url}/residents/${a}/vaccinations/${first.body.recordId}/corrections`, {
    token: clerk, body: { lotNumber: 'FF3621', reason: '接種券の控えと照合して訂正' }, headers: { 'idempotency-key': letterKey() },
  });
  expect(corrected.status, JSON.stringify(corrected.body)).to.be.oneOf([200, 201]);
  const row = (await findResidentByAddressee(m.ctx, a))!;
  await inTransaction(m.ctx.sequelize, (t) => importRecords(m.ctx, t, row.id, { sourceMunicipality: '343692', importRequestId: `req-${tag}`, retrievedAt: '2024-04-01T00:00:00.000Z' }, [{
    sourceRecordId: randomUUID(), sourceVersion: 1, occurrenceDate: '2019-10-01', vaccineCode: 'covid19-comirnaty', lotNumber: null, doseNumber: 1, place: null,
    status: 'completed', reason: null, originMunicipality: null,
  }]));
  await m.ctx.models.Consent.create({
    id: randomUUID(), residentId: row.id, scope: 'vaccination-history', purpose: 'next-dose-scheduling', sources: '["343692"]',
    givenAt: '2024-04-01T00:00:00.000Z', expiresAt: '2025-03-31T00:00:00.000Z', method: 'written', recordedBy: 'test-clerk', residentSignature: null,
  });
  await m.ctx.models.ResidentNotice.create({
    id: randomUUID(), accessSeq: 1_000_000 + randomInt(1_000_000), residentId: row.id, kind: 'records-imported', otherMunicipality: '343692',
    purpose: 'next-dose-scheduling', legalBasis: 'consent', outcome: 'allowed', requestId: `req-${tag}`, recordCount: 1, occurredAt: '2024-04-01T00:00:00.000Z',
  });
  if (deceasedOn) {
    await inTransaction(m.ctx.sequelize, (t) => setResidentStatus(m.ctx, t, row.id, 'deceased', { reason: '死亡届', deceasedOn }, actor));
  }
  return { id: row.id, addresseeNumber: a, name: input.name, kana: input.kana, address: input.address, myNumber: input.myNumber, myNumberIndex: row.myNumberIndex };
}

/** Where a person's data would show in the raw database (file bytes on SQLite, every row as text on PostgreSQL). */
async function tracesOf(m: RunningMunicipality, p: Person): Promise<string[]> {
  const contents = (await databaseContents(m.ctx.config)).toString('utf8');
  return (['name', 'kana', 'address', 'myNumber', 'myNumberIndex'] as const).filter((k) => contents.includes(p[k]));
}


describe('retention by the rule: records and personal data leave after the period, with a tombstone', function () {
  this.timeout(60_000);
  let m: RunningMunicipality;
  let clerk: string;
  let officer: string;
  let past: Person;
  let recent: Person;
  let living: Person;

  before(async () => {
    m = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto);
    clerk = await m.tokenFor('clerk');
    officer = await m.tokenFor('privacy_officer');
  });
  after(async () => {
    await repairAccessLog(m.ctx.sequelize);
    await m.stop();
    removeDir(m.dir);
  });

  it('when the date of death is in the future or not a date, then the status change is refused naming deceasedOn', async () => {
    const { resident } = await createResidentVia(m, clerk);
    const row = (await findResidentByAddressee(m.ctx, resident.addresseeNumber))!;
    for (const deceasedOn of ['2999-01-01', '2023-02-30', 'yesterday']) {
      const refused = await inTransaction(m.ctx.sequelize, (t) => setResidentStatus(m.ctx, t, row.id, 'deceased', { deceasedOn }, actor)).then(() => null, (e: { status: number; extra?: { field?: string } }) => e);
      expect(refused?.status, deceasedOn).to.equal(400);
      expect(refused?.extra?.field).to.equal('deceasedOn');
    }
    expect((await findResidentByAddressee(m.ctx, resident.addresseeNumber))!.status).to.equal('resident');
  });

  it('when a resident died six years ago, then their records (every version, local and imported) and personal data go in every table; one who died two years ago and a living one keep everything', async () => {
    past = await residentWithData(m, clerk, yearsAgo(6));
    recent = await residentWithData(m, clerk, yearsAgo(2));
    living = await residentWithData(m, clerk, null);
    const before = { past: await rowsOf(m, past), recent: await rowsOf(m, recent), living: await rowsOf(m, living) };
    expect(before.past).to.include({ residents: 1, vaccination_records: 4, consents: 1, resident_notices: 1, resident_history: 1 });
    expect(before.past.idempotency_keys).to.be.at.least(2);
    expect(await tracesOf(m, past)).to.include.members(['name', 'kana', 'address', 'myNumberIndex']);

    // The append-only notices refuse a DELETE from anyone but the retention path.
    const plain = await m.ctx.sequelize.query('DELETE FROM resident_notices WHERE "residentId" = $1', { bind: [past.id] }).then(() => 'accepted', (e: Error & { parent?: Error }) => e.parent?.message ?? e.message);
    expect(plain).to.match(/append-only/);

    const run = await api('POST', `${m.url}/retention/run`, { token: officer });
    expect(run.status, JSON.stringify(run.body)).to.equal(200);
    expect(run.body.removals.map((r: { addresseeNumber: string }) => r.addresseeNumber)).to.deep.equal([past.addresseeNumber]);
    expect(run.body.failed).to.deep.equal([]);
    const removal = run.body.removals[0];
    expect(removal.resident).to.equal('removed');
    expect(removal.tables).to.include({ residents: 1, vaccination_records: 4, consents: 1, resident_notices: 1, resident_history: 1 });

    const after = await rowsOf(m, past);
    expect(Object.entries(after).filter(([, n]) => n > 0), 'rows left about the removed resident').to.deep.equal([]);
    expect(await tracesOf(m, past), 'the removed resident in the raw database').to.deep.equal([]);
    expect(await rowsOf(m, recent)).to.deep.equal(before.recent);
    expect(await rowsOf(m, living)).to.deep.equal(before.living);
    expect(await tracesOf(m, recent)).to.include.members(['name', 'kana', 'address', 'myNumberIndex']);
    expect((await api('GET', `${m.url}/residents/${past.addresseeNumber}`, { token: clerk })).status).to.equal(404);
    expect((await api('GET', `${m.url}/residents/${recent.addresseeNumber}`, { token: clerk })).body.status).to.equal('deceased');

    // The removed addressee number is retired: never given to a new resident.
    const reuse = await inTransaction(m.ctx.sequelize, (t) => createResident(m.ctx, t, { ...buildResident(), addresseeNumber: past.addresseeNumber }, actor)).then(() => null, (e: { code: string }) => e.code);
    expect(reuse).to.equal('duplicate-addressee-number');
  });

  it('when the job has run, then the log verifies and holds exactly one tombstone per removed resident, with no personal data', async () => {
    const verify = await api('POST', `${m.url}/audit/verify`, { token: officer });
    expect(verify.status, JSON.stringify(verify.body)).to.equal(200);
    expect(verify.body.ok, JSON.stringify(verify.body)).to.equal(true);
    const entries = await api('GET', `${m.url}/audit/entries?action=retention.remove&limit=200`, { token: officer });
    expect(entries.status).to.equal(200);
    expect(entries.body.entries.map((e: { subject: string }) => e.subject)).to.deep.equal([past.addresseeNumber]);
    const tombstone = entries.body.entries[0];
    expect(tombstone).to.include({ actorType: 'system', outcome: 'allowed' });
    expect(tombstone.details.rules.map((r: { setting: string; yearsAfterDeath: number }) => [r.setting, r.yearsAfterDeath])).to.deep.equal([
      ['RETENTION_VACCINATION_YEARS_AFTER_DEATH', 5], ['RETENTION_IMPORTED_YEARS_AFTER_DEATH', 5],
    ]);
    expect(tombstone.details.records).to.deep.equal({ local: 3, imported: 1 });
    const text = JSON.stringify(tombstone);
    for (const value of [past.name, past.kana, past.address, past.myNumber, past.myNumberIndex, past.id, '1985-07-14']) expect(text).to.not.include(value);
  });

  it('when the privacy officer looks, then the removal is in the console and in GET /retention/removals; clerks and operators get 403, no token 401', async () => {
    const removals = await api('GET', `${m.url}/retention/removals`, { token: officer });
    expect(removals.status, JSON.stringify(removals.body)).to.equal(200);
    expect(removals.body.removals.map((r: { addresseeNumber: string }) => r.addresseeNumber)).to.deep.equal([past.addresseeNumber]);
    expect(removals.body.removals[0].rules[0]).to.include({ kind: 'local', yearsAfterDeath: 5 });
    const labels = await api('GET', `${m.url}/console/labels.json`);
    // The console names the tombstone's action in Japanese (its label table, what the console page shows).
    expect(labels.status).to.equal(200);
    expect(labels.body.actions['retention.remove']).to.equal('保存期間満了による削除');
    for (const role of ['clerk', 'operator'] as const) {
      const token = await m.tokenFor(role);
      for (const [method, path] of [['GET', '/retention/removals'], ['POST', '/retention/run']] as const) {
        const refused = await api(method, `${m.url}${path}`, { token });
        expect(refused.status, `${role} ${method} ${path}`).to.equal(403);
        expect(refused.body.type).to.match(/forbidden$/);
        expect(String(refused.body.detail ?? refused.body.title)).to.match(/\S/);
      }
    }
    expect((await api('GET', `${m.url}/retention/removals`)).status).to.equal(401);
    expect((await api('POST', `${m.url}/retention/run`)).status).to.equal(401);
    const bad = await api('GET', `${m.url}/retention/removals?limit=0`, { token: officer });
    expect(bad.status).to.equal(400);
    expect(bad.body.field).to.match(/limit/);
  });

  it('when the job runs again, then it removes nothing and writes no tombstone', async () => {
    const tombstones = await count(m.ctx.sequelize, `SELECT count(*) AS n FROM access_log WHERE action = 'retention.remove'`);
    const again = await runRetention(m.ctx);
    expect(again.removals).to.deep.equal([]);
    expect(again.failed).to.deep.equal([]);
    expect(await count(m.ctx.sequelize, `SELECT count(*) AS n FROM access_log WHERE action = 'retention.remove'`)).to.equal(tombstones);
    expect(await rowsOf(m, recent)).to.include({ residents: 1, vaccination_records: 4 });
  });

  it('when the tombstone cannot be written, then nothing of the resident is removed; once the log is repaired, the removal happens', async () => {
    const doomed = await residentWithData(m, clerk, yearsAgo(7));
    const before = await rowsOf(m, doomed);
    const log = await count(m.ctx.sequelize, 'SELECT count(*) AS n FROM access_log');
    await breakAccessLog(m.ctx.sequelize);
    try {
      const report = await runRetention(m.ctx);
      expect(report.removals).to.deep.equal([]);
      expect(report.failed).to.deep.equal([{ addresseeNumber: doomed.addresseeNumber, code: 'access-log-unavailable' }]);
      const refused = await api('POST', `${m.url}/retention/run`, { token: officer });
      expect(refused.status).to.equal(503);
      expect(refused.body.type).to.match(/access-log-unavailable$/);
    } finally {
      await repairAccessLog(m.ctx.sequelize);
    }
    expect(await rowsOf(m, doomed)).to.deep.equal(before);
    expect(await count(m.ctx.sequelize, 'SELECT count(*) AS n FROM retention_permits')).to.equal(0);
    expect(await count(m.ctx.sequelize, 'SELECT count(*) AS n FROM access_log')).to.equal(log);

    const done = await runRetention(m.ctx);
    expect(done.removals.map((r) => r.addresseeNumber)).to.deep.equal([doomed.addresseeNumber]);
    expect(Object.values(await rowsOf(m, doomed)).every((n) => n === 0)).to.equal(true);
    expect((await api('POST', `${m.url}/audit/verify`, { token: officer })).body.ok).to.equal(true);
  });
});

describe('retention by the rule: imported copies with their own configured period', function () {
  this.timeout(60_000);
  let m: RunningMunicipality;
  let clerk: string;
  let officer: string;

  before(async () => {
    const which = DEMO_MUNICIPALITIES.toda;
    const dir = mkdtempSync(join(tmpdir(), `hikitsugi-${which.code}-`));
    m = await startMunicipality(which, { dir, config: testConfig(which.code, which.name, dir, { RETENTION_IMPORTED_YEARS_AFTER_DEATH: '10' }) });
    clerk = await m.tokenFor('clerk');
    officer = await m.tokenFor('privacy_officer');
  });
  after(async () => {
    await m.stop();
    removeDir(m.dir);
  });

  it('when imported copies are kept ten years and local records five, then six years after the death only the local records go, the copies and the person stay; eleven years after, everything goes', async () => {
    const six = await residentWithData(m, clerk, yearsAgo(6));
    const eleven = await residentWithData(m, clerk, yearsAgo(11));
    const run = await api('POST', `${m.url}/retention/run`, { token: officer });
    expect(run.status, JSON.stringify(run.body)).to.equal(200);
    const byNumber = new Map(run.body.removals.map((r: { addresseeNumber: string }) => [r.addresseeNumber, r]));
    expect(byNumber.get(six.addresseeNumber)).to.deep.include({ resident: 'kept', tables: { vaccination_records: 3 } });
    expect((byNumber.get(six.addresseeNumber) as { rules: { kind: string }[] }).rules.map((r) => r.kind)).to.deep.equal(['local']);
    expect(byNumber.get(eleven.addresseeNumber)).to.deep.include({ resident: 'removed' });

    const kept = await rowsOf(m, six);
    expect(kept).to.include({ residents: 1, vaccination_records: 1, consents: 1 });
    const copies = await m.ctx.models.VaccinationRecord.findAll({ where: { residentId: six.id }, raw: true });
    expect(copies.map((c) => c.sourceMunicipality)).to.deep.equal(['343692']);
    expect(Object.values(await rowsOf(m, eleven)).every((n) => n === 0)).to.equal(true);

    const again = await api('POST', `${m.url}/retention/run`, { token: officer });
    expect(again.body.removals).to.deep.equal([]);
    expect((await api('POST', `${m.url}/audit/verify`, { token: officer })).body.ok).to.equal(true);
  });

  it('when an imported copy belongs to a resident dead past the default period, then the same rule removes it (default configuration)', async () => {
    const which = DEMO_MUNICIPALITIES.akiota;
    const other = await startMunicipality(which);
    try {
      const otherClerk = await other.tokenFor('clerk');
      const person = await residentWithData(other, otherClerk, yearsAgo(6));
      const report = await runRetention(other.ctx);
      expect(report.removals).to.have.length(1);
      expect(report.removals[0]!.rules.map((r) => r.kind)).to.deep.equal(['local', 'imported']);
      expect(await other.ctx.models.VaccinationRecord.count({ where: { residentId: person.id } })).to.equal(0);
    } finally {
      await other.stop();
      removeDir(other.dir);
    }
  });
});
