/**
 * The gateway end to end over real mTLS: a requesting municipality (Toda) signs queries with its
 * own key, the real issuer registers codes, the real gateway routes, and small answering servers
 * stand in for the source municipalities. The answering servers verify forwards the way
 * docs/PROTOCOL.md says a municipality must (both signatures, attestations, consent, the sealed
 * identity check) and answer with records signed by the source and encrypted for the requester.
 */
import { expect } from 'chai';
import { createPublicKey, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueryTypes } from 'sequelize';
import { checkLegalBasis } from '../../shared/consent-policy.ts';
import { decryptWith, jose, peekJwt, sha256Hex, SIGNING_ALG, verifyPayload } from '../../shared/crypto.ts';
import { createDirectoryClient, directoryFromEntries, type Directory } from '../../shared/federation/directory.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { createLogger } from '../../shared/platform/log.ts';
import {
  closeMemberServer, createMemberClient, createMemberServer, listenMember, memberIdentity, memberOf, type MemberClient,
} from '../../shared/federation/member-http.ts';
import { companionDigest, companionMatches, openMessage, sealMessage, signMessage, verifyMessage } from '../../shared/federation/messages.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import {
  answerClaimsSchema, attestationSchema, forwardClaimsSchema, GATEWAY_ID, ISSUER_ID, queryClaimsSchema, recordsClaimsSchema,
  sealedIdentitiesSchema, Typ, type AnswerClaims, type AnswerResult, type ReleasedSubject, type SourceAnswer, type ConsentTerms, type DirectoryEntry, type QueryResponse, type QuerySubject,
} from '../../shared/federation/protocol.ts';
import type { MemberCredentials } from '../../shared/federation/pki.ts';
import {
  captureLog, gatewayTestConfig, issuerTestConfig, startGateway, startIssuer, writeTestDirectory,
  type CapturedLog, type RunningGateway, type RunningIssuer,
} from '../fixtures/members.ts';
import { copyTestPki, foreignCredentials, type OwnTestPki, type TestPki } from '../fixtures/pki.ts';
import { databaseContents } from '../fixtures/database.ts';
import { EMPTY_HEAD, OPAQUE_SEALED } from '../fixtures/factories.ts';
import { rejectionOf } from '../fixtures/refusals.ts';
import { registerCode } from '../fixtures/members.ts';

const TODA = '112241';
const TAWARAMOTO = '293610';
const AKIOTA = '343692';
const OFFLINE = '131016';

interface Person {
  myNumber: string;
  birthDate: string;
  sex: 'male' | 'female';
  kana: string;
  records: { id: string; version: number; vaccine: string; date: string }[];
}

const PEOPLE = {
  hanako: { myNumber: completeMyNumber('20000000001'), birthDate: '1990-04-01', sex: 'female', kana: 'ヤマダ ハナコ', records: [
    { id: 'rec-h1', version: 1, vaccine: 'MR', date: '1991-05-01' }, { id: 'rec-h2', version: 2, vaccine: 'DPT-IPV', date: '1991-06-01' }] },
  taro: { myNumber: completeMyNumber('20000000002'), birthDate: '1985-12-24', sex: 'male', kana: 'スズキ タロウ', records: [
    { id: 'rec-t1', version: 1, vaccine: 'BCG', date: '1986-03-01' }] },
  jiro: { myNumber: completeMyNumber('20000000003'), birthDate: '2001-01-01', sex: 'male', kana: 'サトウ ジロウ', records: [] },
  saburo: { myNumber: completeMyNumber('20000000004'), birthDate: '1970-07-07', sex: 'male', kana: 'タナカ サブロウ', records: [] },
  shiro: { myNumber: completeMyNumber('20000000005'), birthDate: '1999-09-09', sex: 'male', kana: 'イトウ シロウ', records: [] },
} satisfies Record<string, Person>;
type Name = keyof typeof PEOPLE;

/* ---------- a stand-in answering municipality (the real one answers in the e2e suites) ---------- */

interface Source {
  id: string;
  url: string;
  server: Server;
  /** Forwards received, as compact JWS, in order. */
  received: string[];
  requestIds: string[];
  /** Replies sent back: the compact answer and the records envelope beside it. */
  answers: SourceAnswer[];
  residents: Map<string, Person>;
  /** `unnamed-records`: a genuine records envelope beside the answer, but not the one the answer names. */
  mode: 'normal' | 'hang' | 'garbage' | 'error' | 'slow' | 'unnamed-records';
  inFlight: number;
  maxInFlight: number;
  directory?: Directory;
  stop(): Promise<void>;
}

async function startSource(pki: TestPki, id: string): Promise<Source> {
  const creds = pki.credentials(id);
  const logger = createLogger({ name: `source-${id}`, level: 'silent' });
  const app = createBaseApp(logger, { bodyLimit: '16mb' });
  app.use(memberIdentity({ directory: await pki.memberDirectory() }));
  const source: Source = {
    id, url: '', server: undefined as unknown as Server, received: [], requestIds: [], answers: [], residents: new Map(), mode: 'normal',
    inFlight: 0, maxInFlight: 0, stop: async () => {},
  };
  app.post('/federation/record-requests', async (req, res) => {
    if (memberOf(req).id !== GATEWAY_ID) return void res.status(403).json({ type: 'forbidden' });
    source.received.push(String(req.body.forward));
    source.requestIds.push(String(req.get('x-request-id')));
    if (source.mode === 'hang') return;
    if (source.mode === 'garbage') return void res.json({ answer: 'not.a.jws' });
    if (source.mode === 'error') return void res.status(500).json({ type: 'internal' });
    source.inFlight += 1;
    source.maxInFlight = Math.max(source.maxInFlight, source.inFlight);
    try {
      if (source.mode === 'slow') await new Promise((r) => setTimeout(r, 150));
      const reply = await answerForward(creds, source, String(req.body.forward), req.body.sealed as string | undefined);
      source.answers.push(reply);
      if (source.mode === 'unnamed-records' && reply.records) {
        // The same records sealed again: a valid envelope for B, but another digest.
        const claims = await openMessage(reply.records, pki.credentials(TODA).decryption.key, recordsClaimsSchema, {
          key: createPublicKey(creds.signer.key), issuer: id, audience: TODA, typ: Typ.RECORDS,
        });
        const { iat: _iat, exp: _exp, iss: _iss, ...again } = claims;
        return void res.json({ answer: reply.answer, records: await sealMessage(again, creds.signer, Typ.RECORDS, await source.directory!.encryptionKey(TODA)) });
      }
      res.json(reply);
    } finally {
      source.inFlight -= 1;
    }
  });
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  source.server = createMemberServer(app, creds);
  source.url = await listenMember(source.server, 0);
  source.stop = async () => {
    source.server.closeAllConnections();
    await closeMemberServer(source.server);
  };
  return source;
}

/** What A must check before releasing anything (docs/PROTOCOL.md, "What A checks"). */
async function answerForward(creds: MemberCredentials, source: Source, compact: string, sealedPart: string | undefined): Promise<SourceAnswer> {
  const directory = source.directory!;
  const forward = await verifyMessage(compact, forwardClaimsSchema, {
    key: (await directory.signingKey(GATEWAY_ID)).key, issuer: GATEWAY_ID, audience: source.id, typ: Typ.FORWARD,
  });
  const requester = String(peekJwt(forward.query).claims.iss);
  const requesterKey = (await directory.signingKey(requester)).key;
  const query = await verifyMessage(forward.query, queryClaimsSchema, { key: requesterKey, issuer: requester, audience: GATEWAY_ID, typ: Typ.QUERY });
  if (query.rid !== forward.rid) throw new Error('rid differs');
  const issuerKey = (await directory.signingKey(ISSUER_ID)).key;
  if (!companionMatches(sealedPart, query.sealedDigest)) throw new Error('sealed part not the one the query names');
  const sealed = await openMessage(sealedPart!, creds.decryption.key, sealedIdentitiesSchema, {
    key: requesterKey, issuer: requester, audience: source.id, typ: Typ.SEALED_IDENTITIES,
  });
  const results: AnswerResult[] = [];
  const released: ReleasedSubject[] = [];
  for (const f of forward.subjects) {
    const s = query.subjects.find((x) => x.ref === f.ref);
    const result = (status: AnswerResult['status'], reason?: string): AnswerResult => ({ ref: f.ref, status, ...(reason ? { reason } : {}) });
    if (!s || s.source !== source.id) { results.push(result('denied', 'not_for_this_source')); continue; }
    const verdict = checkLegalBasis(s, query);
    if (verdict.status !== 'ok') { results.push(result(verdict.status, verdict.reason)); continue; }
    const theirs = attestationSchema.parse(await verifyPayload(f.requesterAttestation, issuerKey, Typ.ATTESTATION));
    const ours = attestationSchema.parse(await verifyPayload(f.sourceAttestation, issuerKey, Typ.ATTESTATION));
    if (theirs.municipality !== requester || theirs.code !== s.sub || ours.municipality !== source.id || ours.code !== f.code || theirs.link !== ours.link) {
      results.push(result('denied', 'attestation_invalid'));
      continue;
    }
    const person = source.residents.get(f.code);
    if (!person) { results.push(result('not_found', 'no_resident_with_code')); continue; }
    const identity = sealed.identities.find((i) => i.ref === s.ref);
    if (sealed.jti !== query.jti || !identity) { results.push(result('denied', 'sealed_identity_not_bound')); continue; }
    if (identity.birthDate !== person.birthDate || identity.sex !== person.sex || identity.kana !== person.kana) {
      results.push(result('identity_mismatch', 'identity_mismatch'));
      continue;
    }
    const bundle = {
      resourceType: 'Bundle' as const, type: 'collection',
      entry: person.records.map((r) => ({ resource: {
        resourceType: 'Immunization', id: r.id, meta: { versionId: String(r.version) }, status: 'completed',
        vaccineCode: { text: r.vaccine }, occurrenceDateTime: r.date,
      } })),
    };
    released.push({ ref: s.ref, sub: s.sub, bundle });
    results.push({ ref: f.ref, status: 'ok' });
  }
  const records = released.length === 0 ? undefined : await sealMessage({ aud: requester, jti: randomUUID(), rid: query.rid, queryJti: query.jti, purpose: query.purpose, subjects: released },
    creds.signer, Typ.RECORDS, await directory.encryptionKey(requester));
  const answer = await signMessage({ aud: requester, jti: randomUUID(), rid: query.rid, queryJti: query.jti, results, ...(records ? { recordsDigest: companionDigest(records) } : {}), head: EMPTY_HEAD }, creds.signer, Typ.ANSWER);
  return records ? { answer, records } : { answer };
}

/* ---------- the requesting side (B = Toda) ---------- */

interface SubjectSpec {
  ref?: string;
  who: Name;
  source: string;
  /** Use another municipality's code instead of Toda's own. */
  codeOf?: string;
  legalBasis?: QuerySubject['legalBasis'];
  consent?: Partial<ConsentTerms> | null;
  exception?: QuerySubject['exception'];
  identity?: Partial<Pick<Person, 'birthDate' | 'sex' | 'kana'>>;
}

describe('gateway: routing a cross-municipality query', () => {
  let pki: OwnTestPki;
  let dir: string;
  let gateway: RunningGateway;
  let issuer: RunningIssuer;
  let gatewayLog: CapturedLog;
  let tawaramoto: Source;
  let akiota: Source;
  let todaClient: MemberClient;
  let todaDirectory: Directory;
  const codes = new Map<string, string>(); // `${municipality}:${name}` → code
  const sentQueries: string[] = [];
  /** The sealed part of each query built here, which travels beside it (docs/PROTOCOL.md §3.11). */
  const sealedOf = new Map<string, string>();
  const responses: QueryResponse[] = [];

  const todaCreds = () => pki.credentials(TODA);
  const code = (municipality: string, who: Name) => codes.get(`${municipality}:${who}`)!;

  async function register(municipality: string, who: Name): Promise<void> {
    const client = createMemberClient(pki.credentials(municipality));
    try {
      // The seed derived blind (issuer, then gateway), then the code for it (docs/DESIGN.md §4.2).
      const res = await registerCode(client, { issuer: issuer.url, gateway: gateway.url }, PEOPLE[who].myNumber, pki.credentials(municipality).signer);
      expect(res.status).to.equal(200);
      codes.set(`${municipality}:${who}`, res.body.code);
    } finally {
      client.close();
    }
  }

  function consentFor(spec: SubjectSpec): ConsentTerms {
    const now = Date.now();
    return {
      id: `consent-${spec.who}`, scope: 'vaccination-history', purpose: 'next-dose-scheduling', sources: [spec.source],
      givenAt: new Date(now - 86_400_000).toISOString(), expiresAt: new Date(now + 30 * 86_400_000).toISOString(), method: 'written',
      ...spec.consent,
    } as ConsentTerms;
  }

  /** Builds Toda's subjects: consent terms per subject. */
  function buildSubjects(specs: SubjectSpec[]): QuerySubject[] {
    return specs.map((spec, i) => {
      const legalBasis = spec.legalBasis ?? 'consent';
      return {
        ref: spec.ref ?? `s${i + 1}`, sub: code(spec.codeOf ?? TODA, spec.who), source: spec.source, legalBasis,
        ...(legalBasis === 'consent' && spec.consent !== null ? { consent: consentFor(spec) } : {}),
        ...(spec.exception ? { exception: spec.exception } : {}),
      } as QuerySubject;
    });
  }

  /** The identity checks of the query, sealed once for its (first) source. */
  async function sealIdentities(specs: SubjectSpec[], jti: string): Promise<string> {
    const source = specs[0]!.source;
    return sealMessage({
      aud: source, jti,
      identities: specs.map((spec, i) => {
        const person = PEOPLE[spec.who];
        return { ref: spec.ref ?? `s${i + 1}`, birthDate: person.birthDate, sex: person.sex, kana: person.kana, ...spec.identity };
      }),
    }, todaCreds().signer, Typ.SEALED_IDENTITIES, await todaDirectory.encryptionKey(source));
  }

  async function buildQuery(specs: SubjectSpec[], claims: Record<string, unknown> = {}): Promise<{ compact: string; jti: string; rid: string }> {
    const jti = String(claims.jti ?? randomUUID());
    const rid = String(claims.rid ?? `rid-${randomUUID()}`);
    const subjects = buildSubjects(specs);
    const sealed = await sealIdentities(specs, jti);
    const compact = await signMessage({ aud: GATEWAY_ID, jti, rid, purpose: 'next-dose-scheduling', actor: 'clerk-7', subjects, sealedDigest: companionDigest(sealed), head: EMPTY_HEAD, ...claims },
      todaCreds().signer, Typ.QUERY);
    sealedOf.set(compact, sealed);
    return { compact, jti, rid };
  }

  /** B's query with the sealed part it names beside it (an opaque one for a query not built here). */
  async function send<T = QueryResponse>(compact: string, client = todaClient) {
    sentQueries.push(compact);
    const res = await client.postJson<T>(`${gateway.url}/queries`, { query: compact, sealed: sealedOf.get(compact) ?? OPAQUE_SEALED });
    if (res.status === 200) responses.push(res.body as QueryResponse);
    return res;
  }

  async function ask(specs: SubjectSpec[]) {
    const q = await buildQuery(specs);
    const res = await send(q.compact);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return { ...q, response: res.body };
  }

  const statuses = (response: QueryResponse) => response.results.map((r) => `${r.ref}:${r.status}`);

  async function accessLog(where: string, replacements: unknown[]) {
    return gateway.gateway.ctx.sequelize.query<Record<string, string>>(`SELECT * FROM access_log WHERE ${where} ORDER BY seq`, { replacements, type: QueryTypes.SELECT });
  }

  before(async () => {
    pki = await copyTestPki([{ id: OFFLINE, kind: 'municipality', name: 'Offline' }]);
    dir = mkdtempSync(join(tmpdir(), 'hikitsugi-gateway-'));
    tawaramoto = await startSource(pki, TAWARAMOTO);
    akiota = await startSource(pki, AKIOTA);
    const directoryFile = join(dir, 'gateway-directory.json');
    // Toda asks; 131016 is listed with an endpoint where nothing listens.
    writeTestDirectory(pki, directoryFile, { [TAWARAMOTO]: tawaramoto.url, [AKIOTA]: akiota.url, [TODA]: 'https://127.0.0.1:9', [OFFLINE]: 'https://127.0.0.1:9' });
    gatewayLog = captureLog('gateway');
    gateway = await startGateway(gatewayTestConfig(pki, dir, { MAX_BATCH: '50', SOURCE_TIMEOUT_MS: '1000', SOURCE_CONCURRENCY: '2' }), gatewayLog.logger);
    issuer = await startIssuer(issuerTestConfig(pki, dir, gateway.url));
    for (const source of [tawaramoto, akiota]) {
      source.directory = createDirectoryClient(createMemberClient(pki.credentials(source.id)), gateway.url, pki.ca.cert);
    }
    todaClient = createMemberClient(todaCreds());
    todaDirectory = createDirectoryClient(todaClient, gateway.url, pki.ca.cert);

    // Seeded registrations: who is known where.
    for (const [municipality, who] of [
      [TAWARAMOTO, 'hanako'], [TODA, 'hanako'], [AKIOTA, 'taro'], [TODA, 'taro'], [TODA, 'jiro'],
      [TAWARAMOTO, 'saburo'], [AKIOTA, 'saburo'], [OFFLINE, 'shiro'], [TODA, 'shiro'],
    ] as [string, Name][]) await register(municipality, who);
    tawaramoto.residents.set(code(TAWARAMOTO, 'hanako'), PEOPLE.hanako);
    tawaramoto.residents.set(code(TAWARAMOTO, 'saburo'), PEOPLE.saburo);
    akiota.residents.set(code(AKIOTA, 'taro'), PEOPLE.taro);
    akiota.residents.set(code(AKIOTA, 'saburo'), PEOPLE.saburo);
  });

  after(async () => {
    todaClient.close();
    await issuer.stop();
    await gateway.stop();
    await tawaramoto.stop();
    await akiota.stop();
    rmSync(dir, { recursive: true, force: true });
    pki.remove();
  });

  beforeEach(() => {
    tawaramoto.mode = 'normal';
    akiota.mode = 'normal';
  });

  /* ---------- directory ---------- */

  it('when a member fetches the directory, then every member is listed and each entry verifies against the CA', async () => {
    const res = await todaClient.getJson<DirectoryEntry[]>(`${gateway.url}/directory`);
    expect(res.status).to.equal(200);
    expect(res.body.map((e) => e.id).sort()).to.deep.equal([OFFLINE, TODA, TAWARAMOTO, AKIOTA, GATEWAY_ID, ISSUER_ID].sort());
    expect(await todaDirectory.endpoint(TAWARAMOTO)).to.equal(tawaramoto.url);
    expect((await todaDirectory.signingKey(TAWARAMOTO)).kid).to.equal(pki.credentials(TAWARAMOTO).signer.kid);
    expect(todaDirectory.rejected()).to.deep.equal([]);
  });

  it('when the gateway serves a directory with a swapped key, then the member-side client refuses that entry', async () => {
    const swappedDir = mkdtempSync(join(tmpdir(), 'hikitsugi-swapped-'));
    const rogue = foreignCredentials(AKIOTA);
    const entries = pki.directory().map((e) => {
      // Tawaramoto's entry carries the gateway's own (valid, CA-issued) certificate; Akiota's a foreign CA's.
      if (e.id === TAWARAMOTO) return { ...e, signingCertificate: pki.credentials(GATEWAY_ID).tls.cert };
      if (e.id === AKIOTA) return { ...e, encryptionCertificate: rogue.enc.cert };
      if (e.id === TODA) return { ...e, encryptionCertificate: pki.credentials(TODA).tls.cert };
      return e;
    });
    const file = join(swappedDir, 'gateway-directory.json');
    writeFileSync(file, JSON.stringify(entries));
    const evil = await startGateway(gatewayTestConfig(pki, swappedDir, { DIRECTORY_FILE: file }));
    // Toda's own entry is among the broken ones, so that gateway no longer takes Toda for a member: the issuer looks.
    const asIssuer = createMemberClient(pki.credentials(ISSUER_ID));
    try {
      const client = createDirectoryClient(asIssuer, evil.url, pki.ca.cert);
      expect((await client.entries()).map((e) => e.id).sort()).to.deep.equal([OFFLINE, GATEWAY_ID, ISSUER_ID].sort());
      const rules = Object.fromEntries(client.rejected().map((r) => [r.id, `${r.field}: ${r.rule}`]));
      expect(rules[TAWARAMOTO]).to.equal(`signingCertificate: CN must equal the member id ${TAWARAMOTO}`);
      expect(rules[AKIOTA]).to.equal('encryptionCertificate: must be signed by the federation CA');
      expect(rules[TODA]).to.match(/^encryptionCertificate: .*keyAgreement/);
      try {
        await client.signingKey(TAWARAMOTO);
        expect.fail('a swapped key was trusted');
      } catch (err) {
        expect((err as { code: string }).code).to.equal('unknown-member');
      }
    } finally {
      asIssuer.close();
      await evil.stop();
      rmSync(swappedDir, { recursive: true, force: true });
    }
  });

  it('when a revoked member is in the directory, then the member-side client drops it', async () => {
    const own = await copyTestPki();
    try {
      await own.revoke(AKIOTA);
      const verified = directoryFromEntries(own.directory(), own.ca.cert, (await own.memberDirectory()).revocations);
      expect((await verified.entries()).map((e) => e.id)).not.to.include(AKIOTA);
      expect(verified.rejected()).to.deep.include({ id: AKIOTA, field: 'signingCertificate', rule: 'must not be revoked' });
    } finally {
      own.remove();
    }
  });

  /* ---------- the query ---------- */

  it('when Toda asks with consent, then the source gets its own code, answers ok, and Toda alone can open the records', async () => {
    const before = tawaramoto.received.length;
    const { response, jti, rid } = await ask([{ who: 'hanako', source: TAWARAMOTO }]);
    expect(response.requestId).to.equal(rid);
    expect(response.results).to.deep.equal([{ ref: 's1', source: TAWARAMOTO, status: 'ok' }]);
    expect(response.answers).to.have.length(1);
    // The source saw its own code for Hanako, never Toda's, and the trace id.
    const forward = peekJwt(tawaramoto.received[before]!).claims as { subjects: { code: string }[]; rid: string };
    expect(forward.subjects[0]!.code).to.equal(code(TAWARAMOTO, 'hanako'));
    expect(forward.rid).to.equal(rid);
    expect(tawaramoto.requestIds[before]).to.equal(rid);
    // The answer is Tawaramoto's own JWS and records envelope, unchanged; the records it names verify and open for Toda.
    expect(response.answers[0]).to.deep.equal(tawaramoto.answers.at(-1));
    const answer = await verifyMessage(response.answers[0]!.answer, answerClaimsSchema, {
      key: (await todaDirectory.signingKey(TAWARAMOTO)).key, issuer: TAWARAMOTO, audience: TODA, typ: Typ.ANSWER,
    });
    expect(answer.queryJti).to.equal(jti);
    expect(companionMatches(response.answers[0]!.records, answer.recordsDigest)).to.equal(true);
    const records = await openMessage(response.answers[0]!.records!, todaCreds().decryption.key, recordsClaimsSchema, {
      key: (await todaDirectory.signingKey(TAWARAMOTO)).key, issuer: TAWARAMOTO, audience: TODA, typ: Typ.RECORDS,
    });
    expect(records.subjects.map((x) => x.sub)).to.deep.equal([code(TODA, 'hanako')]);
    expect(records.subjects[0]!.bundle.entry!.map((e) => e.resource.id)).to.deep.equal(['rec-h1', 'rec-h2']);
  });

  it('when one query names subjects at two sources, then the whole query is refused naming the subject, and nothing is forwarded', async () => {
    const before = [akiota.received.length, tawaramoto.received.length];
    const q = await buildQuery([
      { who: 'taro', source: AKIOTA, ref: 'first' }, { who: 'hanako', source: TAWARAMOTO, ref: 'second' },
    ]);
    const res = await send<{ field: string; type: string; rule: string }>(q.compact);
    expect(res.status, JSON.stringify(res.body)).to.equal(400);
    expect(res.body.type).to.match(/invalid-claims$/);
    expect(res.body.field).to.equal('subjects.1.source');
    expect(res.body.rule).to.match(/one query per source/);
    expect([akiota.received.length, tawaramoto.received.length]).to.deep.equal(before);
  });

  it('when a query names several subjects at one source, then that source gets one forward and results keep query order', async () => {
    const a0 = akiota.received.length;
    const { response } = await ask([
      { who: 'taro', source: AKIOTA, ref: 'first' }, { who: 'jiro', source: AKIOTA, ref: 'second' },
    ]);
    expect(statuses(response)).to.deep.equal(['first:ok', 'second:not_found']);
    expect(response.results[1]!.reason).to.equal('not_registered_at_source');
    expect(akiota.received.length - a0).to.equal(1);
    const toAkiota = peekJwt(akiota.received.at(-1)!).claims as { subjects: { ref: string }[] };
    expect(toAkiota.subjects.map((s) => s.ref)).to.deep.equal(['first']);
    expect(response.answers).to.have.length(1);
  });

  it('when Toda names a code that is not its own, then that subject is denied and nothing is forwarded for it', async () => {
    const before = [akiota.received.length, tawaramoto.received.length];
    const { response } = await ask([{ who: 'saburo', source: TAWARAMOTO, codeOf: AKIOTA }]);
    expect(response.results[0]).to.include({ status: 'denied', reason: 'code_not_yours' });
    expect([akiota.received.length, tawaramoto.received.length]).to.deep.equal(before);
    expect(response.answers).to.deep.equal([]);
  });

  it('when consent is for another purpose or source, or has expired, then the gateway refuses that subject itself', async () => {
    const before = tawaramoto.received.length;
    const { response } = await ask([
      { who: 'hanako', source: TAWARAMOTO, ref: 'purpose', consent: { purpose: 'certificate-issuance' } },
      { who: 'hanako', source: TAWARAMOTO, ref: 'source', consent: { sources: [AKIOTA] } },
      { who: 'hanako', source: TAWARAMOTO, ref: 'expired', consent: { expiresAt: new Date(Date.now() - 1000).toISOString() } },
    ]);
    expect(statuses(response)).to.deep.equal(['purpose:no_consent', 'source:no_consent', 'expired:consent_expired']);
    expect(tawaramoto.received.length).to.equal(before);
  });

  it('when a subject has no consent terms at all, then the whole query is refused with a problem naming the field', async () => {
    const q = await buildQuery([{ who: 'hanako', source: TAWARAMOTO, consent: null }]);
    const res = await send<{ field: string; type: string }>(q.compact);
    expect(res.status).to.equal(400);
    expect(res.body.field).to.equal('subjects.0.consent');
  });

  it('when the legal basis is life-protection with a second approver, then it is forwarded and flagged in every gateway log entry', async () => {
    const exception = { justification: 'Unconscious patient in ICU, vaccination history needed now', requestedBy: 'clerk-7', approvedBy: 'clerk-9', approvedAt: new Date().toISOString() };
    const { response, rid } = await ask([
      { who: 'hanako', source: TAWARAMOTO, legalBasis: 'life-protection', exception, ref: 'approved' },
      { who: 'taro', source: TAWARAMOTO, legalBasis: 'life-protection', exception: { ...exception, approvedBy: 'clerk-7' }, ref: 'self' },
    ]);
    expect(statuses(response)).to.deep.equal(['approved:ok', 'self:denied']);
    const rows = await accessLog('"requestId" = ?', [rid]);
    expect(rows.map((r) => `${r.action}:${r.outcome}`)).to.have.members(['query.route:allowed', 'query.route:denied', 'query.answer:allowed']);
    for (const row of rows) {
      expect(JSON.parse(row.flags!)).to.include('life-protection');
      expect(row.legalBasis).to.equal('life-protection');
    }
  });

  it('when the identity check names a wrong birth date, then the source answers identity_mismatch and releases nothing', async () => {
    const { response } = await ask([{ who: 'hanako', source: TAWARAMOTO, identity: { birthDate: '1990-04-02' } }]);
    expect(response.results[0]!.status).to.equal('identity_mismatch');
    const answer = peekJwt(response.answers[0]!.answer).claims as AnswerClaims;
    expect([answer.recordsDigest, response.answers[0]!.records]).to.deep.equal([undefined, undefined]);
  });

  it('when a query is routed, then the gateway logs one entry per subject per hop, with metadata only', async () => {
    const { response, rid, compact } = await ask([{ who: 'hanako', source: TAWARAMOTO }, { who: 'jiro', source: TAWARAMOTO }]);
    expect(statuses(response)).to.deep.equal(['s1:ok', 's2:not_found']);
    const rows = await accessLog('"requestId" = ?', [rid]);
    expect(rows.map((r) => `${r.action}:${r.subject}`)).to.deep.equal([
      `query.route:${code(TODA, 'hanako')}`, `query.route:${code(TODA, 'jiro')}`, `query.answer:${code(TODA, 'hanako')}`,
    ]);
    for (const row of rows) {
      expect(row).to.include({ actorType: 'member', actorId: TODA, actingMunicipality: TODA, purpose: 'next-dose-scheduling', requestHash: sha256Hex(compact) });
      expect(JSON.stringify(row)).not.to.match(/1990-04-01|ヤマダ|ハナコ/);
    }
    expect(JSON.parse(rows[0]!.details!)).to.include({ source: TAWARAMOTO, status: 'forwarded' });
    expect(rows[0]!.consentId).to.equal('consent-hanako');
    // The app log lines of this query carry the same trace id.
    expect(gatewayLog.lines.some((l) => l.includes(`"requestId":"${rid}"`) && l.includes('query routed'))).to.equal(true);
  });

  /* ---------- refusals of the whole query ---------- */

  async function expectRefused(compact: string, status: number, typeEnd: RegExp, client = todaClient) {
    const before = tawaramoto.received.length;
    const res = await send<{ type: string; field?: string; rule?: string }>(compact, client);
    expect(res.status, JSON.stringify(res.body)).to.equal(status);
    expect(res.headers['content-type']).to.match(/application\/problem\+json/);
    expect(res.body.type).to.match(typeEnd);
    expect(tawaramoto.received.length, 'nothing forwarded').to.equal(before);
    const refusals = await accessLog('action = ? AND "requestHash" = ?', ['query.refuse', sha256Hex(compact)]);
    expect(refusals.length, 'refusal logged').to.be.greaterThan(0);
    return res.body;
  }

  it('when the signature does not verify, then 401 and nothing is forwarded', async () => {
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const [h, p, s] = compact.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    claims.purpose = 'certificate-issuance';
    const altered = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
    await expectRefused(altered, 401, /invalid-signature$/);
    // Signed by Tawaramoto's key but claiming to be Toda: the kid is not Toda's.
    const { compact: foreignKey } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const resigned = await signMessage(peekJwt(foreignKey).claims, { ...pki.credentials(TAWARAMOTO).signer, id: TODA }, Typ.QUERY);
    await expectRefused(resigned, 401, /invalid-signature$/);
  });

  it('when the audience is not the gateway, then 401', async () => {
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }], { aud: TAWARAMOTO });
    await expectRefused(compact, 401, /invalid-signature$/);
  });

  it('when the query has expired, or lives longer than five minutes, then 401', async () => {
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const claims = peekJwt(compact).claims;
    const now = Math.floor(Date.now() / 1000);
    const sign = (iat: number, exp: number) => new jose.SignJWT({ ...claims, iat, exp })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: todaCreds().signer.kid, typ: Typ.QUERY }).sign(todaCreds().signer.key);
    await expectRefused(await sign(now - 1000, now - 700), 401, /invalid-signature$/);
    await expectRefused(await sign(now, now + 3600), 401, /invalid-signature$/);
  });

  it('when the jti is missing or malformed, then the query is refused', async () => {
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const { jti: _jti, ...claims } = peekJwt(compact).claims;
    const sign = (extra: object) => new jose.SignJWT({ ...claims, ...extra })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: todaCreds().signer.kid, typ: Typ.QUERY }).sign(todaCreds().signer.key);
    await expectRefused(await sign({}), 401, /invalid-signature$/);
    await expectRefused(await sign({ jti: 'short' }), 401, /invalid-signature$/);
  });

  it('when the same query is sent twice, then the second is refused as a replay, also after a gateway restart', async () => {
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    expect((await send(compact)).status).to.equal(200);
    const body = await expectRefused(compact, 409, /replayed$/);
    expect(body.field).to.equal('query.jti');
    await gateway.stop();
    gateway = await startGateway({ ...gateway.config, PORT: Number(new URL(gateway.url).port) }, gatewayLog.logger);
    await expectRefused(compact, 409, /replayed$/);
    const rows = await gateway.gateway.ctx.sequelize.query('SELECT COUNT(*) AS n FROM replay_cache', { type: QueryTypes.SELECT });
    expect(Number((rows[0] as { n: number | string }).n)).to.be.greaterThan(0);
  });

  it('when a municipality sends a query signed in another municipality\'s name, then 403', async () => {
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const akiotaClient = createMemberClient(pki.credentials(AKIOTA));
    try {
      const body = await expectRefused(compact, 403, /requester-mismatch$/, akiotaClient);
      expect(body.field).to.equal('query.iss');
    } finally {
      akiotaClient.close();
    }
  });

  it('when a member that is not a municipality posts a query, then 403', async () => {
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const issuerClient = createMemberClient(pki.credentials(ISSUER_ID));
    try {
      const res = await issuerClient.postJson<{ type: string }>(`${gateway.url}/queries`, { query: compact });
      expect(res.status).to.equal(403);
    } finally {
      issuerClient.close();
    }
  });

  it('when the source is not a federation municipality, then 400 names the subject\'s source', async () => {
    // 100013 has a valid check digit but is no member.
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const claims = peekJwt(compact).claims as { subjects: QuerySubject[] };
    claims.subjects[0]!.source = '100013';
    claims.subjects[0]!.consent!.sources = ['100013'];
    const resigned = await signMessage(claims, todaCreds().signer, Typ.QUERY);
    const body = await expectRefused(resigned, 400, /unknown-member$/);
    expect(body.field).to.equal('subjects.0.source');
  });

  it('when the sealed part beside a query is not the one the query names, then 400 names sealed and nothing reaches the source', async () => {
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const other = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const before = tawaramoto.received.length;
    for (const sealed of [sealedOf.get(other.compact)!, OPAQUE_SEALED]) {
      const res = await todaClient.postJson<{ type: string; field: string }>(`${gateway.url}/queries`, { query: compact, sealed });
      expect([res.status, res.body.type.split('/').pop(), res.body.field]).to.deep.equal([400, 'invalid-claims', 'sealed']);
    }
    const missing = await todaClient.postJson<{ type: string; field: string }>(`${gateway.url}/queries`, { query: compact });
    expect([missing.status, missing.body.field]).to.deep.equal([400, 'sealed']);
    expect(tawaramoto.received.length).to.equal(before);
  });

  it('when a batch exceeds MAX_BATCH, then 413 names subjects', async () => {
    const specs = Array.from({ length: 51 }, (_, i): SubjectSpec => ({ who: 'hanako', source: TAWARAMOTO, ref: `r${i}` }));
    const { compact } = await buildQuery(specs);
    const body = await expectRefused(compact, 413, /batch-too-large$/);
    expect(body.rule).to.equal('must list at most 50 subjects');
  });

  it('when the body is oversized, truncated, not JSON or not a JWS, then a problem names the rule and nothing changes', async () => {
    const replayRows = async () => Number(((await gateway.gateway.ctx.sequelize.query('SELECT COUNT(*) AS n FROM replay_cache', { type: QueryTypes.SELECT }))[0] as { n: number | string }).n);
    const before = await replayRows();
    const huge = await todaClient.postJson<{ type: string }>(`${gateway.url}/queries`, { query: 'a'.repeat(600_000) });
    expect(huge.status).to.equal(413);
    const notJws = await todaClient.postJson<{ field: string; rule: string }>(`${gateway.url}/queries`, { query: 'hello' });
    expect(notJws.status).to.equal(400);
    expect(notJws.body).to.include({ field: 'query', rule: 'must be a compact JWS' });
    const { compact } = await buildQuery([{ who: 'hanako', source: TAWARAMOTO }]);
    const truncatedToken = await todaClient.postJson<{ type: string }>(`${gateway.url}/queries`, { query: compact.slice(0, compact.length - 40), sealed: sealedOf.get(compact)! });
    expect(truncatedToken.status).to.equal(401);
    const garbageHeader = await todaClient.postJson<{ type: string; field: string }>(`${gateway.url}/queries`, { query: 'e30.e30.e30', sealed: OPAQUE_SEALED });
    expect(garbageHeader.status).to.equal(400);
    expect(garbageHeader.body).to.include({ field: 'query' });
    const truncatedJson = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const creds = todaCreds();
      const req = https.request(`${gateway.url}/queries`, { method: 'POST', ca: creds.ca, cert: creds.tls.cert, key: creds.tls.key, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end(`{"query":"${compact.slice(0, 100)}`);
    });
    expect(truncatedJson.status).to.equal(400);
    expect(JSON.parse(truncatedJson.body).rule).to.equal('must be valid JSON');
    expect(await replayRows()).to.equal(before);
  });

  /* ---------- availability ---------- */

  it('when a source is down, times out or answers garbage, then its subjects are source_unavailable while the others succeed', async () => {
    // B asks each source in its own query, at the same time: one source failing never fails the other.
    const both = (failing: SubjectSpec) => Promise.all([ask([failing]), ask([{ who: 'hanako', source: TAWARAMOTO, ref: 'up' }])]);
    const [down, up] = await both({ who: 'shiro', source: OFFLINE, ref: 'down' });
    expect([...statuses(down.response), ...statuses(up.response)]).to.deep.equal(['down:source_unavailable', 'up:ok']);
    expect(down.response.results[0]!.retryAfter).to.equal(30);

    akiota.mode = 'hang';
    const [slow, upToo] = await both({ who: 'taro', source: AKIOTA, ref: 'hang' });
    expect([...statuses(slow.response), ...statuses(upToo.response)]).to.deep.equal(['hang:source_unavailable', 'up:ok']);
    expect(slow.response.results[0]!.reason).to.equal('timeout');

    akiota.mode = 'garbage';
    const [garbage, upAgain] = await both({ who: 'taro', source: AKIOTA, ref: 'garbage' });
    expect([...statuses(garbage.response), ...statuses(upAgain.response)]).to.deep.equal(['garbage:source_unavailable', 'up:ok']);
    expect(garbage.response.results[0]!.reason).to.equal('invalid_answer');
    expect(garbage.response.answers).to.have.length(0);

    // Genuine records beside the answer, but not the envelope the answer names: the answer is not relayed.
    akiota.mode = 'unnamed-records';
    const [unnamed, upStill] = await both({ who: 'taro', source: AKIOTA, ref: 'unnamed' });
    expect([...statuses(unnamed.response), ...statuses(upStill.response)]).to.deep.equal(['unnamed:source_unavailable', 'up:ok']);
    expect(unnamed.response.results[0]!.reason).to.equal('invalid_answer');
    expect(unnamed.response.answers).to.have.length(0);

    akiota.mode = 'error';
    const failing = await ask([{ who: 'taro', source: AKIOTA, ref: 'error' }]);
    expect(failing.response.results[0]).to.include({ status: 'source_unavailable', reason: 'source_status_500' });

    akiota.mode = 'normal';
    const retried = await ask([{ who: 'taro', source: AKIOTA, ref: 'retry' }]);
    expect(statuses(retried.response)).to.deep.equal(['retry:ok']);
  });

  it('when many queries go to one source at once, then no more than SOURCE_CONCURRENCY forwards are in flight there', async () => {
    tawaramoto.mode = 'slow';
    tawaramoto.maxInFlight = 0;
    const results = await Promise.all(Array.from({ length: 6 }, () => ask([{ who: 'hanako', source: TAWARAMOTO }])));
    expect(results.map((r) => r.response.results[0]!.status)).to.deep.equal(Array(6).fill('ok'));
    expect(tawaramoto.maxInFlight).to.be.within(1, 2);
  });

  /* ---------- what the gateway can and cannot read ---------- */

  it('when the gateway\'s own keys try the sealed identity parts and the released records, then they fail to decrypt', async () => {
    const { response } = await ask([{ who: 'hanako', source: TAWARAMOTO }]);
    const forward = peekJwt(tawaramoto.received.at(-1)!).claims as { query: string };
    const sealed = sealedOf.get(forward.query)!;
    const records = response.answers[0]!.records!;
    const gw = pki.credentials(GATEWAY_ID);
    for (const jwe of [sealed, records]) {
      for (const key of [gw.decryption.key, gw.signer.key]) {
        // The one answer for any key that is not the recipient's (no oracle on which part failed).
        expect(await rejectionOf(decryptWith(jwe, key)), 'the gateway decrypted a message not meant for it').to.equal('ERR_JWE_DECRYPTION_FAILED');
      }
    }
    // Control: the intended recipients can.
    expect(await decryptWith(sealed, pki.credentials(TAWARAMOTO).decryption.key)).to.match(/^ey/);
    expect(await decryptWith(records, todaCreds().decryption.key)).to.match(/^ey/);
  });

  it('when all of the above has run, then no My Number is in any message the gateway saw, its database or its log', async () => {
    const decode = (compact: string) => compact.split('.').slice(0, 2).map((p) => Buffer.from(p, 'base64url').toString('utf8')).join('\n');
    const seen: string[] = [];
    for (const q of sentQueries) seen.push(q, decode(q));
    for (const f of [...tawaramoto.received, ...akiota.received]) {
      seen.push(f, decode(f));
      try {
        seen.push(decode(String((peekJwt(f).claims as { query: string }).query)));
      } catch { /* garbage-mode bodies are not JWS */ }
    }
    for (const r of responses) seen.push(JSON.stringify(r), ...r.answers.map((a) => decode(a.answer)));
    // SQLite: the file's bytes, WAL included; PostgreSQL: every table's rows as text.
    const dbBytes = (await databaseContents(gateway.config)).toString('latin1');
    const haystacks = { messages: seen.join('\n'), database: dbBytes, log: gatewayLog.text() };
    expect(sentQueries.length).to.be.greaterThan(10);
    expect(haystacks.database).to.contain('correspondence');
    for (const [where, text] of Object.entries(haystacks)) {
      for (const person of Object.values(PEOPLE)) {
        expect(text.includes(person.myNumber), `${where} holds a My Number`).to.equal(false);
      }
    }
  });
});
