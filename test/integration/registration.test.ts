/**
 * Code registration in batches (flow 1, docs/DESIGN.md §4.2), end to end with real members over
 * mTLS: a municipality's outbox (`processRegistrations`) blinds each My Number, has the issuer's and
 * then the gateway's `POST /codes/evaluate` multiply the batch by their key shares, finalizes the
 * seeds, and sends them to the issuer's `POST /codes/batch` → the gateway's
 * `POST /correspondence/batch`. Codes equal the single route's; one bad seed refuses a batch whole
 * and names its index; a conflict at the gateway fails its item alone; every hop logs one entry per
 * item; a batch the issuer cannot take stays pending, backs off, and is retried. Codes of the old
 * derivation are rekeyed (`processRekeys`). No My Number reaches the issuer or the gateway: not in
 * their databases, logs, or any message of the municipality's or the gateway's traffic.
 */
import { expect } from 'chai';
import { createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueryTypes } from 'sequelize';
import { blindInput, evaluateWithShares, isValidPoint, newOprfKey, peekJwt, POINT_RULE, sha256Hex, signPayload } from '../../shared/crypto.ts';
import { signMessage, verifySignedHead } from '../../shared/federation/messages.ts';
import { currentHead } from '../../shared/access-log/heads.ts';
import { findMyNumberSpans } from '../../shared/identifiers.ts';
import { createLogger } from '../../shared/platform/log.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { closeMemberServer, createMemberClient, createMemberServer, listenMember, memberIdentity, type MemberClient } from '../../shared/federation/member-http.ts';
import { GATEWAY_ID, ISSUER_ID, Typ } from '../../shared/federation/protocol.ts';
import { attestationLink, base32, deriveCode, deriveLinkId } from '../../services/issuer/service.ts';
import { CAPTURE_FILE } from '../../gateway/routing/capture.ts';
import type { FederationLink, MemberHttp } from '../../services/municipality/federation/link.ts';
import { processRegistrations, processRekeys } from '../../services/municipality/codes/service.ts';
import { randomMyNumber } from '../fixtures/factories.ts';
import { api } from '../fixtures/http.ts';
import { DEMO_MUNICIPALITIES, removeDir, startMunicipality, testConfig, type RunningMunicipality } from '../fixtures/municipality.ts';
import {
  answerHeadOf, blindSeeds, captureLog, gatewayTestConfig, headFrom, issuerTestConfig, registerCode, scriptedEvaluate, startGateway, startIssuer, startIssuerWithoutGateway,
  type CapturedLog, type RunningGateway, type RunningIssuer,
} from '../fixtures/members.ts';
import { testPki, type TestPki } from '../fixtures/pki.ts';
import { databaseContents } from '../fixtures/database.ts';
import { leakNeedles, scanForLeaks } from '../security/support.ts';

const TODA = DEMO_MUNICIPALITIES.toda.code;
const DAY = 86_400_000;

interface BatchAnswer {
  codes: ({ code: string; attestation: string } | { error: string; reason: string })[];
  type?: string;
  field?: string;
  rule?: string;
  errors?: { field: string; rule: string }[];
}

describe('registration in batches: municipality → issuer → gateway', () => {
  let pki: TestPki;
  let dir: string;
  let gateway: RunningGateway;
  let issuer: RunningIssuer;
  let issuerLog: CapturedLog;
  let gatewayLog: CapturedLog;
  let toda: MemberClient;
  let asIssuer: MemberClient;
  /** Toda without a federation configuration: no background worker, so each round here is the test's own. */
  let municipality: RunningMunicipality;
  let clerk: string;
  /** Every My Number used here, for the leak scan at the end. */
  const used: string[] = [];

  const myNumbers = (n: number) => {
    const list = Array.from({ length: n }, randomMyNumber);
    used.push(...list);
    return list;
  };
  const urls = () => ({ issuer: issuer.url, gateway: gateway.url });
  /** Member `id`'s log head (an empty log's), signed for `audience` as a registration call carries it (docs/PROTOCOL.md §3.0). */
  const headAs = (id: string, audience: string) => headFrom(pki.credentials(id).signer, audience);
  const seedsOf = (list: string[]) => blindSeeds(toda, urls(), list, pki.credentials(TODA).signer);
  /** Toda's POST /codes/batch, with Toda's signed head unless the body brings its own (`head: undefined` sends none). */
  const batch = async (body: object, requestId?: string) =>
    toda.postJson<BatchAnswer>(`${issuer.url}/codes/batch`, { head: await headAs(TODA, ISSUER_ID), ...body }, requestId ? { requestId } : {});
  const batchOf = async (list: string[], requestId?: string) => batch({ seeds: await seedsOf(list) }, requestId);
  const single = (myNumber: string) => registerCode(toda, urls(), myNumber, pki.credentials(TODA).signer);
  /** What a holder of both key shares computes: the test's knowledge, not any one member's. */
  const seedOf = (myNumber: string) => evaluateWithShares([issuer.config.OPRF_KEY, gateway.config.OPRF_KEY], myNumber);
  const linkOf = (myNumber: string) => deriveLinkId(issuer.config.LINK_KEY, seedOf(myNumber));
  const codeAt = (municipality: string, myNumber: string) => deriveCode(issuer.config.CODE_KEY, municipality, linkOf(myNumber));
  const codeAtToda = (myNumber: string) => codeAt(TODA, myNumber);
  /** Every body Toda's outbox sends and receives, for the leak scan. */
  const traffic: unknown[] = [];
  const recording: MemberHttp = {
    async postJson(url, body, options) {
      const res = await toda.postJson(url, body, options);
      traffic.push({ url, body, answer: res.body });
      return res;
    },
  };
  const correspondences = () => gateway.gateway.ctx.models.Correspondence.count();
  /** Plants a row at the gateway that the issuer's registration of `myNumber` will conflict with. */
  const plant = (row: { linkId: string; code: string }) =>
    gateway.gateway.ctx.models.Correspondence.create({ ...row, municipality: TODA, attestation: 'planted.by.test' });
  const logOf = (sequelize: typeof issuer.issuer.ctx.sequelize, requestId: string) => sequelize.query<{ seq: number; action: string; actorId: string; subject: string; outcome: string; reason: string | null }>(
    'SELECT seq, action, "actorId", subject, outcome, reason FROM access_log WHERE "requestId" = ? ORDER BY seq', { replacements: [requestId], type: QueryTypes.SELECT });
  /** Toda's link to the federation, with the issuer at `issuerUrl` (a dead port plays the issuer down). */
  const link = (issuerUrl: string): FederationLink => {
    const own = pki.credentials(TODA);
    return {
      self: TODA, signer: own.signer, decryptionKey: own.decryption.key, http: recording,
      // The issuer's and the gateway's signing keys, to read the heads they sign into their answers.
      peers: {
        signingKey: (id) => Promise.resolve({ key: createPublicKey(pki.credentials(id).signer.key), kid: pki.credentials(id).signer.kid }),
        encryptionKey: () => Promise.reject(new Error('not needed')),
      },
      gatewayUrl: gateway.url, issuerUrl, timeoutMs: 10_000, trust: { ca: own.ca, isRevoked: () => false },
    };
  };
  /** Residents registered at the counter; their internal ids in order. */
  const residents = async (list: string[]): Promise<string[]> => {
    const ids: string[] = [];
    for (const myNumber of list) {
      const res = await api('POST', `${municipality.url}/residents`, { token: clerk, body: {
        name: '戸田 一郎', kana: 'トダ イチロウ', birthDate: '1980-01-01', sex: 'male', address: '埼玉県戸田市上戸田1-1-1', myNumber,
      } });
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      const row = await municipality.ctx.models.Resident.findOne({ where: { addresseeNumber: res.body.addresseeNumber }, raw: true });
      ids.push(row!.id);
    }
    return ids;
  };
  const stateOf = async (ids: string[]) => {
    const rows = await municipality.ctx.models.Resident.findAll({ where: { id: ids }, raw: true });
    const attempts = await municipality.ctx.models.RegistrationAttempt.findAll({ where: { residentId: ids }, raw: true });
    return ids.map((id) => {
      const r = rows.find((x) => x.id === id)!;
      const a = attempts.find((x) => x.residentId === id);
      return { codeStatus: r.codeStatus, code: r.code ?? null, attempts: a?.attempts ?? 0, lastError: a?.lastError ?? null, nextAttemptAt: a?.nextAttemptAt ?? null };
    });
  };

  before(async function () {
    this.timeout(90_000);
    pki = testPki();
    dir = mkdtempSync(join(tmpdir(), 'hikitsugi-registration-'));
    gatewayLog = captureLog('gateway');
    issuerLog = captureLog('issuer');
    // The gateway captures every message it receives and answers (CAPTURE_DIR), for the leak scan at the end.
    gateway = await startGateway(gatewayTestConfig(pki, dir, { CHECKPOINT_INTERVAL_SECONDS: '0', CAPTURE_DIR: join(dir, 'capture') }), gatewayLog.logger);
    issuer = await startIssuer(issuerTestConfig(pki, dir, gateway.url, { CHECKPOINT_INTERVAL_SECONDS: '0' }), issuerLog.logger);
    toda = createMemberClient(pki.credentials(TODA));
    asIssuer = createMemberClient(pki.credentials(ISSUER_ID));
    const mdir = mkdtempSync(join(tmpdir(), 'hikitsugi-registration-toda-'));
    municipality = await startMunicipality(DEMO_MUNICIPALITIES.toda, { dir: mdir, config: testConfig(TODA, 'Toda', mdir, { CHECKPOINT_INTERVAL_SECONDS: '0' }) });
    clerk = await municipality.tokenFor('clerk');
  });

  after(async () => {
    toda?.close();
    asIssuer?.close();
    await municipality?.stop();
    if (municipality) removeDir(municipality.dir);
    await issuer?.stop();
    await gateway?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('issuer POST /codes/batch', () => {
    it('when a municipality sends a batch, then every My Number gets its code in order, equal to the single route\'s, each with its own attestation', async () => {
      const list = myNumbers(6);
      const before = await correspondences();
      const res = await batchOf(list);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.codes).to.have.length(list.length);
      expect(await correspondences()).to.equal(before + list.length);
      for (const [i, myNumber] of list.entries()) {
        const item = res.body.codes[i] as { code: string; attestation: string };
        const one = await single(myNumber);
        expect(one.status).to.equal(200);
        expect(item.code).to.equal(one.body.code);
        const { header, claims } = peekJwt(item.attestation);
        expect(header).to.include({ typ: 'hikitsugi-code-attestation+jws', kid: pki.credentials(ISSUER_ID).signer.kid });
        expect(claims).to.include({ iss: ISSUER_ID, municipality: TODA, code: item.code });
        expect(claims.link).to.equal(peekJwt(one.body.attestation).claims.link);
      }
      // The single route after the batch found every row there: nothing new.
      expect(await correspondences()).to.equal(before + list.length);
      expect(new Set(res.body.codes.map((c) => (c as { code: string }).code)).size).to.equal(list.length);
    });

    it('when a batch names one person twice, then both places get the same code and the gateway keeps one row', async () => {
      const [x, y] = myNumbers(2);
      const before = await correspondences();
      const res = await batchOf([x!, y!, x!]);
      expect(res.status).to.equal(200);
      const codes = res.body.codes.map((c) => (c as { code: string }).code);
      expect(codes[0]).to.equal(codes[2]);
      expect(codes[0]).not.to.equal(codes[1]);
      expect(await correspondences()).to.equal(before + 2);
    });

    it('when one seed of a batch is malformed, then the batch is refused whole with 400 validation naming seeds.<i>, and nothing is issued', async () => {
      const list = myNumbers(4);
      const seeds = await seedsOf(list);
      const sent = [seeds[0]!, seeds[1]!, 'not-a-seed', seeds[3]!];
      const before = await correspondences();
      const rid = `reg-invalid-${randomUUID()}`;
      const res = await batch({ seeds: sent }, rid);
      expect(res.status).to.equal(400);
      expect(res.headers['content-type']).to.match(/application\/problem\+json/);
      expect(res.body.type).to.match(/\/validation$/);
      expect(res.body).to.include({ field: 'seeds.2', rule: 'must be a base64url seed of 32 bytes' });
      expect(res.body.errors).to.deep.equal([{ field: 'seeds.2', rule: 'must be a base64url seed of 32 bytes' }]);
      expect(JSON.stringify(res.body)).not.to.contain('not-a-seed');
      expect(await correspondences()).to.equal(before);
      // One denied entry records the refusal, under the issuer's own request id (the caller's is not a correlation id); no code was issued.
      expect(await logOf(issuer.issuer.ctx.sequelize, rid)).to.deep.equal([]);
      expect(await logOf(issuer.issuer.ctx.sequelize, String(res.headers['x-request-id']))).to.have.length(1)
        .and.to.satisfy((rows: { outcome: string; reason: string; subject: string | null }[]) =>
          rows[0]!.outcome === 'denied' && rows[0]!.reason === 'invalid seeds.2' && rows[0]!.subject === null);
      for (const myNumber of [list[0]!, list[1]!, list[3]!]) {
        expect(await gateway.gateway.ctx.models.Correspondence.count({ where: { municipality: TODA, code: codeAtToda(myNumber) } })).to.equal(0);
      }
    });

    it('when the list is missing, empty, not a list, or too long, or holds a number, then 400 names the field', async () => {
      const seed = 'S'.repeat(43);
      const cases: [object, string][] = [
        [{}, 'seeds'],
        [{ seeds: [] }, 'seeds'],
        [{ seeds: 'abc' }, 'seeds'],
        [{ seeds: Array.from({ length: 501 }, () => seed) }, 'seeds'],
        [{ seeds: [seed, 123456789018] }, 'seeds.1'],
        // A My Number is not a seed: refused, never echoed.
        [{ seeds: ['123456789018'] }, 'seeds.0'],
      ];
      const before = await correspondences();
      for (const [body, field] of cases) {
        const res = await batch(body);
        expect(res.status, JSON.stringify(body).slice(0, 60)).to.equal(400);
        expect(res.body.type).to.match(/\/validation$/);
        expect(res.body.field).to.equal(field);
        expect(JSON.stringify(res.body)).not.to.contain('123456789018');
      }
      expect(await correspondences()).to.equal(before);
    });

    it('when a batch\'s signed head is missing, unsigned, or signed by another member, then it is refused naming head, and nothing is issued or kept', async () => {
      const TAWARAMOTO = DEMO_MUNICIPALITIES.tawaramoto.code;
      const seeds = await seedsOf(myNumbers(2));
      const { WitnessedHead, AccessLog } = issuer.issuer.ctx.models;
      const state = async () => ({
        correspondences: await correspondences(), heads: await WitnessedHead.count(),
        sent: await AccessLog.count({ where: { action: 'code.send' } }), issued: await AccessLog.count({ where: { action: 'code.issue', outcome: 'allowed' } }),
      });
      const before = await state();
      const [, claims] = (await headAs(TODA, ISSUER_ID)).split('.');
      const none = Buffer.from(JSON.stringify({ alg: 'none', typ: Typ.HEAD })).toString('base64url');
      const inTodasName = await signMessage({ aud: ISSUER_ID, jti: randomUUID(), head: { seq: 0, hash: '0'.repeat(64) } }, { ...pki.credentials(TAWARAMOTO).signer, id: TODA }, Typ.HEAD);
      const cases: [string, string | undefined, number, string][] = [
        ['missing', undefined, 400, 'validation'],
        ['unsigned (alg none, no signature)', `${none}.${claims}.`, 400, 'validation'],
        ['unsigned (alg none, a made-up signature)', `${none}.${claims}.${'A'.repeat(86)}`, 401, 'invalid-signature'],
        ['signed by Tawaramoto in its own name', await headAs(TAWARAMOTO, ISSUER_ID), 403, 'requester-mismatch'],
        ['signed by Tawaramoto in Toda\'s name', inTodasName, 401, 'invalid-signature'],
        ['signed by Toda for the gateway', await headAs(TODA, GATEWAY_ID), 401, 'invalid-signature'],
      ];
      for (const [what, head, status, type] of cases) {
        const res = await batch({ seeds, head });
        expect(res.status, what).to.equal(status);
        expect(res.headers['content-type'], what).to.match(/application\/problem\+json/);
        expect(res.body.type, what).to.match(new RegExp(`/${type}$`));
        expect(res.body.field, what).to.equal('head');
        expect(res.body.rule, what).to.be.a('string').and.not.equal('');
        // The refusal is logged, naming the field.
        const logged = await logOf(issuer.issuer.ctx.sequelize, String(res.headers['x-request-id']));
        expect(logged.map((r) => [r.outcome, r.reason]), what).to.deep.equal([['denied', 'invalid head']]);
      }
      expect(await state()).to.deep.equal(before);
      // The same seeds with Toda's own head go through.
      expect((await batch({ seeds })).status).to.equal(200);
    });

    it('when a member that is not a municipality sends a batch, then 403', async () => {
      const res = await asIssuer.postJson(`${issuer.url}/codes/batch`, { seeds: await seedsOf(myNumbers(1)) });
      expect(res.status).to.equal(403);
    });

    it('when an item conflicts at the gateway, then it alone fails with the reason and no code, and the others are issued', async () => {
      const [a, taken, b, moved] = myNumbers(4);
      // Another link holds `taken`'s code; `moved`'s link holds another code at Toda.
      await plant({ linkId: 'T'.repeat(43), code: codeAtToda(taken!) });
      await plant({ linkId: linkOf(moved!), code: 'A'.repeat(26) });
      const res = await batchOf([a!, taken!, b!, moved!]);
      expect(res.status).to.equal(200);
      expect(res.body.codes[0]).to.have.property('code', codeAtToda(a!));
      expect(res.body.codes[1]).to.deep.equal({ error: 'correspondence-conflict', reason: 'code_taken' });
      expect(res.body.codes[2]).to.have.property('code', codeAtToda(b!));
      expect(res.body.codes[3]).to.deep.equal({ error: 'correspondence-conflict', reason: 'link_has_other_code' });
      expect(JSON.stringify(res.body)).not.to.contain(codeAtToda(moved!));
      // The single route still answers a refused code as before: 503, retry later.
      const one = await single(taken!);
      expect(one.status).to.equal(503);
      expect(one.body.type).to.match(/gateway-unavailable$/);
    });

    it('when a batch is issued, then the issuer and the gateway each log one entry per item, in one run of their chain', async () => {
      const list = myNumbers(5);
      await plant({ linkId: 'U'.repeat(43), code: codeAtToda(list[3]!) });
      const rid = `reg-batch-${randomUUID()}`;
      const res = await batchOf(list, rid);
      expect(res.status).to.equal(200);
      const codes = list.map(codeAtToda);

      const logged = await logOf(issuer.issuer.ctx.sequelize, String(res.headers['x-request-id']));
      // The batch as sent, logged before the gateway heard of it (docs/PROTOCOL.md §6.1); then one entry per item.
      expect(logged.filter((r) => r.action === 'code.send').map((r) => r.outcome)).to.deep.equal(['allowed']);
      const atIssuer = logged.filter((r) => r.action !== 'code.send');
      expect(atIssuer.map((r) => r.subject)).to.deep.equal(codes);
      expect(atIssuer.every((r) => r.action === 'code.issue' && r.actorId === TODA)).to.equal(true);
      expect(atIssuer.map((r) => r.outcome)).to.deep.equal(['allowed', 'allowed', 'allowed', 'denied', 'allowed']);
      expect(atIssuer[3]!.reason).to.equal('gateway_refused_code_taken');
      expect(atIssuer.map((r) => r.seq - atIssuer[0]!.seq)).to.deep.equal([0, 1, 2, 3, 4]);

      // The gateway logs under its own id too: its entries are found by the codes they name.
      const atGateway = await gateway.gateway.ctx.sequelize.query<{ seq: number; action: string; actorId: string; subject: string; outcome: string; reason: string | null }>(
        `SELECT seq, action, "actorId", subject, outcome, reason FROM access_log WHERE action = 'correspondence.register' AND subject IN (${codes.map(() => '?').join(', ')}) ORDER BY seq`,
        { replacements: codes, type: QueryTypes.SELECT });
      expect(atGateway.map((r) => r.subject)).to.deep.equal(codes);
      expect(atGateway.every((r) => r.action === 'correspondence.register' && r.actorId === ISSUER_ID)).to.equal(true);
      expect(atGateway.map((r) => r.outcome)).to.deep.equal(['allowed', 'allowed', 'allowed', 'denied', 'allowed']);
      expect(atGateway[3]!.reason).to.equal('code_taken');
      expect(atGateway.map((r) => r.seq - atGateway[0]!.seq)).to.deep.equal([0, 1, 2, 3, 4]);
    });

    it('when the gateway cannot be reached, then the batch answers 503 with retryAfter, and the issuer logs every item denied', async () => {
      const lonelyDir = mkdtempSync(join(tmpdir(), 'hikitsugi-registration-lonely-'));
      const lonely = await startIssuerWithoutGateway(pki, lonelyDir, { GATEWAY_TIMEOUT_MS: '500', CHECKPOINT_INTERVAL_SECONDS: '0' });
      try {
        const res = await toda.postJson<{ type: string; retryAfter: number }>(`${lonely.url}/codes/batch`, { seeds: await seedsOf(myNumbers(3)), head: await headAs(TODA, ISSUER_ID) });
        expect(res.status).to.equal(503);
        expect(res.body.type).to.match(/gateway-unavailable$/);
        expect(res.body.retryAfter).to.be.a('number');
        const rows = await lonely.issuer.ctx.sequelize.query<{ outcome: string; reason: string }>("SELECT outcome, reason FROM access_log WHERE action = 'code.issue' ORDER BY seq", { type: QueryTypes.SELECT });
        expect(rows).to.deep.equal(Array(3).fill({ outcome: 'denied', reason: 'gateway_unavailable' }));
      } finally {
        await lonely.stop();
        rmSync(lonelyDir, { recursive: true, force: true });
      }
    });
  });

  describe('gateway POST /correspondence/batch', () => {
    const attested = async (municipality: string = TODA, code = base32(randomBytes(17)).slice(0, 26)) => ({
      linkId: Buffer.from(randomUUID() + randomUUID()).toString('base64url').slice(0, 43), municipality, code,
      attestation: await signPayload({ iss: ISSUER_ID, municipality, code, link: 'L'.repeat(43) }, { ...pki.credentials(ISSUER_ID).signer, typ: Typ.ATTESTATION }),
    });
    const register = async (registrations: unknown[], client = asIssuer, head?: string) =>
      client.postJson<{ results: { municipality: string; code: string; status: string; reason?: string }[]; head?: string; field?: string; rule?: string; type?: string }>(
        `${gateway.url}/correspondence/batch`, { registrations, head: head ?? await headAs(client === toda ? TODA : ISSUER_ID, GATEWAY_ID) });

    it('when the issuer sends new, repeated and conflicting items, then each gets its own result in order and only the conflict is refused', async () => {
      const fresh = await attested();
      const again = await attested();
      await register([again]);
      const conflicting = { ...(await attested()), code: again.code };
      conflicting.attestation = await signPayload({ iss: ISSUER_ID, municipality: TODA, code: again.code, link: 'L'.repeat(43) }, { ...pki.credentials(ISSUER_ID).signer, typ: Typ.ATTESTATION });
      const res = await register([fresh, again, conflicting, fresh]);
      expect(res.status).to.equal(200);
      expect(res.body.results).to.deep.equal([
        { municipality: TODA, code: fresh.code, status: 'created' },
        { municipality: TODA, code: again.code, status: 'unchanged' },
        { municipality: TODA, code: again.code, status: 'refused', reason: 'code_taken' },
        { municipality: TODA, code: fresh.code, status: 'unchanged' },
      ]);
      expect(await gateway.gateway.ctx.models.Correspondence.count({ where: { code: fresh.code } })).to.equal(1);
    });

    it('when one item carries a forged attestation or names an unknown municipality, then the batch is refused naming the item, and nothing is recorded', async () => {
      const good = await attested();
      const forged = { ...(await attested()), code: 'B'.repeat(26) };
      const before = await correspondences();
      const bad = await register([good, forged]);
      expect(bad.status).to.equal(400);
      expect(bad.body).to.include({ field: 'registrations.1.attestation', rule: 'must name the same municipality and code' });
      const unknown = await register([good, await attested('131016')]);
      expect(unknown.status).to.equal(400);
      expect(unknown.body.field).to.equal('registrations.1.municipality');
      const malformed = await register([good, { ...good, linkId: 'short' }]);
      expect(malformed.status).to.equal(400);
      expect(malformed.body.field).to.equal('registrations.1.linkId');
      expect(await correspondences()).to.equal(before);
    });

    it('when the issuer\'s signed head is missing or not the issuer\'s, then the batch is refused naming head, and nothing is recorded or kept', async () => {
      const good = await attested();
      const before = { correspondences: await correspondences(), heads: await gateway.gateway.ctx.models.WitnessedHead.count() };
      const missing = await asIssuer.postJson<{ type: string; field: string }>(`${gateway.url}/correspondence/batch`, { registrations: [good] });
      expect(missing.status).to.equal(400);
      expect(missing.body).to.include({ field: 'head' });
      for (const [head, status] of [[await headAs(TODA, GATEWAY_ID), 403], [await headAs(ISSUER_ID, ISSUER_ID), 401]] as const) {
        const res = await register([good], asIssuer, head);
        expect(res.status).to.equal(status);
        expect(res.body.field).to.equal('head');
      }
      expect({ correspondences: await correspondences(), heads: await gateway.gateway.ctx.models.WitnessedHead.count() }).to.deep.equal(before);
    });

    it('when the issuer sends a batch, then the gateway keeps the issuer\'s head with the hash of its signed statement, and answers with its own signed for the issuer', async () => {
      // The issuer's real head: one the gateway has not seen yet (the issuer logged since its last call).
      const head = await headFrom(pki.credentials(ISSUER_ID).signer, GATEWAY_ID, await currentHead(issuer.issuer.ctx.sequelize));
      const res = await register([await attested()], asIssuer, head);
      expect(res.status).to.equal(200);
      const kept = await gateway.gateway.ctx.models.WitnessedHead.findOne({ where: { member: ISSUER_ID, messageHash: sha256Hex(head) }, raw: true });
      expect(kept).to.include({ exchange: 'registration' });
      const answer = await verifySignedHead(res.body.head, (id) => Promise.resolve({ key: createPublicKey(pki.credentials(id).signer.key) }), GATEWAY_ID, ISSUER_ID);
      expect(answer.head.seq).to.be.a('number');
    });

    it('when a municipality posts a batch of correspondences, then 403', async () => {
      expect((await register([await attested()], toda)).status).to.equal(403);
    });
  });

  describe('the municipality\'s outbox (processRegistrations)', () => {
    it('when residents are due, then they go in batches and every one gets the code the single route gives', async () => {
      const list = myNumbers(7);
      const ids = await residents(list);
      const run = await processRegistrations(municipality.ctx, link(issuer.url), { batchSize: 3, concurrency: 2 });
      expect(run).to.include({ issued: 7, failed: 0, pending: 0 });
      // Three batches (3 + 3 + 1): the issuer logged these codes under three request ids.
      const calls = await issuer.issuer.ctx.sequelize.query<{ requestId: string }>(
        `SELECT DISTINCT "requestId" FROM access_log WHERE subject IN (${list.map(() => '?').join(', ')})`,
        { replacements: list.map(codeAtToda), type: QueryTypes.SELECT });
      expect(calls).to.have.length(3);
      const state = await stateOf(ids);
      for (const [i, myNumber] of list.entries()) {
        expect(state[i]).to.include({ codeStatus: 'issued', code: codeAtToda(myNumber), attempts: 0 });
        expect((await single(myNumber)).body.code).to.equal(state[i]!.code);
      }
    });

    it('when an item conflicts at the gateway, then that resident alone stays pending and backs off, and the rest of its batch is issued', async () => {
      const list = myNumbers(3);
      await plant({ linkId: 'V'.repeat(43), code: codeAtToda(list[1]!) });
      const ids = await residents(list);
      const run = await processRegistrations(municipality.ctx, link(issuer.url));
      expect(run).to.include({ issued: 2, failed: 1, pending: 1 });
      const [a, taken, b] = await stateOf(ids);
      expect(a).to.include({ codeStatus: 'issued', code: codeAtToda(list[0]!), attempts: 0 });
      expect(b).to.include({ codeStatus: 'issued', code: codeAtToda(list[2]!), attempts: 0 });
      expect(taken).to.include({ codeStatus: 'pending', code: null, attempts: 1, lastError: 'issuer refused the code: code_taken' });
      // Let the conflict go, so the later cases start from an empty outbox.
      await gateway.gateway.ctx.models.Correspondence.destroy({ where: { linkId: 'V'.repeat(43) } });
      expect((await processRegistrations(municipality.ctx, link(issuer.url), { now: new Date(Date.now() + DAY) })).pending).to.equal(0);
    });

    it('when the issuer is down, then every resident of the batch stays pending and backs off, and all are registered on a later round', async () => {
      const list = myNumbers(5);
      const ids = await residents(list);
      const now = new Date();
      const down = await processRegistrations(municipality.ctx, link('https://127.0.0.1:9'), { batchSize: 2, now });
      expect(down).to.include({ issued: 0, failed: 5, pending: 5 });
      for (const s of await stateOf(ids)) {
        expect(s).to.include({ codeStatus: 'pending', code: null, attempts: 1 });
        expect(s.lastError).to.match(/^issuer unreachable: /);
        expect(Date.parse(s.nextAttemptAt!)).to.be.greaterThan(now.getTime());
      }
      // Not before their backoff has passed, even with the issuer back.
      expect(await processRegistrations(municipality.ctx, link(issuer.url), { now })).to.include({ issued: 0, pending: 5 });
      const later = await processRegistrations(municipality.ctx, link(issuer.url), { now: new Date(now.getTime() + DAY) });
      expect(later).to.include({ issued: 5, failed: 0, pending: 0 });
      const state = await stateOf(ids);
      for (const [i, myNumber] of list.entries()) expect(state[i]).to.include({ codeStatus: 'issued', code: codeAtToda(myNumber) });
    });
  });

  describe('the outbox against issuers that refuse part of a batch, and against an impostor', () => {
    let scripted: Server;
    let scriptedUrl: string;
    const refuse = new Set<string>();
    let batchCalls = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    /** The scripted issuer's own key share: its seeds are those of (scriptedKey, the real gateway's share). */
    const scriptedKey = newOprfKey();
    const scriptedSeed = (myNumber: string) => evaluateWithShares([Buffer.from(scriptedKey, 'hex'), gateway.config.OPRF_KEY], myNumber);
    const fakeCode = (seed: string) => base32(Buffer.from(seed, 'base64url')).slice(0, 26);

    before(async () => {
      const logger = createLogger({ name: 'scripted-issuer', level: 'silent' });
      const app = createBaseApp(logger);
      app.use(memberIdentity({ directory: await pki.memberDirectory() }));
      app.post('/codes/evaluate', scriptedEvaluate(ISSUER_ID, scriptedKey));
      app.post('/codes/batch', async (req, res) => {
        batchCalls += 1;
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight -= 1;
        const list = req.body.seeds as string[];
        const errors = list.flatMap((m, i) => (refuse.has(m) ? [{ field: `seeds.${i}`, rule: 'must be a seed the issuer accepts' }] : []));
        if (errors.length) return void res.status(400).type('application/problem+json').send(JSON.stringify({ type: 'validation', status: 400, ...errors[0], errors }));
        res.json({ codes: list.map((m) => ({ code: fakeCode(m), attestation: 'x.y.z' })), head: await answerHeadOf(req, ISSUER_ID) });
      });
      app.use(notFoundHandler);
      app.use(errorHandler(logger));
      scripted = createMemberServer(app, pki.credentials(ISSUER_ID));
      scriptedUrl = await listenMember(scripted, 0);
    });

    after(async () => {
      scripted?.closeAllConnections();
      if (scripted) await closeMemberServer(scripted);
    });

    it('when the issuer names one seed of a batch, then that resident alone backs off and the rest of the batch is sent again at once', async () => {
      const list = myNumbers(4);
      refuse.add(scriptedSeed(list[1]!));
      const ids = await residents(list);
      batchCalls = 0;
      const run = await processRegistrations(municipality.ctx, link(scriptedUrl));
      expect(run).to.include({ issued: 3, failed: 1, pending: 1 });
      expect(batchCalls).to.equal(2);
      const state = await stateOf(ids);
      expect(state[1]).to.include({ codeStatus: 'pending', attempts: 1, lastError: 'issuer refused the seed' });
      for (const i of [0, 2, 3]) expect(state[i]).to.include({ codeStatus: 'issued', code: fakeCode(scriptedSeed(list[i]!)), attempts: 0 });
      refuse.clear();
      expect((await processRegistrations(municipality.ctx, link(scriptedUrl), { now: new Date(Date.now() + DAY) })).pending).to.equal(0);
    });

    it('when several batches are due, then no more than `concurrency` calls are in flight', async () => {
      const ids = await residents(myNumbers(8));
      maxInFlight = 0;
      batchCalls = 0;
      const run = await processRegistrations(municipality.ctx, link(scriptedUrl), { batchSize: 2, concurrency: 2 });
      expect(run).to.include({ issued: 8, pending: 0 });
      expect(batchCalls).to.equal(4);
      expect(maxInFlight).to.be.at.most(2);
      expect((await stateOf(ids)).every((s) => s.codeStatus === 'issued')).to.equal(true);
    });

    it('when the server at the issuer\'s address is another member, then no blinded point or seed is sent to it and the residents wait', async () => {
      // A member with a valid federation certificate (here the gateway's) answering where the issuer should be.
      const logger = createLogger({ name: 'impostor', level: 'silent' });
      const app = createBaseApp(logger);
      app.use(memberIdentity({ directory: await pki.memberDirectory() }));
      let received = 0;
      app.post(['/codes/evaluate', '/codes/batch'], (req, res) => { received += 1; res.json({ codes: [], evaluated: [] }); });
      const impostor = createMemberServer(app, pki.credentials('gateway'));
      const impostorUrl = await listenMember(impostor, 0);
      try {
        const ids = await residents(myNumbers(3));
        const run = await processRegistrations(municipality.ctx, link(impostorUrl));
        expect(run).to.include({ issued: 0, failed: 3 });
        expect(received).to.equal(0);
        for (const state of await stateOf(ids)) expect(state).to.include({ codeStatus: 'pending', attempts: 1 });
        expect((await stateOf(ids))[0]!.lastError).to.match(/^issuer unreachable/);
        // The real issuer, once back at that address, still registers them.
        expect((await processRegistrations(municipality.ctx, link(scriptedUrl), { now: new Date(Date.now() + DAY) })).pending).to.equal(0);
      } finally {
        impostor.closeAllConnections();
        await closeMemberServer(impostor);
      }
    });
  });

  describe('blind derivation: POST /codes/evaluate at the issuer and the gateway', () => {
    /** POST /codes/evaluate at `url`, with the asking member's head signed for the member there. */
    const evaluate = async (client: MemberClient, url: string, body: object, at = url === gateway.url ? GATEWAY_ID : ISSUER_ID) =>
      client.postJson<{ evaluated: string[]; type?: string; field?: string; rule?: string; retryAfter?: number }>(`${url}/codes/evaluate`, {
        head: await headAs(client === toda ? TODA : client === asIssuer ? ISSUER_ID : GATEWAY_ID, at), ...body,
      });

    it('when a code is issued, then it is the one both key shares give, and neither share alone gives it (nor its link)', async () => {
      const [m] = myNumbers(1);
      const res = await single(m!);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const withShares = (shares: Buffer[]) => deriveCode(issuer.config.CODE_KEY, TODA, deriveLinkId(issuer.config.LINK_KEY, evaluateWithShares(shares, m!)));
      expect(res.body.code).to.equal(withShares([issuer.config.OPRF_KEY, gateway.config.OPRF_KEY]));
      // Each member with only its own keys: the issuer (k_I and every HMAC key), the gateway (k_G, lent the issuer's HMAC keys too).
      expect(res.body.code).not.to.equal(withShares([issuer.config.OPRF_KEY]));
      expect(res.body.code).not.to.equal(withShares([gateway.config.OPRF_KEY]));
      // Nor does the old single-key derivation from the My Number itself.
      expect(res.body.code).not.to.equal(deriveCode(issuer.config.CODE_KEY, TODA, deriveLinkId(issuer.config.LINK_KEY, m!)));
      const row = await gateway.gateway.ctx.models.Correspondence.findOne({ where: { municipality: TODA, code: res.body.code }, raw: true });
      expect(row!.linkId).to.equal(linkOf(m!));
      expect(row!.linkId).not.to.equal(deriveLinkId(issuer.config.LINK_KEY, evaluateWithShares([issuer.config.OPRF_KEY], m!)));
    });

    it('when a point is malformed, off the curve, or not a point, then the issuer and the gateway answer 400 validation naming blinded.<i>, never 5xx', async () => {
      // A valid point: a blinded element made the way the outbox makes it.
      const valid = blindInput('123456789018').blinded;
      // An x with no point on P-256 (about half of all x are such): the curve equation has no y for it.
      const offCurve = (() => {
        const b = Buffer.from(valid, 'base64url');
        do b[32] = (b[32]! + 1) % 256; while (isValidPoint(b.toString('base64url')));
        return b.toString('base64url');
      })();
      const uncompressed = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]).toString('base64url');
      const cases: [object, string, string][] = [
        [{ blinded: [valid, offCurve] }, 'blinded.1', POINT_RULE],
        [{ blinded: [valid, Buffer.concat([Buffer.from([5]), Buffer.from(valid, 'base64url').subarray(1)]).toString('base64url')] }, 'blinded.1', POINT_RULE],
        [{ blinded: [uncompressed] }, 'blinded.0', POINT_RULE],
        [{ blinded: [Buffer.alloc(33).toString('base64url')] }, 'blinded.0', POINT_RULE],
        [{ blinded: [42] }, 'blinded.0', POINT_RULE],
        [{ blinded: [] }, 'blinded', 'must hold at least one point'],
        [{ blinded: Array.from({ length: 501 }, () => valid) }, 'blinded', 'must hold at most 500 points'],
        [{}, 'blinded', 'must be a list of points'],
      ];
      for (const url of [issuer.url, gateway.url]) {
        for (const [body, field, rule] of cases) {
          const res = await evaluate(toda, url, body);
          expect(res.status, `${url} ${field}`).to.equal(400);
          expect(res.headers['content-type']).to.match(/application\/problem\+json/);
          expect(res.body.type).to.match(/\/validation$/);
          expect(res.body).to.include({ field, rule });
        }
      }
      expect((await evaluate(toda, issuer.url, { blinded: [valid] })).body.evaluated).to.have.length(1);
    });

    it('when the issuer asks the gateway to evaluate, then 403 forbidden: only a municipality may, so the issuer cannot use k_G as an oracle', async () => {
      const res = await evaluate(asIssuer, gateway.url, { blinded: [blindInput('x').blinded] });
      expect(res.status).to.equal(403);
      expect(res.body.type).to.match(/\/forbidden$/);
    });

    it('when the gateway asks the issuer to evaluate, then 403 forbidden: only a municipality may, so the gateway cannot use k_I as an oracle', async () => {
      const asGateway = createMemberClient(pki.credentials(GATEWAY_ID));
      try {
        const evaluatedBefore = await issuer.issuer.ctx.models.AccessLog.count({ where: { action: 'code.evaluate', outcome: 'allowed' } });
        const res = await evaluate(asGateway, issuer.url, { blinded: [blindInput('x').blinded] });
        expect(res.status).to.equal(403);
        expect(res.body.type).to.match(/\/forbidden$/);
        expect(res.body.evaluated).to.equal(undefined);
        expect(await issuer.issuer.ctx.models.AccessLog.count({ where: { action: 'code.evaluate', outcome: 'allowed' } })).to.equal(evaluatedBefore);
      } finally {
        asGateway.close();
      }
    });

    it('when a municipality exceeds its evaluation budget at the issuer or the gateway, then 429 rate-limited with Retry-After, and its outbox waits as asked', async () => {
      const limitedDir = mkdtempSync(join(tmpdir(), 'hikitsugi-registration-limited-'));
      const limits = { MEMBER_EVALUATE_LIMIT: '2', MEMBER_EVALUATE_WINDOW_SECONDS: '3600', CHECKPOINT_INTERVAL_SECONDS: '0' };
      const limitedGateway = await startGateway(gatewayTestConfig(pki, limitedDir, limits));
      const limitedIssuer = await startIssuer(issuerTestConfig(pki, limitedDir, limitedGateway.url, limits));
      try {
        for (const [url, at] of [[limitedIssuer.url, ISSUER_ID], [limitedGateway.url, GATEWAY_ID]] as const) {
          const statuses: number[] = [];
          let last: Awaited<ReturnType<typeof evaluate>> | undefined;
          for (let i = 0; i < 3; i++) {
            last = await evaluate(toda, url, { blinded: [blindInput('x').blinded] }, at);
            statuses.push(last.status);
          }
          expect(statuses, url).to.deep.equal([200, 200, 429]);
          expect(last!.body.type).to.match(/\/rate-limited$/);
          expect(last!.body.field).to.equal('member');
          expect(Number(last!.headers['retry-after'])).to.be.greaterThan(0);
        }
        // The outbox takes the 429 as "not now": the resident keeps waiting, at least Retry-After.
        const ids = await residents(myNumbers(1));
        const now = new Date();
        const run = await processRegistrations(municipality.ctx, { ...link(limitedIssuer.url), gatewayUrl: limitedGateway.url }, { now });
        expect(run).to.include({ issued: 0, failed: 1 });
        const [state] = await stateOf(ids);
        expect(state).to.include({ codeStatus: 'pending', attempts: 1, lastError: 'issuer evaluation answered 429' });
        expect(Date.parse(state!.nextAttemptAt!) - now.getTime()).to.be.greaterThan(60_000);
        await processRegistrations(municipality.ctx, link(issuer.url), { now: new Date(now.getTime() + DAY) });
        expect((await stateOf(ids))[0]).to.include({ codeStatus: 'issued' });
      } finally {
        await limitedIssuer.stop();
        await limitedGateway.stop();
        rmSync(limitedDir, { recursive: true, force: true });
      }
    });

    it('when a batch is evaluated, then each member logs one code.evaluate entry with the count and no subject', async () => {
      const list = myNumbers(3);
      await seedsOf(list);
      for (const sequelize of [issuer.issuer.ctx.sequelize, gateway.gateway.ctx.sequelize]) {
        const [row] = await sequelize.query<{ action: string; actorId: string; subject: string | null; details: string }>(
          `SELECT action, "actorId", subject, details FROM access_log WHERE action = 'code.evaluate' ORDER BY seq DESC LIMIT 1`, { type: QueryTypes.SELECT });
        expect(row).to.include({ action: 'code.evaluate', actorId: TODA, subject: null });
        expect(JSON.parse(row!.details)).to.deep.equal({ points: 3 });
      }
    });
  });

  describe('migration: codes of the old derivation (processRekeys)', () => {
    const TAWARAMOTO = DEMO_MUNICIPALITIES.tawaramoto.code;
    const AKIOTA = DEMO_MUNICIPALITIES.akiota.code;
    /** The old derivation, from the My Number itself: what the issuer did before blind registration. */
    const legacyLink = (myNumber: string) => deriveLinkId(issuer.config.LINK_KEY, myNumber);
    const legacyCode = (municipality: string, myNumber: string) => deriveCode(issuer.config.CODE_KEY, municipality, legacyLink(myNumber));
    const attestationOf = (municipality: string, code: string, linkId: string) => signPayload(
      { iss: ISSUER_ID, municipality, code, link: attestationLink(issuer.config.ATTESTATION_KEY, linkId) }, { ...pki.credentials(ISSUER_ID).signer, typ: Typ.ATTESTATION });
    /** A row the old issuer registered: the gateway's table as it stood before the upgrade. */
    const legacyRow = async (municipality: string, myNumber: string) => gateway.gateway.ctx.models.Correspondence.create({
      linkId: legacyLink(myNumber), municipality, code: legacyCode(municipality, myNumber),
      attestation: await attestationOf(municipality, legacyCode(municipality, myNumber), legacyLink(myNumber)),
    });
    /** Toda's residents registered before the upgrade: issued codes of the old derivation (what migration 0009 marks `legacy`). */
    const legacyResidents = async (list: string[]) => {
      const ids = await residents(list);
      for (const [i, id] of ids.entries()) {
        await municipality.ctx.models.Resident.update({ code: legacyCode(TODA, list[i]!), codeStatus: 'issued', codeDerivation: 'legacy' }, { where: { id } });
      }
      return ids;
    };
    const derivationOf = async (ids: string[]) => {
      const rows = await municipality.ctx.models.Resident.findAll({ where: { id: ids }, raw: true });
      return ids.map((id) => rows.find((r) => r.id === id)!).map((r) => ({ code: r.code, codeStatus: r.codeStatus, codeDerivation: r.codeDerivation }));
    };

    it('when a person registered before the upgrade at Toda and Tawaramoto registers after it at Akiota, then Toda\'s rekey puts all three codes on one link with matching attestations, codes unchanged', async () => {
      const [p, q] = myNumbers(2);
      // Before: P at Tawaramoto and Toda, Q at Toda, all by the old derivation.
      await legacyRow(TAWARAMOTO, p!);
      await legacyRow(TODA, p!);
      await legacyRow(TODA, q!);
      const ids = await legacyResidents([p!, q!]);
      // After: P registers at Akiota, blind. Its row is on P's new link, alone: Toda and Akiota do not route yet.
      const akiota = createMemberClient(pki.credentials(AKIOTA));
      try {
        const atAkiota = await registerCode(akiota, urls(), p!, pki.credentials(AKIOTA).signer);
        expect(atAkiota.status, JSON.stringify(atAkiota.body)).to.equal(200);
        expect(atAkiota.body.code).to.equal(codeAt(AKIOTA, p!));
      } finally {
        akiota.close();
      }
      const rowsOf = async (myNumber: string) => (await gateway.gateway.ctx.models.Correspondence.findAll({
        where: { code: [legacyCode(TAWARAMOTO, myNumber), legacyCode(TODA, myNumber), codeAt(AKIOTA, myNumber)] }, raw: true,
      })).map((r) => ({ municipality: r.municipality, code: r.code, linkId: r.linkId, link: peekJwt(r.attestation).claims.link }));
      expect(new Set((await rowsOf(p!)).map((r) => r.linkId)).size).to.equal(2);

      const run = await processRekeys(municipality.ctx, link(issuer.url));
      expect(run).to.include({ rekeyed: 2, requeued: 0, failed: 0, pending: 0 });
      const rows = await rowsOf(p!);
      expect(rows.map((r) => r.municipality).sort()).to.deep.equal([TAWARAMOTO, TODA, AKIOTA].sort());
      // One link (the blind one), one attestation link: the gateway routes between them and A's check of both attestations holds.
      expect(new Set(rows.map((r) => r.linkId))).to.deep.equal(new Set([linkOf(p!)]));
      expect(new Set(rows.map((r) => r.link))).to.deep.equal(new Set([attestationLink(issuer.config.ATTESTATION_KEY, linkOf(p!))]));
      expect(rows.find((r) => r.municipality === TODA)!.code).to.equal(legacyCode(TODA, p!));
      expect(rows.find((r) => r.municipality === TAWARAMOTO)!.code).to.equal(legacyCode(TAWARAMOTO, p!));
      // Q moved alone; Toda keeps both codes, now marked blind.
      expect((await gateway.gateway.ctx.models.Correspondence.findOne({ where: { municipality: TODA, code: legacyCode(TODA, q!) }, raw: true }))!.linkId).to.equal(linkOf(q!));
      expect(await derivationOf(ids)).to.deep.equal([
        { code: legacyCode(TODA, p!), codeStatus: 'issued', codeDerivation: 'blind' },
        { code: legacyCode(TODA, q!), codeStatus: 'issued', codeDerivation: 'blind' },
      ]);
      // Each hop logged the move: code.rekey at the issuer, correspondence.rekey and .attest at the gateway.
      const [rekeyed] = await gateway.gateway.ctx.sequelize.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM access_log WHERE action = 'correspondence.rekey' AND subject = ?`, { replacements: [legacyCode(TODA, p!)], type: QueryTypes.SELECT });
      expect(Number(rekeyed!.n)).to.equal(1);
      const [attested] = await gateway.gateway.ctx.sequelize.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM access_log WHERE action = 'correspondence.attest' AND subject = ?`, { replacements: [legacyCode(TAWARAMOTO, p!)], type: QueryTypes.SELECT });
      expect(Number(attested!.n)).to.equal(1);
      const [issued] = await issuer.issuer.ctx.sequelize.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM access_log WHERE action = 'code.rekey' AND outcome = 'allowed' AND subject IN (?, ?)`, { replacements: [legacyCode(TODA, p!), legacyCode(TODA, q!)], type: QueryTypes.SELECT });
      expect(Number(issued!.n)).to.equal(2);
    });

    it('when a rekey is sent again, then nothing moves and the answer is unchanged (a retry after a failure completes the move)', async () => {
      const [p] = myNumbers(1);
      await legacyRow(TODA, p!);
      await legacyResidents([p!]);
      expect(await processRekeys(municipality.ctx, link(issuer.url))).to.include({ rekeyed: 1, pending: 0 });
      const [seed] = await seedsOf([p!]);
      const again = await toda.postJson<{ results: { code: string; status: string }[] }>(`${issuer.url}/codes/rekey`, { head: await headAs(TODA, ISSUER_ID), rekeys: [{ code: legacyCode(TODA, p!), seed }] });
      expect(again.status).to.equal(200);
      expect(again.body.results).to.deep.equal([{ code: legacyCode(TODA, p!), status: 'unchanged' }]);
    });

    it('when the issuer or the gateway is down, then legacy residents keep their code, back off, and are rekeyed on a later round', async () => {
      const [p] = myNumbers(1);
      await legacyRow(TODA, p!);
      const ids = await legacyResidents([p!]);
      const now = new Date();
      const down = await processRekeys(municipality.ctx, link('https://127.0.0.1:9'), { now });
      expect(down).to.include({ rekeyed: 0, failed: 1, pending: 1 });
      expect((await stateOf(ids))[0]).to.include({ codeStatus: 'issued', code: legacyCode(TODA, p!), attempts: 1 });
      expect(await processRekeys(municipality.ctx, link(issuer.url), { now: new Date(now.getTime() + DAY) })).to.include({ rekeyed: 1, pending: 0 });
    });

    it('when the gateway does not know a legacy code, then the resident is registered afresh (blind) and no resident is lost', async () => {
      const [p] = myNumbers(1);
      const ids = await legacyResidents([p!]);
      const run = await processRekeys(municipality.ctx, link(issuer.url));
      expect(run).to.include({ rekeyed: 0, requeued: 1, pending: 0 });
      expect((await derivationOf(ids))[0]).to.include({ codeStatus: 'pending' });
      expect(await processRegistrations(municipality.ctx, link(issuer.url))).to.include({ issued: 1, pending: 0 });
      expect(await derivationOf(ids)).to.deep.equal([{ code: codeAtToda(p!), codeStatus: 'issued', codeDerivation: 'blind' }]);
    });

    it('when a rekey names a code that is not the asker\'s or a malformed seed, then the gateway refuses the item or the issuer answers 400 validation naming rekeys.<i>.seed', async () => {
      const [p] = myNumbers(1);
      await legacyRow(TAWARAMOTO, p!);
      const [seed] = await seedsOf([p!]);
      // Tawaramoto's code asked by Toda: the gateway holds no such code under Toda.
      const foreign = await toda.postJson<{ results: { code: string; error?: string; reason?: string }[] }>(`${issuer.url}/codes/rekey`, { head: await headAs(TODA, ISSUER_ID), rekeys: [{ code: legacyCode(TAWARAMOTO, p!), seed }] });
      expect(foreign.status).to.equal(200);
      expect(foreign.body.results).to.deep.equal([{ code: legacyCode(TAWARAMOTO, p!), error: 'rekey-refused', reason: 'unknown_code' }]);
      expect((await gateway.gateway.ctx.models.Correspondence.findOne({ where: { municipality: TAWARAMOTO, code: legacyCode(TAWARAMOTO, p!) }, raw: true }))!.linkId).to.equal(legacyLink(p!));
      const bad = await toda.postJson<{ type: string; field: string; rule: string }>(`${issuer.url}/codes/rekey`, { head: await headAs(TODA, ISSUER_ID), rekeys: [{ code: legacyCode(TODA, p!), seed: p }] });
      expect(bad.status).to.equal(400);
      expect(bad.body.type).to.match(/\/validation$/);
      expect(bad.body).to.include({ field: 'rekeys.0.seed', rule: 'must be a base64url seed of 32 bytes' });
      expect(JSON.stringify(bad.body)).not.to.contain(p!);
    });
  });

  describe('afterwards', () => {
    it('when everything above has run, then no My Number, in any notation, is in the issuer\'s or the gateway\'s database, log or traffic', async () => {
      const capture = readFileSync(join(dir, 'capture', CAPTURE_FILE));
      const haystacks: Record<string, Buffer> = {
        issuerDb: await databaseContents(issuer.config),
        gatewayDb: await databaseContents(gateway.config),
        issuerLog: Buffer.from(issuerLog.text()),
        gatewayLog: Buffer.from(gatewayLog.text()),
        // What the gateway received and answered (every evaluation, registration, rekey and attestation), and what Toda's outbox sent and got.
        gatewayTraffic: capture,
        outboxTraffic: Buffer.from(JSON.stringify(traffic)),
      };
      expect(haystacks.gatewayDb!.toString('latin1')).to.contain('correspondence');
      expect(capture.toString('utf8')).to.contain('/codes/evaluate').and.to.contain('/correspondence/batch').and.to.contain('/correspondence/rekey');
      const sent = JSON.stringify(traffic);
      expect(sent).to.contain('/codes/evaluate').and.to.contain('/codes/batch').and.to.contain('/codes/rekey');
      expect(used.length).to.be.greaterThan(30);
      const needles = leakNeedles(used);
      const mine = new Set(used);
      for (const [where, bytes] of Object.entries(haystacks)) {
        expect(scanForLeaks(bytes, needles), `${where} holds a My Number or its hash`).to.deep.equal([]);
        // Spaced, hyphenated, full-width, dotted: any notation the log redaction knows.
        const spans = findMyNumberSpans(bytes.toString('utf8')).filter((span) => mine.has(span.myNumber));
        expect(spans, `${where} holds a My Number in some notation`).to.deep.equal([]);
      }
    });
  });
});
