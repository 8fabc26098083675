import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';
import { buildResident, createResidentVia, newKey, postRecord } from '../fixtures/factories.ts';
import { databaseContents, onPostgres, queryRows } from '../fixtures/database.ts';

describe('three municipalities, three databases', () => {
  const members: RunningMunicipality[] = [];
  let tawaramoto: RunningMunicipality;
  let akiota: RunningMunicipality;
  let toda: RunningMunicipality;

  before(async () => {
    tawaramoto = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto);
    akiota = await startMunicipality(DEMO_MUNICIPALITIES.akiota);
    toda = await startMunicipality(DEMO_MUNICIPALITIES.toda);
    members.push(tawaramoto, akiota, toda);
  });
  after(async () => {
    for (const m of members) {
      await m.stop();
      removeDir(m.dir);
    }
  });

  it('when each instance starts, then each has its own database file (on PostgreSQL: its own database and role)', async () => {
    if (onPostgres) {
      const urls = members.map((m) => new URL(m.ctx.config.DATABASE_URL!));
      expect(new Set(urls.map((u) => u.pathname)).size, 'databases').to.equal(3);
      expect(new Set(urls.map((u) => u.username)).size, 'roles').to.equal(3);
      for (const m of members) {
        const url = new URL(m.ctx.config.DATABASE_URL!);
        const [row] = await queryRows<{ db: string; role: string; residents: string | null }>(
          { DATABASE_URL: url.toString() }, `SELECT current_database() AS db, current_user AS role, to_regclass('residents')::text AS residents`,
        );
        expect(row, m.code).to.deep.equal({ db: url.pathname.slice(1), role: url.username, residents: 'residents' });
      }
      return;
    }
    const files = members.map((m) => m.ctx.config.DATABASE_PATH!);
    expect(new Set(files).size).to.equal(3);
    for (const f of files) expect(existsSync(f), f).to.equal(true);
  });

  it('when a resident and a record are written at Tawaramoto, then Akiota and Toda cannot see either', async () => {
    const clerk = await tawaramoto.tokenFor('clerk');
    const { resident } = await createResidentVia(tawaramoto, clerk, { name: '俵本 一人', kana: 'タワラモト カズト' });
    const record = await postRecord(tawaramoto, clerk, resident.addresseeNumber);
    expect(record.status).to.equal(201);
    expect((await api('GET', `${tawaramoto.url}/residents/${resident.addresseeNumber}/vaccinations`, { token: clerk })).body.records).to.have.length(1);

    for (const other of [akiota, toda]) {
      const token = await other.tokenFor('clerk');
      const search = await api('GET', `${other.url}/residents?kana=${encodeURIComponent('タワラモト')}`, { token });
      expect(search.status).to.equal(200);
      expect(search.body.total, other.code).to.equal(0);
      expect((await api('GET', `${other.url}/residents/${resident.addresseeNumber}`, { token })).status, other.code).to.equal(404);
      expect((await api('GET', `${other.url}/residents/${resident.addresseeNumber}/vaccinations`, { token })).status, other.code).to.equal(404);
      expect((await api('GET', `${other.url}/residents/${resident.addresseeNumber}/vaccinations/${record.body.recordId}`, { token })).status).to.equal(404);
      expect(await other.ctx.models.VaccinationRecord.count({ where: { recordId: record.body.recordId } })).to.equal(0);
      expect(await other.ctx.models.Resident.count({ where: { addresseeNumber: resident.addresseeNumber } })).to.equal(0);
    }
  });

  it('when a Tawaramoto session is presented at Akiota, then it is refused: staff of one municipality cannot read another', async () => {
    const clerk = await tawaramoto.tokenFor('clerk');
    expect((await api('GET', `${akiota.url}/residents`, { token: clerk })).status).to.equal(401);
    expect((await api('POST', `${toda.url}/residents`, { token: clerk, body: buildResident() })).status).to.equal(401);
  });

  it('when the same person is registered at two municipalities, then each holds its own resident, unknown to the other', async () => {
    const input = buildResident({ kana: 'リョウホウ ニイル' });
    const a = await api('POST', `${akiota.url}/residents`, { token: await akiota.tokenFor('clerk'), body: input, headers: { 'idempotency-key': newKey() } });
    const t = await api('POST', `${toda.url}/residents`, { token: await toda.tokenFor('clerk'), body: input, headers: { 'idempotency-key': newKey() } });
    expect(a.status).to.equal(201);
    expect(t.status, 'no shared duplicate check: the databases are separate').to.equal(201);
    expect((await api('GET', `${akiota.url}/residents/${t.body.addresseeNumber}`, { token: await akiota.tokenFor('clerk') })).status).to.equal(404);
  });

  it('when the database files are read byte by byte (on PostgreSQL: every row as text), then no plain My Number is in any of them, only ciphertext', async () => {
    const myNumbers: string[] = [];
    const addresseeNumbers = new Map<RunningMunicipality, string>();
    for (const m of members) {
      const clerk = await m.tokenFor('clerk');
      for (let i = 0; i < 3; i++) {
        const { input, resident } = await createResidentVia(m, clerk);
        myNumbers.push(input.myNumber);
        addresseeNumbers.set(m, resident.addresseeNumber);
        await postRecord(m, clerk, resident.addresseeNumber);
        await api('PATCH', `${m.url}/residents/${resident.addresseeNumber}`, { token: clerk, body: { address: '新しい住所 1-1', reason: '転居' }, headers: { 'idempotency-key': newKey() } });
        await api('GET', `${m.url}/residents/${resident.addresseeNumber}/immunizations`, { token: clerk });
      }
      const stored = await m.ctx.models.Resident.findAll({ raw: true });
      expect(stored.every((r) => r.myNumberEncrypted.startsWith('v1.'))).to.equal(true);
    }
    for (const m of members) {
      const bytes = await databaseContents(m.ctx.config);
      // Positive control: the scan does see what was just written (WAL included).
      expect(bytes.includes(Buffer.from(addresseeNumbers.get(m)!)), `scan reaches recent rows of ${m.code}`).to.equal(true);
      for (const myNumber of myNumbers) {
        expect(bytes.includes(Buffer.from(myNumber)), `${myNumber} in ${m.code}`).to.equal(false);
        expect(bytes.includes(Buffer.from(myNumber, 'utf16le')), `${myNumber} (UTF-16) in ${m.code}`).to.equal(false);
      }
    }
  });
});
