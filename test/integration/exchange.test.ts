/**
 * The asking side of the exchange (Toda), in-process over real mTLS, facing a gateway that lies.
 * The honest gateway is exercised end to end in test/e2e/federation.test.ts; here a hostile one,
 * holding the gateway's real certificate (and, to forge convincingly, Tawaramoto's keys), answers
 * Toda's queries with claims it cannot back, and Toda must import only what it can verify itself.
 * Also: the staff routes' validation, the exception-request workflow, and a municipality without
 * a federation link.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:https';
import type { Signer } from '../../shared/federation/messages.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peekJwt } from '../../shared/crypto.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { createLogger } from '../../shared/platform/log.ts';
import { closeMemberServer, createMemberServer, listenMember, memberIdentity } from '../../shared/federation/member-http.ts';
import { companionDigest, sealMessage, signMessage } from '../../shared/federation/messages.ts';
import { pkiPaths } from '../../shared/federation/pki.ts';
import { Typ, type AnswerResult, type QueryClaims, type SourceAnswer } from '../../shared/federation/protocol.ts';
import { generateResidents } from '../../services/municipality/seed.ts';
import { toImmunization } from '../../services/municipality/vaccinations/fhir.ts';
import { api } from '../fixtures/http.ts';
import { DEMO_MUNICIPALITIES, removeDir, startMunicipality, testConfig, TEST_PASSWORD, type RunningMunicipality } from '../fixtures/municipality.ts';
import { testPki, type TestPki } from '../fixtures/pki.ts';
import { EMPTY_HEAD } from '../fixtures/factories.ts';
import { answerHeadOf, scriptedEvaluate } from '../fixtures/members.ts';

const A = '293610';
const B = '112241';
const C = '343692';
const CODE_AT_B = 'TODACODE2345TODACODE234567';
const SOURCE_RECORD_ID = randomUUID();

type Reply = { status: number; body: unknown } | 'hang-up';

describe('exchange: the asking municipality trusts only what it verifies', () => {
  let pki: TestPki;
  let hostile: Server;
  let hostileUrl: string;
  let issuer: Server;
  let toda: RunningMunicipality;
  let clerk: string;
  let addressee: string;
  /** What the hostile gateway does with the next query. */
  let reply: (query: QueryClaims) => Promise<Reply>;

  before(async function () {
    this.timeout(60_000);
    pki = testPki();
    const logger = createLogger({ name: 'hostile-gateway', level: 'silent' });
    const app = createBaseApp(logger);
    const members = await pki.memberDirectory();
    app.use(memberIdentity({ directory: members }));
    app.get('/directory', (_req, res) => { res.json(pki.directory()); });
    app.get('/revocations', (_req, res) => { res.json({ revocations: pki.revocationsJws() }); });
    app.post('/codes/evaluate', scriptedEvaluate('gateway'));
    app.post('/queries', async (req, res) => {
      const out = await reply(peekJwt(String(req.body.query)).claims as QueryClaims);
      if (out === 'hang-up') return void req.socket.destroy();
      res.status(out.status).type(out.status >= 400 ? 'application/problem+json' : 'application/json').send(JSON.stringify(out.body));
    });
    app.use(notFoundHandler);
    app.use(errorHandler(logger));
    hostile = createMemberServer(app, pki.credentials('gateway'));
    hostileUrl = await listenMember(hostile, 0);
    // An issuer beside it (with the issuer's own certificate: My Numbers go to no one else), so that Toda's resident gets a code.
    const issuerApp = createBaseApp(logger);
    issuerApp.use(memberIdentity({ directory: members }));
    issuerApp.post('/codes/evaluate', scriptedEvaluate('issuer'));
    issuerApp.post('/codes/batch', async (req, res) => { res.json({ codes: (req.body.seeds as string[]).map(() => ({ code: CODE_AT_B, attestation: 'x.y.z' })), head: await answerHeadOf(req, 'issuer') }); });
    issuer = createMemberServer(issuerApp, pki.credentials('issuer'));
    const issuerUrl = await listenMember(issuer, 0);

    const dir = mkdtempSync(join(tmpdir(), 'hikitsugi-exchange-'));
    toda = await startMunicipality(DEMO_MUNICIPALITIES.toda, {
      dir, config: testConfig(B, 'Toda', dir, { CERT_DIR: pkiPaths(pki.dir).member(B), GATEWAY_URL: hostileUrl, ISSUER_URL: issuerUrl }),
    });
    clerk = await toda.tokenFor('clerk');
    const created = await api('POST', `${toda.url}/residents`, { token: clerk, body: {
      name: '山田 花子', kana: 'ヤマダ ハナコ', birthDate: '1990-04-01', sex: 'female', address: '埼玉県戸田市上戸田1-1-1',
      // A move-in registered at the counter (previous municipality and date): the move-in capability needs one.
      myNumber: completeMyNumber('30000000001'), previousMunicipality: A, movedInAt: new Date().toISOString(),
    } });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    addressee = created.body.addresseeNumber;
    const run = await api('POST', `${toda.url}/exchange/registrations/run`, { token: await toda.tokenFor('operator') });
    expect(run.body.pending).to.equal(0);
    const consent = await api('POST', `${toda.url}/residents/${addressee}/consents`, { token: clerk, body: {
      purpose: 'next-dose-scheduling', sources: [A], expiresAt: new Date(Date.now() + 30 * 86_400_000).toISOString(), method: 'written',
    } });
    expect(consent.status).to.equal(201);
  });

  after(async () => {
    await toda?.stop();
    if (toda) removeDir(toda.dir);
    for (const server of [hostile, issuer]) {
      server?.closeAllConnections();
      if (server) await closeMemberServer(server);
    }
  });

  const ask = () => api('POST', `${toda.url}/exchange/queries`, { token: clerk, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: addressee, source: A }] } });
  const imported = async () => (await api('GET', `${toda.url}/residents/${addressee}/vaccinations`, { token: clerk })).body.records.length as number;

  /**
   * Tawaramoto's signed answer, forged by whoever holds its key (here: the test), naming `records` by
   * digest with the envelope beside it (`beside` puts another one there: null, none).
   */
  async function answer(query: QueryClaims, result: Partial<AnswerResult>, options: { records?: string; beside?: string | null; signer?: Signer } = {}): Promise<SourceAnswer> {
    const results = [{ ref: query.subjects[0]!.ref, status: 'ok', ...result }];
    const compact = await signMessage({
      aud: B, jti: randomUUID(), rid: query.rid, queryJti: query.jti, results, ...(options.records ? { recordsDigest: companionDigest(options.records) } : {}), head: EMPTY_HEAD,
    }, options.signer ?? pki.credentials(A).signer, Typ.ANSWER);
    const beside = options.beside === undefined ? options.records : options.beside;
    return beside ? { answer: compact, records: beside } : { answer: compact };
  }

  /**
   * The source's records envelope for the query's one subject; `overrides` change the envelope, `subject` its one entry,
   * `edit` the Immunization.
   */
  async function records(
    query: QueryClaims, overrides: Record<string, unknown> = {}, recipient = pki.credentials(B).encryption, subject: Record<string, unknown> = {},
    edit: (r: Record<string, unknown>) => Record<string, unknown> = (r) => r,
  ) {
    const g = generateResidents(A, 10, 'exchange-test').flatMap((r) => r.records)[0]!;
    const resource = edit({ ...toImmunization({
      recordId: SOURCE_RECORD_ID, version: 1, ...g, status: 'completed', reason: null, createdAt: new Date().toISOString(),
      sourceMunicipality: null, sourceRecordId: null, sourceVersion: null, importRequestId: null, retrievedAt: null,
    }) });
    return sealMessage({
      aud: B, jti: randomUUID(), rid: query.rid, queryJti: query.jti, purpose: query.purpose,
      subjects: [{ ref: query.subjects[0]!.ref, sub: query.subjects[0]!.sub, bundle: { resourceType: 'Bundle', type: 'collection', entry: [{ resource }] }, ...subject }],
      ...overrides,
    }, pki.credentials(A).signer, Typ.RECORDS, recipient);
  }

  const ok = (query: QueryClaims, answers: SourceAnswer[], status = 'ok') =>
    ({ status: 200, body: { requestId: query.rid, results: [{ ref: query.subjects[0]!.ref, source: A, status }], answers } });

  it('when the gateway claims ok but brings no answer signed by the source, then nothing is imported and the subject is retried later', async () => {
    reply = async (q) => ok(q, []);
    const res = await ask();
    expect(res.body.results[0]).to.include({ status: 'source_unavailable', reason: 'no_verified_answer', retryAfter: 30, imported: 0 });
    expect(await imported()).to.equal(0);
    const stored = await api('GET', `${toda.url}/exchange/queries/${(await toda.ctx.models.QuerySubject.findOne({ order: [['id', 'DESC']], raw: true }))!.queryJti}`, { token: clerk });
    expect(stored.body.subjects[0]).to.include({ status: 'source_unavailable', reason: 'no_verified_answer' });
  });

  it('when the answer is signed by another member in the source\'s name, then it is ignored', async () => {
    reply = async (q) => ok(q, [await answer(q, {}, { signer: { ...pki.credentials(C).signer, id: A } })]);
    expect((await ask()).body.results[0]).to.include({ status: 'source_unavailable', reason: 'no_verified_answer' });
    expect(await imported()).to.equal(0);
  });

  it('when the records are encrypted for the gateway, bound to another subject, query or purpose, made for another batch, or not a JWE, then they are refused as unverifiable', async () => {
    const cases: [string, (q: QueryClaims) => Promise<SourceAnswer>][] = [
      ['sealed for the gateway', async (q) => answer(q, {}, { records: await records(q, {}, pki.credentials('gateway').encryption) })],
      ['for another of our residents (code)', async (q) => answer(q, {}, { records: await records(q, {}, undefined, { sub: 'OTHERCODE234567OTHERCODE23' }) })],
      ['for another ref of the batch', async (q) => answer(q, {}, { records: await records(q, {}, undefined, { ref: 'not-asked' }) })],
      ['under another purpose', async (q) => answer(q, {}, { records: await records(q, { purpose: 'certificate-issuance' }) })],
      ['bound to another query of ours', async (q) => answer(q, {}, { records: await records(q, { queryJti: randomUUID() }) })],
      // The whole envelope of another batch (its own query jti and trace), named by this answer.
      ['made for another batch', async (q) => answer(q, {}, { records: await records({ ...q, jti: randomUUID(), rid: `other-${randomUUID()}` }) })],
      ['not a JWE', (q) => answer(q, {}, { records: 'eyJhbGciOiJSU0EtT0FFUC0yNTYifQ.AAAA.BBBB.CCCC.DDDD' })],
      ['absent although the status is ok', (q) => answer(q, {})],
      // Genuine records for this subject beside the answer, but not the envelope the answer names.
      ['beside the answer but not the ones it names', async (q) => answer(q, {}, { records: await records(q), beside: await records(q) })],
      ['named by the answer but not beside it', async (q) => answer(q, {}, { records: await records(q), beside: null })],
      ['beside an answer that names none', async (q) => ({ ...(await answer(q, {})), records: await records(q) })],
    ];
    for (const [label, make] of cases) {
      reply = async (q) => ok(q, [await make(q)]);
      expect((await ask()).body.results[0], label).to.include({ status: 'denied', reason: 'records_unverifiable', imported: 0 });
    }
    expect(await imported()).to.equal(0);
  });

  it('when the source\'s genuine records carry a My Number in their free text (place, performer, lot, note; three notations), then nothing of the subject is imported: denied/records_invalid', async () => {
    // The one purpose whose allow-list keeps every free-text element (answering/disclosure-policy.ts).
    const purpose = 'adverse-event-follow-up';
    const consent = await api('POST', `${toda.url}/residents/${addressee}/consents`, { token: clerk, body: {
      purpose, sources: [A], expiresAt: new Date(Date.now() + 30 * 86_400_000).toISOString(), method: 'written',
    } });
    expect(consent.status).to.equal(201);
    const myNumber = completeMyNumber('30000000005');
    const notations = [myNumber, `${myNumber.slice(0, 4)}-${myNumber.slice(4, 8)}-${myNumber.slice(8)}`, myNumber.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)))];
    const fields: [string, (r: Record<string, unknown>, n: string) => Record<string, unknown>][] = [
      ['location', (r, n) => ({ ...r, location: { display: `保健センター ${n}` } })],
      ['performer', (r, n) => ({ ...r, performer: [{ actor: { display: `医師 ${n}` } }] })],
      ['lotNumber', (r, n) => ({ ...r, lotNumber: n.slice(0, 20) })],
      ['note', (r, n) => ({ ...r, note: [{ text: `本人確認 ${n}` }] })],
    ];
    let tried = 0;
    for (const [field, put] of fields) {
      for (const n of notations) {
        reply = async (q) => ok(q, [await answer(q, {}, { records: await records(q, {}, undefined, {}, (r) => put(r, n)) })]);
        const res = await api('POST', `${toda.url}/exchange/queries`, { token: clerk, body: { purpose, subjects: [{ addresseeNumber: addressee, source: A }] } });
        expect(res.body.results[0], `${field}: ${n}`).to.include({ status: 'denied', reason: 'records_invalid', imported: 0 });
        tried += 1;
      }
    }
    expect(tried).to.equal(12);
    expect(await imported()).to.equal(0);
  });

  it('when the source\'s signed answer leaves the subject out (dropped on the way), then it stays source_unavailable to be asked again, never not_found', async () => {
    reply = async (q) => ok(q, [{ answer: await signMessage({ aud: B, jti: randomUUID(), rid: q.rid, queryJti: q.jti, results: [], head: EMPTY_HEAD }, pki.credentials(A).signer, Typ.ANSWER) }]);
    expect((await ask()).body.results[0]).to.include({ status: 'source_unavailable', reason: 'no_verified_answer', imported: 0 });
    expect(await imported()).to.equal(0);
  });

  it('when the gateway\'s response is malformed, refuses the query, or hangs up, then each subject gets a status and nothing is imported', async () => {
    reply = async (q) => ({ status: 200, body: { requestId: q.rid, results: [{ ref: q.subjects[0]!.ref, status: 'released' }], answers: [] } });
    expect((await ask()).body.results[0]).to.include({ status: 'source_unavailable', reason: 'invalid_gateway_response' });
    reply = async () => ({ status: 409, body: { type: 'https://hikitsugi.example/problems/replayed', title: 'Query already received', status: 409 } });
    const refused = await ask();
    expect(refused.body.results[0]).to.include({ status: 'denied', reason: 'gateway_refused:replayed' });
    expect(refused.body.results[0]).not.to.have.property('retryAfter');
    reply = async () => 'hang-up';
    expect((await ask()).body.results[0]).to.include({ status: 'source_unavailable', reason: 'gateway_unavailable', retryAfter: 30 });
    expect(await imported()).to.equal(0);
  });

  it('when a clerk sends a query, then the route\'s two guards (the rate limit\'s and its own) read the staff session once', async () => {
    const sessionReads: string[] = [];
    const count = (options: object) => {
      const name = (options as { model?: { name?: string } }).model?.name;
      if (name === 'RevokedSession' || name === 'Staff') sessionReads.push(name);
    };
    toda.ctx.sequelize.addHook('beforeQuery', 'count-session-reads', count);
    try {
      reply = async (q) => ok(q, []);
      expect((await ask()).status).to.equal(200);
    } finally {
      toda.ctx.sequelize.removeHook('beforeQuery', 'count-session-reads');
    }
    expect(sessionReads.sort()).to.deep.equal(['RevokedSession', 'Staff']);
  });

  it('when the source\'s signed answer and records verify, then they are imported once (the control for the refusals above)', async () => {
    reply = async (q) => ok(q, [await answer(q, {}, { records: await records(q) })]);
    expect((await ask()).body.results[0]).to.include({ status: 'ok', recordCount: 1, imported: 1 });
    expect((await ask()).body.results[0]).to.include({ status: 'ok', recordCount: 1, imported: 0 });
    expect(await imported()).to.equal(1);
  });

  it('when a query names a source outside the federation, then 400 names the subject and nothing is logged or sent', async () => {
    let sent = 0;
    reply = async (q) => { sent += 1; return ok(q, []); };
    const before = await toda.ctx.models.QuerySubject.count();
    const res = await api('POST', `${toda.url}/exchange/queries`, { token: clerk, body: {
      purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: addressee, source: A }, { addresseeNumber: addressee, source: '100013' }],
    } });
    expect(res.status).to.equal(400);
    expect(res.headers.get('content-type')).to.match(/application\/problem\+json/);
    expect(res.body).to.include({ type: 'https://hikitsugi.example/problems/unknown-member', field: 'subjects.1.source' });
    expect(await toda.ctx.models.QuerySubject.count()).to.equal(before);
    expect(sent).to.equal(0);
  });

  it('when the query body is malformed, then 400 names the field; unknown residents are 404; other roles 403; no token 401', async () => {
    const post = (body: unknown, token?: string) => api('POST', `${toda.url}/exchange/queries`, { token, body });
    const bad = [
      [{ purpose: 'curiosity', subjects: [{ addresseeNumber: addressee, source: A }] }, 'purpose'],
      [{ purpose: 'next-dose-scheduling', subjects: [] }, 'subjects'],
      [{ purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: 'abc', source: A }] }, 'subjects.0.addresseeNumber'],
      [{ purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: addressee, source: '293611' }] }, 'subjects.0.source'],
      [{ purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: addressee, source: A, exceptionId: 'x' }] }, 'subjects.0.exceptionId'],
      [{ purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: addressee, source: A }], extra: 1 }, 'body'],
    ] as const;
    for (const [body, field] of bad) {
      const res = await post(body, clerk);
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.body.field).to.equal(field);
    }
    const unknown = await post({ purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: '1000000008', source: A }] }, clerk);
    expect(unknown.status).to.equal(404);
    expect(unknown.body.field).to.equal('subjects.0.addresseeNumber');
    expect((await post({}, await toda.tokenFor('privacy_officer'))).status).to.equal(403);
    expect((await post({})).status).to.equal(401);
  });
});

describe('exchange: exception requests (life-protection) at one municipality', () => {
  let toda: RunningMunicipality;
  let clerk1: string;
  let clerk2: string;
  let addressee: string;
  const requests = () => `${toda.url}/exchange/exception-requests`;
  const justification = 'Patient unconscious after a traffic accident; tetanus history needed for treatment now.';

  before(async () => {
    toda = await startMunicipality(DEMO_MUNICIPALITIES.toda);
    clerk1 = await toda.tokenFor('clerk');
    const admin = await toda.tokenFor('admin');
    const made = await api('POST', `${toda.url}/staff`, { token: admin, body: { username: 'clerk2', displayName: 'Clerk Two', role: 'clerk', password: TEST_PASSWORD } });
    expect(made.status, JSON.stringify(made.body)).to.equal(201);
    clerk2 = (await api('POST', `${toda.url}/auth/login`, { body: { username: 'clerk2', password: TEST_PASSWORD } })).body.token;
    const created = await api('POST', `${toda.url}/residents`, { token: clerk1, body: {
      name: '鈴木 太郎', kana: 'スズキ タロウ', birthDate: '1985-12-24', sex: 'male', address: '埼玉県戸田市新曽2-2-2', myNumber: completeMyNumber('30000000002'),
    } });
    addressee = created.body.addresseeNumber;
  });

  after(async () => {
    await toda.stop();
    removeDir(toda.dir);
  });

  it('when a clerk asks with a justification, then a second clerk approves it once; the asker cannot; each step is logged and flagged', async () => {
    const asked = await api('POST', requests(), { token: clerk1, body: { addresseeNumber: addressee, source: A, purpose: 'next-dose-scheduling', justification } });
    expect(asked.status).to.equal(201);
    expect(asked.body).to.include({ status: 'pending', source: A, approvedBy: null });
    const id = asked.body.id as string;
    const self = await api('POST', `${requests()}/${id}/approve`, { token: clerk1 });
    expect(self.status).to.equal(403);
    expect(self.body).to.include({ type: 'https://hikitsugi.example/problems/second-approver-required', field: 'approver' });
    const approved = await api('POST', `${requests()}/${id}/approve`, { token: clerk2 });
    expect(approved.status).to.equal(200);
    expect(approved.body.status).to.equal('approved');
    expect(approved.body.approvedBy).not.to.equal(approved.body.requestedBy);
    const twice = await api('POST', `${requests()}/${id}/approve`, { token: clerk2 });
    expect(twice.status).to.equal(409);
    const listed = await api('GET', `${requests()}?status=approved`, { token: clerk1 });
    expect(listed.body.requests.map((r: { id: string }) => r.id)).to.deep.equal([id]);
    const logged = await toda.ctx.models.AccessLog.findAll({ where: { subject: addressee }, order: [['seq', 'ASC']], raw: true });
    const steps = logged.filter((r) => r.action.startsWith('exchange.exception'));
    expect(steps.map((r) => r.action)).to.deep.equal(['exchange.exception.request', 'exchange.exception.approve']);
    for (const r of steps) expect(JSON.parse(r.flags)).to.include('life-protection');
  });

  it('when the request is malformed, names an unknown resident or id, or comes from another role, then a problem says so and nothing is stored', async () => {
    const before = await toda.ctx.models.ExceptionRequest.count();
    const short = await api('POST', requests(), { token: clerk1, body: { addresseeNumber: addressee, source: A, purpose: 'next-dose-scheduling', justification: 'urgent' } });
    expect(short.status).to.equal(400);
    expect(short.body.field).to.equal('justification');
    const badSource = await api('POST', requests(), { token: clerk1, body: { addresseeNumber: addressee, source: '123456', purpose: 'next-dose-scheduling', justification } });
    expect(badSource.body.field).to.equal('source');
    const unknown = await api('POST', requests(), { token: clerk1, body: { addresseeNumber: '1000000008', source: A, purpose: 'next-dose-scheduling', justification } });
    expect(unknown.status).to.equal(404);
    expect((await api('POST', `${requests()}/not-a-uuid/approve`, { token: clerk2 })).body.field).to.equal('id');
    expect((await api('POST', `${requests()}/${randomUUID()}/approve`, { token: clerk2 })).status).to.equal(404);
    expect((await api('GET', `${requests()}?status=maybe`, { token: clerk1 })).body.field).to.equal('status');
    const operator = await toda.tokenFor('operator');
    expect((await api('POST', requests(), { token: operator, body: { addresseeNumber: addressee, source: A, purpose: 'next-dose-scheduling', justification } })).status).to.equal(403);
    expect((await api('GET', requests())).status).to.equal(401);
    expect(await toda.ctx.models.ExceptionRequest.count()).to.equal(before);
  });

  it('when the municipality has no federation link, then queries, move-outs and move-ins answer 503 after validating their input (a move-out on 2026-02-30 is 400 naming moveOutDate), and local work goes on', async () => {
    const query = await api('POST', `${toda.url}/exchange/queries`, { token: clerk1, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: addressee, source: A }] } });
    expect(query.status).to.equal(503);
    expect(query.body.type).to.equal('https://hikitsugi.example/problems/federation-unavailable');
    const moveOut = await api('POST', `${toda.url}/residents/${addressee}/move-out`, { token: clerk1, body: { moveOutDate: '2026-04-01', destination: A, destinationAddress: '奈良県磯城郡田原本町890-1' } });
    expect(moveOut.status).to.equal(503);
    const badMoveOut = await api('POST', `${toda.url}/residents/${addressee}/move-out`, { token: clerk1, body: { moveOutDate: '2026-04-01', destination: '123456', destinationAddress: 'x' } });
    expect(badMoveOut.status).to.equal(400);
    expect(badMoveOut.body.field).to.equal('destination');
    const impossibleDate = await api('POST', `${toda.url}/residents/${addressee}/move-out`, { token: clerk1, body: { moveOutDate: '2026-02-30', destination: A, destinationAddress: '奈良県磯城郡田原本町890-1' } });
    expect(impossibleDate.status).to.equal(400);
    expect(impossibleDate.headers.get('content-type')).to.match(/^application\/problem\+json/);
    expect(impossibleDate.body).to.include({ type: 'https://hikitsugi.example/problems/validation', field: 'moveOutDate', rule: 'must be a calendar date YYYY-MM-DD' });
    const moveIn = await api('POST', `${toda.url}/move-ins`, { token: clerk1, body: { certificate: 'a.b.c', myNumber: completeMyNumber('30000000003'), address: 'x' } });
    expect(moveIn.status).to.equal(503);
    const resident = await api('GET', `${toda.url}/residents/${addressee}`, { token: clerk1 });
    expect(resident.body.status).to.equal('resident');
  });
});
