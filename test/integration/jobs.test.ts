/**
 * The bulk-job runner at one municipality (Toda), in-process over real mTLS, facing a scripted
 * gateway that plays the issuer too and answers either "source unavailable", "down", or with
 * Tawaramoto's own signed answer and records (the test holds Tawaramoto's keys, as in
 * exchange.test.ts). The honest federation is exercised in test/e2e/bulk.test.ts and failures.test.ts.
 */
import { expect } from 'chai';
import { createHash, randomUUID } from 'node:crypto';
import type { Server } from 'node:https';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peekJwt } from '../../shared/crypto.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { createLogger } from '../../shared/platform/log.ts';
import { closeMemberServer, createMemberServer, listenMember, memberIdentity } from '../../shared/federation/member-http.ts';
import { companionDigest, sealMessage, signMessage } from '../../shared/federation/messages.ts';
import { pkiPaths } from '../../shared/federation/pki.ts';
import { Typ, type QueryClaims, type SourceAnswer } from '../../shared/federation/protocol.ts';
import { generateResidents } from '../../services/municipality/seed.ts';
import { toImmunization } from '../../services/municipality/vaccinations/fhir.ts';
import { isRetryable, retryDelaySeconds } from '../../services/municipality/asking/bulk/service.ts';
import { api } from '../fixtures/http.ts';
import { DEMO_MUNICIPALITIES, removeDir, startMunicipality, testConfig, type RunningMunicipality } from '../fixtures/municipality.ts';
import { testPki, type TestPki } from '../fixtures/pki.ts';
import { EMPTY_HEAD } from '../fixtures/factories.ts';
import { answerHeadOf, scriptedEvaluate } from '../fixtures/members.ts';

const A = '293610';
const B = '112241';
const PURPOSE = 'next-dose-scheduling';
const RECORDS_PER_SUBJECT = 2;

type Mode = 'unavailable' | 'down' | 'answer';

/** A 26-character base32 code per seed, as an issuer would derive one (deterministic). */
const codeFor = (seed: string) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return [...createHash('sha256').update(seed).digest()].slice(0, 26).map((b) => alphabet[b % 32]).join('');
};
/** Tawaramoto's record ids for one resident: stable, so a repeated answer is the same records. */
const recordIdsFor = (code: string) => Array.from({ length: RECORDS_PER_SUBJECT }, (_, i) => {
  const h = createHash('sha256').update(`${code}:${i}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
});

describe('bulk jobs: the runner at one municipality', () => {
  let pki: TestPki;
  let gateway: Server;
  let issuer: Server;
  let toda: RunningMunicipality;
  let operator: string;
  let clerk: string;
  let mode: Mode = 'unavailable';
  /** Subjects per query the gateway received, in order. */
  const queries: number[] = [];
  const addressees: string[] = [];
  const bulk = () => `${toda.url}/exchange/bulk-queries`;

  async function answerFor(q: QueryClaims): Promise<SourceAnswer> {
    const template = generateResidents(A, 20, 'jobs-test').flatMap((r) => r.records).slice(0, RECORDS_PER_SUBJECT);
    const subjects = q.subjects.map((s) => ({
      ref: s.ref, sub: s.sub, bundle: { resourceType: 'Bundle', type: 'collection', entry: recordIdsFor(s.sub).map((recordId, i) => ({ resource: toImmunization({
        recordId, version: 1, ...template[i]!, status: 'completed', reason: null, createdAt: new Date().toISOString(),
        sourceMunicipality: null, sourceRecordId: null, sourceVersion: null, importRequestId: null, retrievedAt: null,
      }) })) },
    }));
    // The whole batch's records in one envelope, signed by Tawaramoto and sealed for Toda, beside the answer that names it.
    const records = await sealMessage({ aud: B, jti: randomUUID(), rid: q.rid, queryJti: q.jti, purpose: q.purpose, subjects },
      pki.credentials(A).signer, Typ.RECORDS, pki.credentials(B).encryption);
    const results = q.subjects.map((s) => ({ ref: s.ref, status: 'ok' }));
    const answer = await signMessage({ aud: B, jti: randomUUID(), rid: q.rid, queryJti: q.jti, results, recordsDigest: companionDigest(records), head: EMPTY_HEAD }, pki.credentials(A).signer, Typ.ANSWER);
    return { answer, records };
  }

  before(async function () {
    this.timeout(90_000);
    pki = testPki();
    const logger = createLogger({ name: 'scripted-gateway', level: 'silent' });
    const app = createBaseApp(logger);
    const members = await pki.memberDirectory();
    app.use(memberIdentity({ directory: members }));
    app.get('/directory', (_req, res) => { res.json(pki.directory()); });
    app.get('/revocations', (_req, res) => { res.json({ revocations: pki.revocationsJws() }); });
    app.get('/health', (_req, res) => { res.json({ status: 'ok' }); });
    app.post('/codes/evaluate', scriptedEvaluate('gateway'));
    app.post('/queries', async (req, res) => {
      const q = peekJwt(String(req.body.query)).claims as QueryClaims;
      queries.push(q.subjects.length);
      if (mode === 'down') return void res.status(503).json({ type: 'unavailable', status: 503 });
      if (mode === 'unavailable') {
        return void res.json({ requestId: q.rid, answers: [], results: q.subjects.map((s) => ({ ref: s.ref, source: A, status: 'source_unavailable', reason: 'timeout', retryAfter: 1 })) });
      }
      res.json({ requestId: q.rid, results: q.subjects.map((s) => ({ ref: s.ref, source: A, status: 'ok' })), answers: [await answerFor(q)] });
    });
    app.use(notFoundHandler);
    app.use(errorHandler(logger));
    gateway = createMemberServer(app, pki.credentials('gateway'));
    const url = await listenMember(gateway, 0);
    // The issuer, with its own certificate (My Numbers go to no one else).
    const issuerApp = createBaseApp(logger);
    issuerApp.use(memberIdentity({ directory: members }));
    issuerApp.post('/codes/evaluate', scriptedEvaluate('issuer'));
    issuerApp.post('/codes/batch', async (req, res) => { res.json({ codes: (req.body.seeds as string[]).map((n) => ({ code: codeFor(n), attestation: 'x.y.z' })), head: await answerHeadOf(req, 'issuer') }); });
    issuer = createMemberServer(issuerApp, pki.credentials('issuer'));
    const issuerUrl = await listenMember(issuer, 0);

    const dir = mkdtempSync(join(tmpdir(), 'hikitsugi-jobs-'));
    toda = await startMunicipality(DEMO_MUNICIPALITIES.toda, {
      dir,
      config: testConfig(B, 'Toda', dir, {
        CERT_DIR: pkiPaths(pki.dir).member(B), GATEWAY_URL: url, ISSUER_URL: issuerUrl,
        BULK_CHUNK_SIZE: '2', BULK_MAX_ATTEMPTS: '2', BULK_RETRY_MAX_SECONDS: '1',
      }),
    });
    clerk = await toda.tokenFor('clerk');
    operator = await toda.tokenFor('operator');
    for (const g of generateResidents('999999', 5, 'jobs-movers')) {
      const created = await api('POST', `${toda.url}/residents`, { token: clerk, body: {
        name: g.name, kana: g.kana, birthDate: g.birthDate, sex: g.sex, address: '埼玉県戸田市上戸田1-1-1', myNumber: g.myNumber,
        previousMunicipality: A, movedInAt: new Date().toISOString(),
      } });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      addressees.push(created.body.addresseeNumber);
      const consent = await api('POST', `${toda.url}/residents/${created.body.addresseeNumber}/consents`, { token: clerk, body: {
        purpose: PURPOSE, sources: [A], expiresAt: new Date(Date.now() + 30 * 86_400_000).toISOString(), method: 'written',
      } });
      expect(consent.status).to.equal(201);
    }
    expect((await api('POST', `${toda.url}/exchange/registrations/run`, { token: operator })).body.pending).to.equal(0);
  });

  after(async () => {
    await toda?.stop();
    if (toda) removeDir(toda.dir);
    for (const server of [gateway, issuer]) {
      server?.closeAllConnections();
      if (server) await closeMemberServer(server);
    }
  });

  const waitFor = async (id: string, done: (p: any) => boolean) => {
    const until = Date.now() + 30_000;
    for (;;) {
      const res = await api('GET', `${bulk()}/${id}`, { token: operator });
      if (done(res.body)) return res.body;
      if (Date.now() > until) throw new Error(JSON.stringify(res.body));
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('when the backoff is computed, then it doubles per attempt, never undercuts the retry-after and never exceeds the cap', () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelaySeconds(n, undefined, 300))).to.deep.equal([1, 2, 4, 8, 16]);
    expect(retryDelaySeconds(1, 30, 300)).to.equal(30);
    expect(retryDelaySeconds(7, 30, 300)).to.equal(64);
    expect(retryDelaySeconds(20, 30, 300)).to.equal(300);
    expect(retryDelaySeconds(1, 86_400, 300)).to.equal(300);
    expect(isRetryable('source_unavailable', 'timeout')).to.equal(true);
    expect(isRetryable('denied', 'code_pending')).to.equal(true);
    for (const [status, reason] of [['denied', 'gateway_refused:replayed'], ['identity_mismatch', 'identity_mismatch:birthDate'], ['no_consent', null], ['ok', null]] as const) {
      expect(isRetryable(status, reason), `${status} ${reason}`).to.equal(false);
    }
  });

  it('when sources stay unavailable, then the job asks in chunks, retries each subject up to the limit, and ends with them source_unavailable; an on-demand retry then completes them', async () => {
    mode = 'unavailable';
    queries.length = 0;
    const created = await api('POST', bulk(), { token: operator, body: { purpose: PURPOSE, subjects: addressees.map((a) => ({ addresseeNumber: a, source: A })) } });
    expect(created.status).to.equal(202);
    const id = created.body.id as string;
    const exhausted = await waitFor(id, (p) => p.status === 'completed');
    expect(exhausted).to.include({ total: 5, done: 5, pendingRetries: 0, imported: 0 });
    expect(exhausted.byStatus.source_unavailable).to.equal(5);
    // Chunks of at most 2 subjects, each subject asked twice (BULK_MAX_ATTEMPTS).
    expect(queries.every((n) => n <= 2)).to.equal(true);
    expect(queries.reduce((a, b) => a + b, 0)).to.equal(10);
    const subjects = (await api('GET', `${bulk()}/${id}/subjects`, { token: operator })).body;
    expect(subjects.items.map((s: { attempts: number; state: string; reason: string }) => [s.state, s.attempts, s.reason]))
      .to.deep.equal(Array(5).fill(['done', 2, 'timeout']));

    mode = 'answer';
    const retried = await api('POST', `${bulk()}/${id}/retry`, { token: clerk });
    expect(retried.status).to.equal(202);
    expect(retried.body).to.include({ retried: 5, status: 'running' });
    const done = await waitFor(id, (p) => p.status === 'completed');
    expect(done.byStatus).to.include({ ok: 5, source_unavailable: 0 });
    expect(done).to.include({ imported: 5 * RECORDS_PER_SUBJECT, created: 5 * RECORDS_PER_SUBJECT });
    const again = await api('POST', `${bulk()}/${id}/retry`, { token: clerk });
    expect(again.status).to.equal(409);
    expect(again.body).to.include({ type: 'https://hikitsugi.example/problems/nothing-to-retry', field: 'id' });
  });

  it('when the gateway is down while a job runs, then its subjects wait and complete once it answers, and nothing is imported twice', async () => {
    mode = 'down';
    const created = await api('POST', bulk(), { token: operator, body: { purpose: PURPOSE, movedInSince: new Date(Date.now() - 86_400_000).toISOString().slice(0, 10) } });
    expect(created.status).to.equal(202);
    expect(created.body.total).to.equal(5);
    const id = created.body.id as string;
    const waiting = await waitFor(id, (p) => p.pending === 0);
    expect(waiting.byStatus.source_unavailable).to.equal(5);
    const reasons = (await api('GET', `${bulk()}/${id}/subjects?state=retrying`, { token: operator })).body.items.map((s: { reason: string }) => s.reason);
    expect(new Set(reasons)).to.deep.equal(new Set(['gateway_unavailable']));
    mode = 'answer';
    const done = await waitFor(id, (p) => p.status === 'completed');
    expect(done.byStatus.ok).to.equal(5);
    expect(done).to.include({ imported: 5 * RECORDS_PER_SUBJECT, created: 0 });
    const held = await toda.ctx.models.VaccinationRecord.count({ where: { sourceMunicipality: A } });
    expect(held).to.equal(5 * RECORDS_PER_SUBJECT);
  });

  it('when a job is made, read and retried, then each step is in the access log: the job once, each listed subject, each query per subject under the job\'s creator', async () => {
    const jobs = (await api('GET', bulk(), { token: operator })).body.jobs as { id: string }[];
    const id = jobs[jobs.length - 1]!.id;
    await api('GET', `${bulk()}/${id}/subjects?pageSize=3`, { token: operator });
    const log = await toda.ctx.models.AccessLog.findAll({ raw: true, order: [['seq', 'ASC']] });
    const created = log.filter((r) => r.action === 'exchange.bulk.create' && JSON.parse(r.details).jobId === id);
    expect(created).to.have.length(1);
    expect(created[0]!.actorRole).to.equal('operator');
    const read = log.filter((r) => r.action === 'exchange.bulk.read' && JSON.parse(r.details).jobId === id);
    expect(read.slice(-3).map((r) => r.subject)).to.deep.equal(addressees.slice(0, 3));
    expect(log.filter((r) => r.action === 'exchange.bulk.retry' && JSON.parse(r.details).jobId === id)).to.have.length(1);
    const sent = log.filter((r) => r.action === 'exchange.query.send' && r.actorId === created[0]!.actorId);
    for (const a of addressees) expect(sent.filter((r) => r.subject === a).length, a).to.be.at.least(3);
  });

  it('when the same submission is sent twice with one Idempotency-Key, then one job is made and the replay says so', async () => {
    const before = (await api('GET', bulk(), { token: operator })).body.jobs.length;
    const body = { purpose: PURPOSE, subjects: [{ addresseeNumber: addressees[0]!, source: A }] };
    const headers = { 'Idempotency-Key': randomUUID() };
    const first = await api('POST', bulk(), { token: operator, body, headers });
    const second = await api('POST', bulk(), { token: operator, body, headers });
    expect(first.status).to.equal(202);
    expect(second.status).to.equal(202);
    expect(second.headers.get('idempotent-replayed')).to.equal('true');
    expect(second.body.id).to.equal(first.body.id);
    expect((await api('GET', bulk(), { token: operator })).body.jobs).to.have.length(before + 1);
    await waitFor(first.body.id, (p) => p.status === 'completed');
  });

  it('when the municipality is not in a federation, then a bulk query answers 503 and stores nothing', async () => {
    const alone = await startMunicipality(DEMO_MUNICIPALITIES.akiota);
    try {
      const res = await api('POST', `${alone.url}/exchange/bulk-queries`, { token: await alone.tokenFor('clerk'), body: { purpose: PURPOSE, movedInSince: '2020-01-01' } });
      expect(res.status).to.equal(503);
      expect(res.headers.get('content-type')).to.match(/application\/problem\+json/);
      expect(await alone.ctx.models.BulkJob.count()).to.equal(0);
      const ready = await api('GET', `${alone.url}/ready`);
      expect(ready.status).to.equal(200);
      expect(ready.body.peers).to.deep.equal({});
    } finally {
      await alone.stop();
      removeDir(alone.dir);
    }
  });
});
