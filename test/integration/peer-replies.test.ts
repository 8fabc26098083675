/**
 * The clients that call another member in the background — the registration outbox towards the
 * issuer, the correction outbox towards the gateway, the gateway's relay towards the recipient —
 * against a peer that misbehaves (test/fixtures/scripted-peer.ts: real mTLS, scripted replies).
 * docs/PROTOCOL.md §2: 408, 429, 5xx and an unreachable peer mean "not now": the work is kept and
 * retried later, after the peer's Retry-After when it sends one; any other 4xx is final. Each
 * client is driven through its public function, as its worker drives it.
 */
import { expect } from 'chai';
import { createPublicKey, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemberClient, type MemberClient } from '../../shared/federation/member-http.ts';
import { GATEWAY_ID, ISSUER_ID } from '../../shared/federation/protocol.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { processRegistrations } from '../../services/municipality/codes/service.ts';
import { processCorrectionOutbox } from '../../services/municipality/corrections/outbox.ts';
import { insertOutboxItems, listOutbox } from '../../services/municipality/corrections/model.ts';
import type { FederationLink } from '../../services/municipality/federation/link.ts';
import { deliverCorrectionNotices } from '../../gateway/notifications/service.ts';
import { findRelayItem, insertRelayItem } from '../../gateway/notifications/model.ts';
import { buildResident, postRecord } from '../fixtures/factories.ts';
import { api } from '../fixtures/http.ts';
import { gatewayTestConfig, startGateway, writeTestDirectory, type RunningGateway } from '../fixtures/members.ts';
import { DEMO_MUNICIPALITIES, removeDir, startMunicipality, testConfig, type RunningMunicipality } from '../fixtures/municipality.ts';
import { testPki, type TestPki } from '../fixtures/pki.ts';
import { MISBEHAVIOURS, startScriptedPeer, type PeerReply, type ScriptedPeer } from '../fixtures/scripted-peer.ts';
import { answerHeadOf, scriptedEvaluate } from '../fixtures/members.ts';

const TODA = DEMO_MUNICIPALITIES.toda.code;
const AKIOTA = DEMO_MUNICIPALITIES.akiota.code;
const TAWARAMOTO = DEMO_MUNICIPALITIES.tawaramoto.code;
const DAY = 86_400_000;
/** The first backoff of every outbox (shared/platform/backoff.ts): 2 s. */
const FIRST_BACKOFF_MS = 2000;

/** How long the client waits before the next attempt: at least the first backoff, at least the peer's Retry-After. */
const expectedWaitMs = (reply: PeerReply, capSeconds = Infinity) => {
  const retryAfter = typeof reply === 'object' ? Number(reply.headers?.['retry-after'] ?? 0) : 0;
  return Math.min(capSeconds * 1000, Math.max(FIRST_BACKOFF_MS, retryAfter * 1000));
};

/** A scripted member's own key share: it evaluates blinded points as the real issuer or gateway would (docs/DESIGN.md §4.2). */
const evaluating: PeerReply = scriptedEvaluate(GATEWAY_ID);

/** Codes of the issuer's alphabet (26 base32 characters), one per seed, as a healthy issuer answers; its evaluation too. */
const healthyIssuer: PeerReply = (req, res) => {
  if (req.path === '/codes/evaluate') return void scriptedEvaluate(ISSUER_ID)(req, res);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const code = () => Array.from({ length: 26 }, () => alphabet[Math.floor(Math.random() * 32)]).join('');
  void answerHeadOf(req, ISSUER_ID).then((head) => res.json({ codes: (req.body.seeds as string[]).map(() => ({ code: code(), attestation: 'x.y.z' })), head }));
};

/** An issuer that evaluates points properly and answers the batch of seeds with `reply`. */
const onBatch = (reply: PeerReply): PeerReply => (req, res) => {
  if (req.path === '/codes/evaluate') return void scriptedEvaluate(ISSUER_ID)(req, res);
  if (reply === 'reset') return void req.socket.destroy();
  if (typeof reply === 'function') return void reply(req, res);
  res.writeHead(reply.status, reply.headers ?? {});
  res.end(reply.body ?? '');
};

describe('clients of a peer that misbehaves: kept, retried after Retry-After, final only on a refusal (docs/PROTOCOL.md §2)', function () {
  this.timeout(120_000);
  let pki: TestPki;
  let toda: RunningMunicipality;
  let clerk: string;
  let todaClient: MemberClient;
  let issuer: ScriptedPeer;
  let gatewayPeer: ScriptedPeer;

  /** Toda's link to the federation with the scripted issuer and gateway (no background workers: each round is the test's). */
  const link = (): FederationLink => {
    const own = pki.credentials(TODA);
    return {
      self: TODA, signer: own.signer, decryptionKey: own.decryption.key, http: todaClient,
      // The signing keys read the heads the issuer and the gateway sign into their answers (docs/PROTOCOL.md §3.0).
      peers: {
        signingKey: (id) => Promise.resolve({ key: createPublicKey(pki.credentials(id).signer.key), kid: pki.credentials(id).signer.kid }),
        encryptionKey: (id) => Promise.resolve(pki.credentials(id).encryption),
      },
      gatewayUrl: gatewayPeer.url, issuerUrl: issuer.url, timeoutMs: 10_000, trust: { ca: own.ca, isRevoked: () => false },
    };
  };

  /** A resident registered at Toda's counter; its internal id. */
  const resident = async (): Promise<{ id: string; addresseeNumber: string }> => {
    const res = await api('POST', `${toda.url}/residents`, { token: clerk, body: buildResident() });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    const row = await toda.ctx.models.Resident.findOne({ where: { addresseeNumber: res.body.addresseeNumber }, raw: true });
    return { id: row!.id, addresseeNumber: res.body.addresseeNumber };
  };

  const attemptOf = async (residentId: string) => {
    const row = await toda.ctx.models.RegistrationAttempt.findOne({ where: { residentId }, raw: true });
    const held = await toda.ctx.models.Resident.findOne({ where: { id: residentId }, raw: true });
    return { codeStatus: held!.codeStatus, attempts: row?.attempts ?? 0, lastError: row?.lastError ?? null, nextAttemptAt: row ? Date.parse(row.nextAttemptAt) : null };
  };

  before(async () => {
    pki = testPki();
    const dir = mkdtempSync(join(tmpdir(), 'hikitsugi-peers-toda-'));
    toda = await startMunicipality(DEMO_MUNICIPALITIES.toda, { dir, config: testConfig(TODA, 'Toda', dir, { CHECKPOINT_INTERVAL_SECONDS: '0' }) });
    clerk = await toda.tokenFor('clerk');
    todaClient = createMemberClient(pki.credentials(TODA));
    issuer = await startScriptedPeer(pki, ISSUER_ID);
    gatewayPeer = await startScriptedPeer(pki, GATEWAY_ID);
  });

  after(async () => {
    todaClient?.close();
    await issuer?.close();
    await gatewayPeer?.close();
    await toda?.stop();
    if (toda) removeDir(toda.dir);
  });

  describe('the registration outbox, towards the issuer', () => {
    // The points go through the issuer and then the gateway before any seed reaches the issuer.
    beforeEach(() => gatewayPeer.answer(evaluating));

    for (const [label, reply] of Object.entries(MISBEHAVIOURS)) {
      it(`when the issuer answers with ${label}, then the resident keeps waiting, backs off at least as long as asked, and gets a code once the issuer answers`, async () => {
        const { id } = await resident();
        issuer.answer(onBatch(reply));
        const before = Date.now();
        const run = await processRegistrations(toda.ctx, link());
        expect(run).to.include({ issued: 0 });
        const waiting = await attemptOf(id);
        expect(waiting).to.include({ codeStatus: 'pending', attempts: 1 });
        expect(waiting.lastError).to.equal(reply === 'reset' ? 'issuer unreachable: peer-unavailable' : `issuer answered ${(reply as { status: number }).status}`);
        expect(waiting.nextAttemptAt! - before, 'wait before the next attempt (ms)').to.be.at.least(expectedWaitMs(reply));
        // Not due again before then: a round now leaves it alone.
        issuer.answer(healthyIssuer);
        await processRegistrations(toda.ctx, link());
        expect(await attemptOf(id)).to.include({ codeStatus: 'pending', attempts: 1 });
        await processRegistrations(toda.ctx, link(), { now: new Date(Date.now() + DAY) });
        expect(await attemptOf(id)).to.include({ codeStatus: 'issued' });
      });
    }

    it('when the issuer answers 200 with a body that is not JSON, then no code is taken from it and the resident waits', async () => {
      const { id } = await resident();
      issuer.answer(onBatch({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"codes":[{"code":"AAAA' }));
      await processRegistrations(toda.ctx, link());
      expect(await attemptOf(id)).to.include({ codeStatus: 'pending', attempts: 1, lastError: 'issuer answered 200' });
      issuer.answer(healthyIssuer);
      await processRegistrations(toda.ctx, link(), { now: new Date(Date.now() + DAY) });
      expect(await attemptOf(id)).to.include({ codeStatus: 'issued' });
    });
  });

  describe('the correction outbox, towards the gateway', () => {
    /** A notice to Akiota about a record of a resident with a code, queued as a correction queues it; its outbox id. */
    const queueNotice = async (): Promise<string> => {
      const subject = await resident();
      const record = await postRecord(toda, clerk, subject.addresseeNumber);
      expect(record.status, JSON.stringify(record.body)).to.equal(201);
      issuer.answer(healthyIssuer);
      gatewayPeer.answer(evaluating);
      await processRegistrations(toda.ctx, link(), { now: new Date(Date.now() + DAY) });
      expect(await attemptOf(subject.id)).to.include({ codeStatus: 'issued' });
      const id = randomUUID();
      await inTransaction(toda.ctx.sequelize, (t) => insertOutboxItems(toda.ctx.models.CorrectionOutbox, [{
        id, residentId: subject.id, recordId: record.body.recordId, version: 1, recipient: AKIOTA, purpose: 'next-dose-scheduling', change: 'corrected',
        releaseRequestId: `release-${id}`, nextAttemptAt: new Date().toISOString(),
      }], t));
      return id;
    };
    const itemOf = async (id: string) => {
      const item = (await listOutbox(toda.ctx.models.CorrectionOutbox, undefined, 1000)).items.find((i) => i.id === id)!;
      return { ...item, nextAttemptAt: Date.parse(item.nextAttemptAt) };
    };
    const accepted: PeerReply = (_req, res) => { res.status(202).json({ status: 'pending' }); };

    for (const [label, reply] of Object.entries(MISBEHAVIOURS)) {
      it(`when the gateway answers with ${label}, then the notice stays pending, backs off at least as long as asked, and is sent once the gateway answers`, async () => {
        const id = await queueNotice();
        gatewayPeer.answer(reply);
        const before = Date.now();
        const run = await processCorrectionOutbox(toda.ctx, link());
        expect(run).to.include({ sent: 0, refused: 0 });
        const waiting = await itemOf(id);
        expect(waiting).to.include({ status: 'pending', attempts: 1 });
        expect(waiting.lastError).to.equal(reply === 'reset' ? 'gateway unreachable: peer-unavailable' : `gateway answered ${(reply as { status: number }).status}`);
        expect(waiting.nextAttemptAt - before, 'wait before the next attempt (ms)').to.be.at.least(expectedWaitMs(reply));
        gatewayPeer.answer(accepted);
        await processCorrectionOutbox(toda.ctx, link(), { now: new Date(Date.now() + DAY) });
        expect(await itemOf(id)).to.include({ status: 'sent', attempts: 2 });
      });
    }

    it('when the gateway refuses a notice with a 4xx problem, or with a 4xx whose body is not JSON, then the notice is refused for good and logged, never retried', async () => {
      const named = await queueNotice();
      gatewayPeer.answer({ status: 422, headers: { 'content-type': 'application/problem+json' }, body: '{"type":"https://hikitsugi.example/problems/not-registered-at-recipient","status":422}' });
      await processCorrectionOutbox(toda.ctx, link());
      expect(await itemOf(named)).to.include({ status: 'refused', attempts: 1, lastError: 'not-registered-at-recipient' });
      const unreadable = await queueNotice();
      gatewayPeer.answer({ status: 400, headers: { 'content-type': 'application/json' }, body: '{"type":' });
      await processCorrectionOutbox(toda.ctx, link());
      expect(await itemOf(unreadable)).to.include({ status: 'refused', attempts: 1, lastError: 'unknown' });
      const calls = gatewayPeer.received.length;
      await processCorrectionOutbox(toda.ctx, link(), { now: new Date(Date.now() + DAY) });
      expect(gatewayPeer.received.length, 'a refused notice is not sent again').to.equal(calls);
      const logged = await toda.ctx.models.AccessLog.findAll({ where: { requestId: [named, unreadable] }, raw: true });
      expect(logged.map((e) => [e.action, e.outcome, e.reason]).sort()).to.deep.equal([
        ['exchange.correction.send', 'denied', 'not-registered-at-recipient'], ['exchange.correction.send', 'denied', 'unknown'],
      ].sort());
    });
  });

  describe('the gateway\'s correction relay, towards the recipient', () => {
    let gateway: RunningGateway;
    let recipient: ScriptedPeer;
    let dir: string;

    /** A notice of Tawaramoto for Toda, accepted for relay as acceptCorrectionNotice stores it; its relay key. */
    const queueRelay = async () => {
      const key = { issuer: TAWARAMOTO, recipient: TODA, sourceRecordId: randomUUID(), sourceVersion: 2, purpose: 'next-dose-scheduling' };
      await inTransaction(gateway.gateway.ctx.sequelize, (t) => insertRelayItem(gateway.gateway.ctx.models.CorrectionRelay, {
        id: randomUUID(), ...key, noticeJti: randomUUID(), requestId: `relay-${randomUUID()}`, sourceCode: 'A'.repeat(26), change: 'corrected',
        notice: 'eyJhbGciOiJQUzI1NiJ9.e30.c2lnbmVk', expiresAt: Math.floor(Date.now() / 1000) + 2 * 3600, nextAttemptAt: new Date().toISOString(),
      }, t));
      return key;
    };
    const itemOf = async (key: Awaited<ReturnType<typeof queueRelay>>) => {
      const item = (await findRelayItem(gateway.gateway.ctx.models.CorrectionRelay, key))!;
      return { ...item, nextAttemptAt: Date.parse(item.nextAttemptAt) };
    };
    const applied: PeerReply = (_req, res) => { res.json({ status: 'applied' }); };

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'hikitsugi-peers-gateway-'));
      mkdirSync(join(dir, 'gateway'), { recursive: true });
      recipient = await startScriptedPeer(pki, TODA);
      const config = gatewayTestConfig(pki, join(dir, 'gateway'), { CHECKPOINT_INTERVAL_SECONDS: '0', CORRECTION_DELIVERY_INTERVAL_SECONDS: '3600' });
      writeTestDirectory(pki, config.DIRECTORY_FILE, { [TODA]: recipient.url });
      gateway = await startGateway(config);
    });

    after(async () => {
      await gateway?.stop();
      await recipient?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    for (const [label, reply] of Object.entries(MISBEHAVIOURS)) {
      it(`when the recipient answers with ${label}, then the notice stays pending, backs off at least as long as asked, and is delivered once the recipient answers`, async () => {
        const key = await queueRelay();
        recipient.answer(reply);
        const before = Date.now();
        const round = await deliverCorrectionNotices(gateway.gateway.ctx);
        expect(round).to.include({ delivered: 0, refused: 0, retrying: 1 });
        const waiting = await itemOf(key);
        expect(waiting).to.include({ status: 'pending', attempts: 1 });
        expect(waiting.lastError).to.equal(reply === 'reset' ? 'ECONNRESET' : `recipient answered ${(reply as { status: number }).status}`);
        expect(waiting.nextAttemptAt - before, 'wait before the next attempt (ms)').to.be.at.least(expectedWaitMs(reply, gateway.config.CORRECTION_RETRY_MAX_SECONDS));
        recipient.answer(applied);
        await deliverCorrectionNotices(gateway.gateway.ctx, new Date(Date.now() + DAY / 24));
        expect(await itemOf(key)).to.include({ status: 'delivered', attempts: 2, notice: null });
      });
    }

    it('when the recipient refuses a notice with a 4xx, then the relay ends it as refused and clears the stored notice', async () => {
      const key = await queueRelay();
      recipient.answer({ status: 409, headers: { 'content-type': 'application/problem+json' }, body: '{"type":"https://hikitsugi.example/problems/stale-version","status":409}' });
      const round = await deliverCorrectionNotices(gateway.gateway.ctx);
      expect(round).to.include({ refused: 1, retrying: 0 });
      expect(await itemOf(key)).to.include({ status: 'refused', attempts: 1, lastError: 'recipient_refused:stale-version', notice: null });
    });
  });
});
