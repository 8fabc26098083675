import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { completeMunicipalityCode } from '../../shared/identifiers.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api, type ApiResponse } from '../fixtures/http.ts';
import { createResidentVia, newKey, postRecord, rowCounts } from '../fixtures/factories.ts';

describe('registration from vaccination tickets (接種券) and the review queue', () => {
  let m: RunningMunicipality;
  let clerk: string;
  const BIRTH = '1962-03-03';

  before(async () => {
    m = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto);
    clerk = await m.tokenFor('clerk');
  });
  after(async () => {
    await m.stop();
    removeDir(m.dir);
  });

  const holder = async (birthDate = BIRTH) => (await createResidentVia(m, clerk, { birthDate })).resident.addresseeNumber;
  const issue = async (a: string, body: Record<string, unknown> = { type: 1, doseNumber: 1 }) => {
    const res = await api('POST', `${m.url}/residents/${a}/tickets`, { token: clerk, body });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return res.body as { ticketNumber: string; ocrLine: string; type: number; doseNumber: number };
  };
  const register = (body: Record<string, unknown>, key = newKey()): Promise<ApiResponse> =>
    api('POST', `${m.url}/vaccinations/from-ticket`, { token: clerk, body, headers: { 'idempotency-key': key } });
  const registration = (ocrLine: string, over: Record<string, unknown> = {}) => ({
    ocrLine, birthDate: BIRTH, occurrenceDate: '2021-06-10', vaccineCode: 'covid19-comirnaty', lotNumber: 'FF3620', place: '田原本町保健センター', ...over,
  });
  const recordsOf = async (a: string) => (await api('GET', `${m.url}/residents/${a}/vaccinations`, { token: clerk })).body.records as { doseNumber: number; ticketNumber: string | null }[];

  it('when a ticket is issued, then its 18-digit OCR line carries type, dose, our municipality code and the ticket number', async () => {
    const a = await holder();
    const ticket = await issue(a, { type: 1, doseNumber: 1 });
    expect(ticket.ocrLine).to.match(/^\d{18}$/);
    expect(ticket.ocrLine).to.equal(`11${m.code}${ticket.ticketNumber}`);
    const list = await api('GET', `${m.url}/residents/${a}/tickets`, { token: clerk });
    expect(list.body.tickets).to.have.length(1);
    expect(list.body.tickets[0]).to.include({ ticketNumber: ticket.ticketNumber, used: false });
    const bad = await api('POST', `${m.url}/residents/${a}/tickets`, { token: clerk, body: { type: 3, doseNumber: 0 } });
    expect(bad.status).to.equal(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field)).to.have.members(['type', 'doseNumber']);
  });

  it('when ticket, dose and birth date all agree, then the dose goes onto the holder with the ticket number and the ticket is used', async () => {
    const a = await holder();
    const ticket = await issue(a);
    const res = await register(registration(ticket.ocrLine));
    expect(res.status).to.equal(201);
    expect(res.body).to.include({ outcome: 'registered', addresseeNumber: a });
    expect(res.body.record).to.include({ doseNumber: 1, ticketNumber: ticket.ticketNumber });
    expect(await recordsOf(a)).to.have.length(1);
    expect((await api('GET', `${m.url}/residents/${a}/tickets`, { token: clerk })).body.tickets[0].used).to.equal(true);
    const logged = await m.ctx.models.AccessLog.count({ where: { subject: a, action: Actions.TICKET_REGISTER } });
    expect(logged).to.equal(1);
  });

  it('when the birth date is not the ticket holder\'s, then 202 queues it for review and nothing goes onto anyone\'s record', async () => {
    const a = await holder();
    const ticket = await issue(a);
    const before = await rowCounts(m);
    const res = await register(registration(ticket.ocrLine, { birthDate: '1962-03-04' }));
    expect(res.status).to.equal(202);
    expect(res.body.outcome).to.equal('queued');
    expect(res.body.review).to.include({ status: 'open', ticketHolder: a });
    expect(res.body.review.reasons).to.deep.equal(['birth_date_mismatch']);
    const after = await rowCounts(m);
    expect(after.records).to.equal(before.records);
    expect(after.usedTickets).to.equal(before.usedTickets);
    expect(after.reviews).to.equal(before.reviews + 1);
    expect(await recordsOf(a)).to.have.length(0);
    const queue = await api('GET', `${m.url}/ticket-reviews?status=open`, { token: clerk });
    expect(queue.body.items.map((r: { id: string }) => r.id)).to.include(res.body.review.id);
  });

  it('when the ticket belongs to another municipality, is unknown here, or is for another dose or kind, then each goes to review with its reason', async () => {
    const a = await holder();
    const ticket = await issue(a, { type: 1, doseNumber: 2 });
    const other = `11${DEMO_MUNICIPALITIES.akiota.code}1234567890`;
    const unknown = `11${m.code}9999999999`;
    const cases: [Record<string, unknown>, string[]][] = [
      [registration(other), ['municipality_mismatch']],
      [registration(unknown), ['ticket_unknown']],
      // Issued for dose 2, but the resident has no dose 1 yet.
      [registration(ticket.ocrLine), ['dose_mismatch']],
      // The line says dose 1 where the ticket was issued for dose 2 (a misread dose digit).
      [registration(`11${m.code}${ticket.ticketNumber}`), ['dose_mismatch']],
      [registration(`2${ticket.ocrLine.slice(1)}`, { vaccineCode: 'mr', lotNumber: 'MR204' }), ['ticket_type_mismatch', 'dose_mismatch']],
      [registration(ticket.ocrLine, { vaccineCode: 'mr', lotNumber: 'MR204' }), ['ticket_type_mismatch']],
    ];
    const before = await rowCounts(m);
    for (const [body, reasons] of cases) {
      const res = await register(body);
      expect(res.status, JSON.stringify(body)).to.equal(202);
      expect(res.body.review.reasons, JSON.stringify(body)).to.include.members(reasons);
    }
    const after = await rowCounts(m);
    expect(after.records).to.equal(before.records);
    expect(after.reviews).to.equal(before.reviews + cases.length);
  });

  it('when a used ticket is presented again, then the second registration waits for review', async () => {
    const a = await holder();
    const ticket = await issue(a);
    expect((await register(registration(ticket.ocrLine))).status).to.equal(201);
    const second = await register(registration(ticket.ocrLine, { occurrenceDate: '2021-07-01' }));
    expect(second.status).to.equal(202);
    expect(second.body.review.reasons).to.include('ticket_already_used');
    expect(await recordsOf(a)).to.have.length(1);
  });

  it('when the OCR line is malformed, then 400 names ocrLine and nothing is queued', async () => {
    const before = await rowCounts(m);
    const wrongCheck = `11${m.code.slice(0, 5)}${(Number(m.code[5]) + 1) % 10}1234567890`;
    for (const line of ['1', 'abcdefghijklmnopqr', wrongCheck, `11${m.code}0000000000`]) {
      const res = await register(registration(line));
      expect(res.status, line).to.equal(400);
      expect(res.body.field).to.equal('ocrLine');
    }
    expect(completeMunicipalityCode(m.code.slice(0, 5))).to.equal(m.code);
    expect(await rowCounts(m)).to.deep.equal(before);
  });

  it('when a clerk approves a queued registration onto the right resident with a reason, then the dose is recorded there once', async () => {
    const a = await holder();
    const ticket = await issue(a);
    const queued = (await register(registration(ticket.ocrLine, { birthDate: '1926-03-03' }))).body.review;
    const approve = (body: Record<string, unknown>, key = newKey()) =>
      api('POST', `${m.url}/ticket-reviews/${queued.id}/approve`, { token: clerk, body, headers: { 'idempotency-key': key } });
    const missingReason = await approve({ addresseeNumber: a });
    expect(missingReason.status).to.equal(400);
    expect(missingReason.body.field).to.equal('reason');
    const res = await approve({ addresseeNumber: a, reason: '本人確認書類で生年月日の誤記を確認' });
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ status: 'approved', resident: a, resolutionReason: '本人確認書類で生年月日の誤記を確認' });
    const records = await recordsOf(a);
    expect(records).to.have.length(1);
    expect(records[0]!.ticketNumber).to.equal(ticket.ticketNumber);
    const twice = await approve({ addresseeNumber: a, reason: 'again' });
    expect(twice.status).to.equal(409);
    expect(await recordsOf(a)).to.have.length(1);
  });

  it('when an approval would break a record rule for the named resident, then 422 and the review stays open', async () => {
    const a = await holder();
    const young = await holder('2022-01-01');
    const ticket = await issue(a);
    const queued = (await register(registration(ticket.ocrLine, { birthDate: '1999-09-09' }))).body.review;
    const res = await api('POST', `${m.url}/ticket-reviews/${queued.id}/approve`, {
      token: clerk, body: { addresseeNumber: young, reason: 'wrong person' }, headers: { 'idempotency-key': newKey() },
    });
    expect(res.status).to.equal(422);
    expect(res.body.field).to.equal('occurrenceDate');
    expect(await recordsOf(young)).to.have.length(0);
    expect((await api('GET', `${m.url}/ticket-reviews/${queued.id}`, { token: clerk })).body.status).to.equal('open');
  });

  it('when a clerk rejects a queued registration, then it is closed with the reason and no record is written', async () => {
    const a = await holder();
    const ticket = await issue(a);
    const queued = (await register(registration(ticket.ocrLine, { birthDate: '1999-09-09' }))).body.review;
    const before = await rowCounts(m);
    const res = await api('POST', `${m.url}/ticket-reviews/${queued.id}/reject`, { token: clerk, body: { reason: '接種券の読取り誤り、再読取りする' } });
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ status: 'rejected', resolutionReason: '接種券の読取り誤り、再読取りする', recordId: null });
    expect((await rowCounts(m)).records).to.equal(before.records);
    expect((await api('GET', `${m.url}/ticket-reviews?status=rejected`, { token: clerk })).body.items.map((r: { id: string }) => r.id)).to.include(queued.id);
  });

  it('when a review id is unknown or malformed, then 404 or 400', async () => {
    expect((await api('GET', `${m.url}/ticket-reviews/${randomUUID()}`, { token: clerk })).status).to.equal(404);
    const bad = await api('POST', `${m.url}/ticket-reviews/nope/reject`, { token: clerk, body: { reason: 'x' } });
    expect(bad.status).to.equal(400);
    expect(bad.body.field).to.equal('reviewId');
    expect((await api('GET', `${m.url}/ticket-reviews?status=pending`, { token: clerk })).body.field).to.equal('status');
  });

  it('when a ticket registration is retried with its key, then the same answer comes back and only one review exists', async () => {
    const a = await holder();
    const ticket = await issue(a);
    const key = newKey();
    const body = registration(ticket.ocrLine, { birthDate: '1999-09-09' });
    const first = await register(body, key);
    const before = await rowCounts(m);
    const retry = await register(body, key);
    expect(retry.status).to.equal(202);
    expect(retry.body).to.deep.equal(first.body);
    expect((await rowCounts(m)).reviews).to.equal(before.reviews);
    const noKey = await api('POST', `${m.url}/vaccinations/from-ticket`, { token: clerk, body });
    expect(noKey.status).to.equal(400);
    expect(noKey.body.field).to.equal('Idempotency-Key');
  });

  it('when the role is not clerk, then tickets and reviews are refused with 403', async () => {
    const a = await holder();
    await postRecord(m, clerk, a);
    for (const role of ['operator', 'privacy_officer', 'admin'] as const) {
      const token = await m.tokenFor(role);
      expect((await api('POST', `${m.url}/vaccinations/from-ticket`, { token, body: registration('1'), headers: { 'idempotency-key': newKey() } })).status, role).to.equal(403);
      expect((await api('GET', `${m.url}/ticket-reviews`, { token })).status, role).to.equal(403);
      expect((await api('POST', `${m.url}/residents/${a}/tickets`, { token, body: { type: 1, doseNumber: 2 } })).status, role).to.equal(403);
    }
  });
});
