/**
 * The federation end to end (docs/DESIGN.md §4.2–§4.5), on real processes: the issuer, the gateway and three municipalities, each
 * its own process with its own SQLite file, talking mTLS on loopback. One federation for the whole
 * suite; the tests run in order and tell one story: Tawaramoto (A) lets residents move to Toda (B),
 * Toda asks for their prior records, and every way of cheating on that exchange is refused at the
 * hop that can see it. Where a test must act as a member (Toda signing its own query, the gateway
 * signing a forward), it uses that member's real keys from the federation's PKI folder.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { decryptWith, jose, peekJwt, sha256Hex, SIGNING_ALG } from '../../shared/crypto.ts';
import { directoryFromFile, type Directory } from '../../shared/federation/directory.ts';
import { createMemberClient, type MemberClient } from '../../shared/federation/member-http.ts';
import { createRevocationGuard, fileRevocationSource } from '../../shared/federation/revocation.ts';
import { companionDigest, companionMatches, openMessage, sealMessage, signMessage, verifyMessage, type Signer } from '../../shared/federation/messages.ts';
import type { MemberCredentials } from '../../shared/federation/pki.ts';
import {
  answerClaimsSchema, GATEWAY_ID, ISSUER_ID, recordsClaimsSchema, Typ,
  type AnswerClaims, type ConsentTerms, type ForwardSubject, type QueryClaims, type QueryResponse, type QuerySubject,
} from '../../shared/federation/protocol.ts';
import type { GeneratedResident } from '../../services/municipality/seed.ts';
import { startTestFederation, type RunningFederation } from '../fixtures/federation.ts';
import { api } from '../fixtures/http.ts';
import { databaseContents } from '../fixtures/database.ts';
import { foreignCredentials } from '../fixtures/pki.ts';
import { EMPTY_HEAD, OPAQUE_SEALED } from '../fixtures/factories.ts';
import { rejectionOf } from '../fixtures/refusals.ts';

const A = '293610'; // Tawaramoto: the resident's previous municipality, answers
const B = '112241'; // Toda: the new municipality, asks
const C = '343692'; // Akiota
const DAY = 86_400_000;

interface AccessRow {
  seq: number;
  requestId: string;
  actorType: string;
  actorId: string;
  subject: string | null;
  action: string;
  purpose: string | null;
  legalBasis: string | null;
  outcome: string;
  reason: string | null;
  recordIds: string;
  requestHash: string | null;
  flags: string;
  details: string;
}

/** Where one mover stands at each member. */
interface Mover {
  person: GeneratedResident;
  recordCount: number;
  /** Addressee number at Toda (after move-in). */
  atB?: string;
  codeAtA?: string;
  codeAtB?: string;
  certificate?: string;
}

describe('federation end to end: move-out, move-in, consent, query, import and every refusal (real processes, mTLS)', function () {
  this.timeout(120_000);
  let fed: RunningFederation;
  let clerkA: string;
  let clerkB: string;
  let clerk2B: string;
  let toda: MemberCredentials;
  let gw: MemberCredentials;
  let akiota: MemberCredentials;
  let asToda: MemberClient;
  let asGateway: MemberClient;
  let directory: Directory;
  let aFederation: string;
  const movers: { main: Mover; second: Mover; elsewhere: Mover } = {} as never;
  /** Every compact message the tests handed the gateway, for the leak check at the end. */
  const sentToGateway: string[] = [];

  const log = (member: string, where: string, params: unknown[]) =>
    fed.rows<AccessRow>(member, `SELECT * FROM access_log WHERE ${where} ORDER BY seq`, params);
  const count = async (member: string, table: string) =>
    Number((await fed.rows<{ n: number }>(member, `SELECT COUNT(*) AS n FROM ${table}`))[0]!.n);
  const residentAtB = async (addressee: string) =>
    (await fed.rows<{ code: string; birthDate: string; sex: string; kana: string }>(B,
      'SELECT code, "birthDate", sex, kana FROM residents WHERE "addresseeNumber" = ?', [addressee]))[0]!;
  const attestation = async (municipality: string, code: string) =>
    (await fed.rows<{ attestation: string }>(GATEWAY_ID, 'SELECT attestation FROM correspondence WHERE municipality = ? AND code = ?', [municipality, code]))[0]!.attestation;

  async function query(token: string, addresseeNumber: string, extra: Record<string, unknown> = {}, purpose = 'next-dose-scheduling') {
    return api('POST', `${fed.url(B)}/exchange/queries`, { token, body: { purpose, subjects: [{ addresseeNumber, source: A, ...extra }] } });
  }

  /* ---------- acting as Toda (its real key) and as the gateway (its real key) ---------- */

  interface Craft {
    ref?: string;
    consent?: Partial<ConsentTerms> | null;
    identity?: Partial<{ birthDate: string; sex: string; kana: string }>;
    legalBasis?: QuerySubject['legalBasis'];
    exception?: QuerySubject['exception'];
  }

  /** A query for the main mover, signed with Toda's own key, as Toda's service would build it. */
  async function craftQuery(specs: Craft[], claims: Record<string, unknown> = {}) {
    const jti = String(claims.jti ?? randomUUID());
    const rid = String(claims.rid ?? `e2e-${randomUUID()}`);
    const who = await residentAtB(movers.main.atB!);
    const now = Date.now();
    const refOf = (spec: Craft, i: number) => spec.ref ?? String(i);
    // One envelope for the batch, unless the test brings its own (claims.sealed); it travels beside the query.
    const { sealed: own, ...signed } = claims as { sealed?: string } & Record<string, unknown>;
    const sealed = own ?? await sealMessage({
      aud: A, jti, identities: specs.map((spec, i) => ({ ref: refOf(spec, i), birthDate: who.birthDate, sex: who.sex, kana: who.kana, ...spec.identity })),
    }, toda.signer, Typ.SEALED_IDENTITIES, await directory.encryptionKey(A));
    const subjects = specs.map((spec, i) => {
      const ref = refOf(spec, i);
      const legalBasis = spec.legalBasis ?? 'consent';
      const consent: ConsentTerms = {
        id: randomUUID(), scope: 'vaccination-history', purpose: 'next-dose-scheduling', sources: [A],
        givenAt: new Date(now - 60_000).toISOString(), expiresAt: new Date(now + 7 * DAY).toISOString(), method: 'written',
        ...spec.consent,
      } as ConsentTerms;
      return {
        ref, sub: who.code, source: A, legalBasis,
        ...(legalBasis === 'consent' && spec.consent !== null ? { consent } : {}),
        ...(spec.exception ? { exception: spec.exception } : {}),
      };
    });
    const compact = await signMessage({
      aud: GATEWAY_ID, jti, rid, purpose: 'next-dose-scheduling', actor: 'e2e-clerk', subjects, sealedDigest: companionDigest(sealed), head: EMPTY_HEAD, ...signed,
    }, toda.signer, Typ.QUERY);
    sealedOf.set(compact, sealed);
    return { compact, jti, rid, sealed };
  }

  /** The gateway's envelope around a query, with the real issuer attestations from the gateway's table. */
  async function craftForward(compact: string, options: { subjects?: ForwardSubject[]; claims?: Record<string, unknown>; signer?: Signer } = {}) {
    const q = peekJwt(compact).claims as QueryClaims;
    const subjects = options.subjects ?? await Promise.all(q.subjects.map(async (s) => ({
      ref: s.ref, code: movers.main.codeAtA!,
      requesterAttestation: await attestation(B, s.sub), sourceAttestation: await attestation(A, movers.main.codeAtA!),
    })));
    return signMessage({ aud: A, jti: randomUUID(), rid: q.rid, query: compact, subjects, head: EMPTY_HEAD, ...options.claims }, options.signer ?? gw.signer, Typ.FORWARD);
  }

  const signRaw = (claims: Record<string, unknown>, signer: Signer, typ: string) =>
    new jose.SignJWT(claims).setProtectedHeader({ alg: SIGNING_ALG, kid: signer.kid, typ }).sign(signer.key);

  /** Replaces the claims of a compact JWS but keeps its signature (what an altering relay would do). */
  function alterClaims(compact: string, change: (claims: Record<string, unknown>) => void): string {
    const [h, p, s] = compact.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as Record<string, unknown>;
    change(claims);
    return [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
  }

  /** Member logs reach their files through a pipe: poll a little for the line instead of racing it. */
  async function logLine(member: string, pattern: RegExp): Promise<boolean> {
    for (let i = 0; i < 50; i++) {
      if (readFileSync(fed.member(member).logFile, 'utf8').split('\n').some((line) => pattern.test(line))) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /** The sealed part of each crafted query, which travels beside it (docs/PROTOCOL.md §3.11). */
  const sealedOf = new Map<string, string>();
  /** The forward with the sealed part of the query inside it beside it, as the gateway relays them. */
  const postForward = (forward: string, client = asGateway) => {
    const query = forward.split('.').length === 3 ? String(peekJwt(forward).claims.query) : '';
    const sealed = sealedOf.get(query);
    return client.postJson<any>(`${aFederation}/federation/record-requests`, { forward, ...(sealed ? { sealed } : {}) }, { expectPeer: A });
  };

  async function toGateway(compact: string) {
    sentToGateway.push(compact);
    return asToda.postJson<any>(`${fed.member(GATEWAY_ID).url}/queries`, { query: compact, sealed: sealedOf.get(compact) ?? OPAQUE_SEALED }, { expectPeer: GATEWAY_ID });
  }

  async function verifyAnswer(answer: string): Promise<AnswerClaims> {
    return verifyMessage(answer, answerClaimsSchema, { key: (await directory.signingKey(A)).key, issuer: A, audience: B, typ: Typ.ANSWER });
  }

  /** A's own log of a refused envelope: one denied entry, found by the hash of what was posted. */
  async function expectRefusalLoggedAtA(forward: string, code: string) {
    const rows = await log(A, '"requestHash" = ?', [sha256Hex(forward)]);
    expect(rows.map((r) => `${r.action}:${r.outcome}:${r.reason}`), 'refusal in A\'s access log').to.deep.equal([`exchange.query.answer:denied:${code}`]);
    expect(JSON.parse(rows[0]!.recordIds)).to.deep.equal([]);
  }

  before(async function () {
    this.timeout(180_000);
    fed = await startTestFederation({ residents: 10 });
    await Promise.all([A, B, C].map((code) => fed.waitForCodes(code)));
    [clerkA, clerkB, clerk2B] = await Promise.all([fed.login(A, 'clerk1'), fed.login(B, 'clerk1'), fed.login(B, 'clerk2')]);
    toda = fed.credentials(B);
    gw = fed.credentials(GATEWAY_ID);
    akiota = fed.credentials(C);
    asToda = createMemberClient(toda);
    asGateway = createMemberClient(gw);
    const revocations = createRevocationGuard({ ca: toda.ca, source: fileRevocationSource(join(fed.pkiDir, 'ca', 'revocations.jws')) });
    await revocations.refresh();
    directory = directoryFromFile(join(fed.dataDir, 'gateway', 'directory.json'), toda.ca, revocations);
    aFederation = fed.member(A).federationUrl!;
    const withRecords = fed.residents(A).filter((r) => r.records.length > 0);
    expect(withRecords.length, 'seed has three residents with records').to.be.at.least(3);
    const mover = async (person: GeneratedResident): Promise<Mover> => {
      const res = await api('GET', `${fed.url(A)}/residents/${person.addresseeNumber}/vaccinations`, { token: clerkA });
      return { person, recordCount: res.body.records.length as number };
    };
    movers.main = await mover(withRecords[0]!);
    movers.second = await mover(withRecords[1]!);
    movers.elsewhere = await mover(withRecords[2]!);
  });

  after(async () => {
    asToda?.close();
    asGateway?.close();
    await fed?.close();
  });

  /* ---------- move-out and move-in ---------- */

  it('when residents move out of Tawaramoto, then each is kept with status moved-out and the signed certificate carries no My Number', async () => {
    const before = await count(A, 'residents');
    for (const [m, destination] of [[movers.main, B], [movers.second, B], [movers.elsewhere, C]] as const) {
      const out = await api('POST', `${fed.url(A)}/residents/${m.person.addresseeNumber}/move-out`, {
        token: clerkA, body: { moveOutDate: '2026-04-01', destination, destinationAddress: '埼玉県戸田市上戸田1-1-1' },
      });
      expect(out.status, JSON.stringify(out.body)).to.equal(201);
      m.certificate = out.body.certificate;
      const { header, claims } = peekJwt(m.certificate!);
      expect(header.typ).to.equal(Typ.MOVE_OUT);
      expect(claims).to.include({ iss: A, aud: destination });
      expect(JSON.stringify(claims)).not.to.contain(m.person.myNumber);
      const kept = await api('GET', `${fed.url(A)}/residents/${m.person.addresseeNumber}`, { token: clerkA });
      expect(kept.body).to.include({ status: 'moved-out', moveOutDestination: destination });
    }
    expect(await count(A, 'residents'), 'nothing deleted').to.equal(before);
    const again = await api('POST', `${fed.url(A)}/residents/${movers.main.person.addresseeNumber}/move-out`, {
      token: clerkA, body: { moveOutDate: '2026-04-02', destination: B, destinationAddress: '埼玉県戸田市上戸田1-1-1' },
    });
    expect(again.status).to.equal(409);
    expect(again.headers.get('content-type')).to.match(/application\/problem\+json/);
  });

  it('when a move-out certificate is forged, addressed to another municipality, malformed or reused, then Toda refuses it, logs the refusal and creates no resident', async () => {
    const residents = await count(B, 'residents');
    const moveIn = (certificate: string, consent?: object) => api('POST', `${fed.url(B)}/move-ins`, {
      token: clerkB, body: { certificate, myNumber: movers.main.person.myNumber, address: '埼玉県戸田市上戸田1-1-1', ...(consent ? { consent } : {}) },
    });
    // Forged: Tawaramoto's claims, signed with Akiota's (valid, CA-issued) key.
    const claims = peekJwt(movers.main.certificate!).claims;
    const forged = await signMessage({ ...claims, jti: randomUUID() }, { ...akiota.signer, id: A }, Typ.MOVE_OUT, 3600);
    const refusals = [
      [forged, 422, 'move-out-certificate-refused', 'signature must verify with the sender\'s key'],
      [movers.elsewhere.certificate!, 422, 'move-out-certificate-refused', 'must be addressed to this municipality'],
      ['not-a-certificate', 400, 'validation', 'must be a compact JWS move-out certificate'],
    ] as const;
    for (const [certificate, status, code, rule] of refusals) {
      const res = await moveIn(certificate);
      expect(res.status, JSON.stringify(res.body)).to.equal(status);
      expect(res.headers.get('content-type')).to.match(/application\/problem\+json/);
      expect(res.body).to.include({ type: `https://hikitsugi.example/problems/${code}`, field: 'certificate', rule });
    }
    expect(await count(B, 'residents'), 'refused move-ins create nobody').to.equal(residents);

    const consent = { purpose: 'next-dose-scheduling', expiresAt: new Date(Date.now() + 30 * DAY).toISOString(), method: 'written' };
    const accepted = await moveIn(movers.main.certificate!, consent);
    expect(accepted.status, JSON.stringify(accepted.body)).to.equal(201);
    expect(accepted.body.from).to.equal(A);
    expect(accepted.body.consent).to.include({ purpose: 'next-dose-scheduling' });
    expect(accepted.body.consent.sources).to.deep.equal([A]);
    movers.main.atB = accepted.body.resident.addresseeNumber;
    const reused = await moveIn(movers.main.certificate!);
    expect(reused.status).to.equal(409);
    expect(reused.body).to.include({ type: 'https://hikitsugi.example/problems/certificate-used', field: 'certificate' });

    const second = await api('POST', `${fed.url(B)}/move-ins`, {
      token: clerkB, body: { certificate: movers.second.certificate, myNumber: movers.second.person.myNumber, address: '埼玉県戸田市新曽2-2-2' },
    });
    expect(second.status).to.equal(201);
    movers.second.atB = second.body.resident.addresseeNumber;
    expect(await count(B, 'residents')).to.equal(residents + 2);

    const denied = await log(B, "action = 'resident.move_in' AND outcome = 'denied'", []);
    expect(denied.map((r) => r.reason)).to.deep.equal(['move-out-certificate-refused', 'move-out-certificate-refused', 'validation', 'certificate-used']);
    expect(JSON.parse(denied[0]!.details)).to.include({ from: A, certificateSha256: sha256Hex(forged) });
    for (const row of denied) expect(JSON.stringify(row)).not.to.contain(movers.main.person.myNumber);
  });

  it('when the mover is registered at both municipalities, then the two codes differ and only the gateway links them', async () => {
    await fed.waitForCodes(B);
    const [atA] = await fed.rows<{ code: string; status: string }>(A, 'SELECT code, status FROM residents WHERE "addresseeNumber" = ?', [movers.main.person.addresseeNumber]);
    const atB = await residentAtB(movers.main.atB!);
    expect(atA!.status).to.equal('moved-out');
    expect(atA!.code).to.match(/^[A-Z2-7]{26}$/);
    expect(atB.code).to.match(/^[A-Z2-7]{26}$/);
    expect(atB.code).not.to.equal(atA!.code);
    movers.main.codeAtA = atA!.code;
    movers.main.codeAtB = atB.code;
    const links = await fed.rows<{ linkId: string; municipality: string }>(GATEWAY_ID,
      'SELECT "linkId", municipality FROM correspondence WHERE code IN (?, ?)', [atA!.code, atB.code]);
    expect(links.map((l) => l.municipality).sort()).to.deep.equal([B, A].sort());
    expect(links[0]!.linkId).to.equal(links[1]!.linkId);
    // Neither municipality holds the other's code for this person.
    expect(await fed.rows(A, 'SELECT 1 FROM residents WHERE code = ?', [atB.code])).to.deep.equal([]);
    expect(await fed.rows(B, 'SELECT 1 FROM residents WHERE code = ?', [atA!.code])).to.deep.equal([]);
  });

  /* ---------- the query ---------- */

  it('when Toda asks Tawaramoto with consent, then the records are imported once with provenance and each member logs its part under one request id', async () => {
    const m = movers.main;
    const first = await query(clerkB, m.atB!);
    expect(first.status, JSON.stringify(first.body)).to.equal(200);
    expect(first.body.results[0]).to.include({ status: 'ok', recordCount: m.recordCount, imported: m.recordCount });
    const rid = first.body.requestId as string;
    const again = await query(clerkB, m.atB!);
    expect(again.body.results[0]).to.include({ status: 'ok', recordCount: m.recordCount, imported: 0 });

    const held = await api('GET', `${fed.url(B)}/residents/${m.atB}/vaccinations`, { token: clerkB });
    expect(held.body.records).to.have.length(m.recordCount);
    for (const r of held.body.records) {
      expect(r.provenance).to.include({ sourceMunicipality: A, importRequestId: rid });
      expect(r.provenance.sourceRecordId).to.be.a('string');
      expect(r.provenance.sourceVersion).to.be.a('number');
      expect(r.provenance.retrievedAt).to.be.a('string');
    }

    const atB = await log(B, '"requestId" = ?', [rid]);
    expect(atB.map((r) => `${r.action}:${r.outcome}`)).to.deep.equal(['exchange.query.send:allowed', 'exchange.records.import:allowed']);
    expect(JSON.parse(atB[1]!.recordIds)).to.have.length(m.recordCount);
    const atGateway = await log(GATEWAY_ID, '"requestId" = ?', [rid]);
    expect(atGateway.map((r) => `${r.action}:${r.outcome}:${r.subject}`)).to.deep.equal([
      `query.route:allowed:${m.codeAtB}`, `query.answer:allowed:${m.codeAtB}`,
    ]);
    const atA = await log(A, '"requestId" = ?', [rid]);
    expect(atA.map((r) => `${r.action}:${r.outcome}:${r.subject}`)).to.deep.equal([`exchange.query.answer:allowed:${m.person.addresseeNumber}`]);
    expect(JSON.parse(atA[0]!.recordIds)).to.have.length(m.recordCount);
    // The three entries are about the same signed request.
    expect(new Set([atB[0]!.requestHash, atGateway[0]!.requestHash, atA[0]!.requestHash]).size).to.equal(1);
  });

  it('when Toda holds no consent, one for another purpose, a revoked one or an expired one, then Toda refuses to send and neither the gateway nor Tawaramoto hears of it', async () => {
    const m = movers.second;
    const consents = `${fed.url(B)}/residents/${m.atB}/consents`;
    const record = (purpose: string, expiresAt: string) =>
      api('POST', consents, { token: clerkB, body: { purpose, sources: [A], expiresAt, method: 'written' } });
    const expectRefusedAtB = async (status: string, reason: string) => {
      const res = await query(clerkB, m.atB!);
      expect(res.status).to.equal(200);
      expect(res.body.results[0]).to.include({ status, reason, recordCount: 0, imported: 0 });
      const rid = res.body.requestId as string;
      expect((await log(B, '"requestId" = ?', [rid])).map((r) => `${r.action}:${r.outcome}:${r.reason}`)).to.deep.equal([`exchange.query.send:denied:${reason}`]);
      expect(await log(GATEWAY_ID, '"requestId" = ?', [rid]), 'the gateway saw nothing').to.deep.equal([]);
      expect(await log(A, '"requestId" = ?', [rid]), 'Tawaramoto saw nothing').to.deep.equal([]);
    };
    await fed.waitForCodes(B);
    await expectRefusedAtB('no_consent', 'no_matching_consent');
    expect((await record('certificate-issuance', new Date(Date.now() + 30 * DAY).toISOString())).status).to.equal(201);
    await expectRefusedAtB('no_consent', 'no_matching_consent');
    const given = await record('next-dose-scheduling', new Date(Date.now() + 30 * DAY).toISOString());
    const revoked = await api('POST', `${consents}/${given.body.id}/revoke`, { token: clerkB, body: { reason: 'resident withdrew consent at the counter' } });
    expect(revoked.status).to.equal(200);
    await expectRefusedAtB('no_consent', 'consent_revoked');
    const expiresAt = Date.now() + 4000;
    expect((await record('next-dose-scheduling', new Date(expiresAt).toISOString())).status).to.equal(201);
    while (Date.now() <= expiresAt + 200) await new Promise((r) => setTimeout(r, 100));
    await expectRefusedAtB('consent_expired', 'consent_expired');
  });

  it('when a query signed with Toda\'s own key carries expired, mismatched or overlong consent terms, then the gateway refuses each subject itself and Tawaramoto hears nothing', async () => {
    const now = Date.now();
    const { compact, rid } = await craftQuery([
      { ref: 'expired', consent: { expiresAt: new Date(now - 1000).toISOString() } },
      { ref: 'purpose', consent: { purpose: 'certificate-issuance' } },
      { ref: 'source', consent: { sources: [C] } },
      { ref: 'overlong', consent: { givenAt: new Date(now - DAY).toISOString(), expiresAt: new Date(now + 400 * DAY).toISOString() } },
    ]);
    const res = await toGateway(compact);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const body = res.body as QueryResponse;
    expect(body.results.map((r) => `${r.ref}:${r.status}:${r.reason}`)).to.deep.equal([
      'expired:consent_expired:consent_expired', 'purpose:no_consent:consent_purpose', 'source:no_consent:consent_source',
      'overlong:no_consent:consent_term_too_long',
    ]);
    expect(body.answers).to.deep.equal([]);
    expect((await log(GATEWAY_ID, '"requestId" = ?', [rid])).map((r) => `${r.action}:${r.outcome}`)).to.deep.equal(Array(4).fill('query.route:denied'));
    expect(await log(A, '"requestId" = ?', [rid])).to.deep.equal([]);

    const missing = await craftQuery([{ consent: null }]);
    const refused = await toGateway(missing.compact);
    expect(refused.status).to.equal(400);
    expect(refused.headers['content-type']).to.match(/application\/problem\+json/);
    expect(refused.body).to.include({ type: 'https://hikitsugi.example/problems/invalid-claims', field: 'subjects.0.consent' });
    expect((await log(GATEWAY_ID, '"requestHash" = ?', [sha256Hex(missing.compact)])).map((r) => `${r.action}:${r.reason}`)).to.deep.equal(['query.refuse:invalid-claims']);
  });

  it('when a query\'s signature, audience, expiry or jti is wrong, or it is replayed, then the gateway refuses it whole and logs the refusal', async () => {
    const valid = await craftQuery([{}]);
    expect((await toGateway(valid.compact)).status).to.equal(200);
    const { iat: _iat, exp: _exp, jti: _jti, ...claims } = peekJwt((await craftQuery([{}])).compact).claims as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, number, string][] = [
      ['replayed', valid.compact, 409, 'replayed'],
      ['altered', alterClaims((await craftQuery([{}])).compact, (c) => { c.purpose = 'certificate-issuance'; }), 401, 'invalid-signature'],
      ['audience', (await craftQuery([{}], { aud: A })).compact, 401, 'invalid-signature'],
      ['expired', await signRaw({ ...claims, jti: randomUUID(), iat: now - 1000, exp: now - 700 }, toda.signer, Typ.QUERY), 401, 'invalid-signature'],
      ['no jti', await signRaw({ ...claims, iat: now, exp: now + 60 }, toda.signer, Typ.QUERY), 401, 'invalid-signature'],
      ['foreign key', await signMessage({ ...claims, jti: randomUUID() }, { ...akiota.signer, id: B }, Typ.QUERY), 401, 'invalid-signature'],
    ];
    for (const [name, compact, status, code] of cases) {
      const res = await toGateway(compact);
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).to.equal(status);
      expect(res.body.type, name).to.equal(`https://hikitsugi.example/problems/${code}`);
      const refusals = await log(GATEWAY_ID, '"requestHash" = ? AND action = ?', [sha256Hex(compact), 'query.refuse']);
      expect(refusals.length, `${name} logged at the gateway`).to.be.greaterThan(0);
      if (name !== 'replayed') expect(await log(A, '"requestHash" = ?', [sha256Hex(compact)]), `${name} never reached A`).to.deep.equal([]);
    }
  });

  /* ---------- playing the gateway towards Tawaramoto ---------- */

  let released: { answer: string; compact: string; forward: string } | undefined;

  it('when the gateway forwards a properly signed request, then Tawaramoto releases the records, and the gateway\'s own keys cannot open them while Toda\'s can', async () => {
    const { compact, rid } = await craftQuery([{}]);
    const forward = await craftForward(compact);
    const res = await postForward(forward);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    released = { answer: res.body.answer, compact, forward };
    expect(companionMatches(res.body.records, (peekJwt(res.body.answer).claims as AnswerClaims).recordsDigest), 'the records beside the answer are the ones it names').to.equal(true);
    const answer = await verifyAnswer(res.body.answer);
    expect(answer.rid).to.equal(rid);
    expect(answer.results[0]).to.include({ status: 'ok' });
    // How many records there are is sealed for Toda with the records: the answer the gateway reads says only the status.
    expect(answer.results[0]).to.have.all.keys('ref', 'status');
    const records = res.body.records as string;
    const sealed = sealedOf.get(compact)!;
    for (const jwe of [records, sealed]) {
      for (const [name, key] of [['encryption', gw.decryption.key], ['signing', gw.signer.key]] as const) {
        expect(await rejectionOf(decryptWith(jwe, key)), `the gateway's ${name} key opened a JWE`).to.equal('ERR_JWE_DECRYPTION_FAILED');
      }
    }
    const opened = await openMessage(records, toda.decryption.key, recordsClaimsSchema, {
      key: (await directory.signingKey(A)).key, issuer: A, audience: B, typ: Typ.RECORDS,
    });
    expect(opened.subjects.map((x) => x.sub)).to.deep.equal([movers.main.codeAtB]);
    expect(opened.subjects[0]!.bundle.entry).to.have.length(movers.main.recordCount);
    const atA = await log(A, '"requestId" = ?', [rid]);
    expect(atA.map((r) => `${r.outcome}:${JSON.parse(r.recordIds).length}`)).to.deep.equal([`allowed:${movers.main.recordCount}`]);
  });

  it('when a forward\'s signature, audience, expiry or jti is wrong, it is replayed (also after a restart), or another member posts it, then Tawaramoto refuses it and logs the refusal', async () => {
    const { forward, compact } = released!;
    const replayed = await postForward(forward);
    expect(replayed.status).to.equal(409);
    expect(replayed.body).to.include({ type: 'https://hikitsugi.example/problems/replayed', field: 'jti' });
    await expectRefusalLoggedAtA(forward, 'replayed');
    const rewrapped = await craftForward(compact);
    expect((await postForward(rewrapped)).status, 'same query in a new envelope').to.equal(409);

    const now = Math.floor(Date.now() / 1000);
    const fresh = async () => (await craftQuery([{}])).compact;
    const base = async (compactQuery: string) => {
      const { iat: _i, exp: _e, jti: _j, ...rest } = peekJwt(await craftForward(compactQuery)).claims as Record<string, unknown>;
      return rest;
    };
    const cases: [string, string, number, string][] = [
      ['signed by Akiota as the gateway', await craftForward(await fresh(), { signer: { ...akiota.signer, id: GATEWAY_ID } }), 401, 'invalid-signature'],
      ['addressed to Akiota', await craftForward(await fresh(), { claims: { aud: C } }), 401, 'invalid-signature'],
      ['expired', await signRaw({ ...(await base(await fresh())), jti: randomUUID(), iat: now - 1000, exp: now - 700 }, gw.signer, Typ.FORWARD), 401, 'invalid-signature'],
      ['lives too long', await signRaw({ ...(await base(await fresh())), jti: randomUUID(), iat: now, exp: now + 3600 }, gw.signer, Typ.FORWARD), 401, 'invalid-signature'],
      ['no jti', await signRaw({ ...(await base(await fresh())), iat: now, exp: now + 60 }, gw.signer, Typ.FORWARD), 401, 'invalid-signature'],
      ['a query typ', await signMessage(peekJwt(await craftForward(await fresh())).claims, gw.signer, Typ.QUERY), 401, 'invalid-signature'],
    ];
    for (const [name, f, status, code] of cases) {
      const res = await postForward(f);
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).to.equal(status);
      expect(res.headers['content-type'], name).to.match(/application\/problem\+json/);
      expect(res.body.type, name).to.equal(`https://hikitsugi.example/problems/${code}`);
      await expectRefusalLoggedAtA(f, code);
    }

    // Toda's certificate is a valid federation certificate, but only the gateway forwards.
    const byToda = await postForward(await craftForward(await fresh()), asToda);
    expect(byToda.status).to.equal(403);
    expect(await logLine(A, /"peer":"112241".*"status":403.*"refused"/), 'refusal in A\'s log file').to.equal(true);

    // The replay table is A's own database: a restart does not forget it.
    await fed.stop(A);
    await fed.start(A);
    expect((await postForward(forward)).status, 'replay after restart').to.equal(409);
  });

  it('when the gateway alters a request (another code, another purpose, another requester), then Tawaramoto refuses and logs it', async () => {
    const other = fed.residents(A).find((r) => ![movers.main, movers.second, movers.elsewhere].some((m) => m.person.addresseeNumber === r.addresseeNumber))!;
    const [otherAtA] = await fed.rows<{ code: string }>(A, 'SELECT code FROM residents WHERE "addresseeNumber" = ?', [other.addresseeNumber]);

    // Another resident's code, with that resident's real attestation: the links differ.
    const swapped = await craftQuery([{ ref: 'with-attestation' }, { ref: 'code-only' }]);
    const requesterAttestation = await attestation(B, movers.main.codeAtB!);
    const forward = await craftForward(swapped.compact, { subjects: [
      { ref: 'with-attestation', code: otherAtA!.code, requesterAttestation, sourceAttestation: await attestation(A, otherAtA!.code) },
      { ref: 'code-only', code: otherAtA!.code, requesterAttestation, sourceAttestation: await attestation(A, movers.main.codeAtA!) },
    ] });
    const res = await postForward(forward);
    expect(res.status).to.equal(200);
    const answer = await verifyAnswer(res.body.answer);
    expect(answer.results.map((r) => `${r.ref}:${r.status}:${r.reason}`)).to.deep.equal([
      'with-attestation:denied:attestation_invalid', 'code-only:denied:attestation_invalid',
    ]);
    expect([answer.recordsDigest, res.body.records]).to.deep.equal([undefined, undefined]);
    const rows = await log(A, '"requestId" = ?', [swapped.rid]);
    expect(rows.map((r) => `${r.outcome}:${r.reason}:${JSON.parse(r.recordIds).length}`)).to.deep.equal(Array(2).fill('denied:attestation_invalid:0'));

    // B's query with another purpose, another requester, or re-signed by the gateway itself.
    const altered: [string, string][] = [
      ['purpose', alterClaims((await craftQuery([{}])).compact, (c) => { c.purpose = 'adverse-event-follow-up'; })],
      ['requester', alterClaims((await craftQuery([{}])).compact, (c) => { c.iss = C; })],
      ['re-signed by the gateway', await signMessage(peekJwt((await craftQuery([{}])).compact).claims, { ...gw.signer, id: B }, Typ.QUERY)],
    ];
    for (const [name, compactQuery] of altered) {
      const f = await craftForward(compactQuery);
      const refused = await postForward(f);
      expect(refused.status, `${name}: ${JSON.stringify(refused.body)}`).to.equal(401);
      expect(refused.body.type).to.equal('https://hikitsugi.example/problems/invalid-signature');
      await expectRefusalLoggedAtA(f, 'invalid-signature');
    }
    const otherRid = await craftForward((await craftQuery([{}])).compact, { claims: { rid: `e2e-${randomUUID()}` } });
    expect((await postForward(otherRid)).status).to.equal(400);
    await expectRefusalLoggedAtA(otherRid, 'invalid-claims');
  });

  it('when the gateway forwards a query whose consent expired, names no source in its terms, or lacks them, then Tawaramoto refuses on its own', async () => {
    const { compact, rid } = await craftQuery([
      { ref: 'expired', consent: { expiresAt: new Date(Date.now() - 1000).toISOString() } },
      { ref: 'source', consent: { sources: [C] } },
    ]);
    const res = await postForward(await craftForward(compact));
    expect(res.status).to.equal(200);
    const answer = await verifyAnswer(res.body.answer);
    expect(answer.results.map((r) => `${r.ref}:${r.status}:${r.reason}`)).to.deep.equal(['expired:consent_expired:consent_expired', 'source:no_consent:consent_source']);
    expect([answer.recordsDigest, res.body.records]).to.deep.equal([undefined, undefined]);
    const rows = await log(A, '"requestId" = ?', [rid]);
    expect(rows.map((r) => `${r.outcome}:${r.reason}:${JSON.parse(r.recordIds).length}`)).to.deep.equal(['denied:consent_expired:0', 'denied:consent_source:0']);

    const none = await craftQuery([{ consent: null }]);
    const f = await craftForward(none.compact);
    const refused = await postForward(f);
    expect(refused.status).to.equal(400);
    expect(refused.body).to.include({ type: 'https://hikitsugi.example/problems/invalid-claims', field: 'subjects.0.consent' });
    await expectRefusalLoggedAtA(f, 'invalid-claims');
  });

  it('when the identity check names a wrong birth date, then Tawaramoto answers identity_mismatch, releases nothing and logs no record ids', async () => {
    const who = await residentAtB(movers.main.atB!);
    const wrong = new Date(Date.parse(who.birthDate) + DAY).toISOString().slice(0, 10);
    const { compact, rid } = await craftQuery([{ identity: { birthDate: wrong } }]);
    const res = await toGateway(compact);
    expect(res.status).to.equal(200);
    expect(res.body.results[0]).to.include({ status: 'identity_mismatch' });
    const answer = await verifyAnswer(res.body.answers[0].answer);
    expect(answer.results[0]).to.include({ status: 'identity_mismatch', reason: 'identity_mismatch:birthDate' });
    expect(answer).not.to.have.property('records');
    const [row, ...more] = await log(A, '"requestId" = ?', [rid]);
    expect(more).to.deep.equal([]);
    expect(row).to.include({ action: 'exchange.query.answer', outcome: 'denied', reason: 'identity_mismatch:birthDate', subject: movers.main.person.addresseeNumber });
    expect(JSON.parse(row!.recordIds)).to.deep.equal([]);
    expect(JSON.parse(row!.flags)).to.include('identity_mismatch');
    expect(JSON.stringify(row)).not.to.contain(wrong);
    expect((await log(GATEWAY_ID, "\"requestId\" = ? AND action = 'query.answer'", [rid]))[0]).to.include({ outcome: 'denied', reason: 'identity_mismatch:birthDate' });

    // A sealed part that is no JWE for Tawaramoto (here: sealed for Toda itself) is refused as well.
    const misSealed = await sealMessage({ aud: A, jti: randomUUID(), identities: [{ ref: '0', birthDate: who.birthDate, sex: who.sex, kana: who.kana }] },
      toda.signer, Typ.SEALED_IDENTITIES, await directory.encryptionKey(B));
    const bad = await craftQuery([{}], { sealed: misSealed });
    const badAnswer = await verifyAnswer((await postForward(await craftForward(bad.compact))).body.answer);
    expect(badAnswer.results[0]).to.include({ status: 'denied', reason: 'sealed_identity_invalid' });
  });

  /* ---------- the exception path ---------- */

  it('when life or body is at stake, then a second clerk must approve, the query goes through without consent, every hop flags it, and the approval is spent once', async () => {
    const m = movers.second;
    const requests = `${fed.url(B)}/exchange/exception-requests`;
    const ask = () => api('POST', requests, { token: clerkB, body: {
      addresseeNumber: m.atB, source: A, purpose: 'next-dose-scheduling',
      justification: 'Unconscious after an accident; the treating hospital needs the tetanus history now.',
    } });
    const asked = await ask();
    expect(asked.status, JSON.stringify(asked.body)).to.equal(201);
    expect(asked.body.status).to.equal('pending');
    const id = asked.body.id as string;
    const pending = await query(clerkB, m.atB!, { exceptionId: id });
    expect(pending.body.results[0]).to.include({ status: 'denied', reason: 'exception_pending' });
    const self = await api('POST', `${requests}/${id}/approve`, { token: clerkB });
    expect(self.status).to.equal(403);
    expect(self.body.type).to.equal('https://hikitsugi.example/problems/second-approver-required');
    const approved = await api('POST', `${requests}/${id}/approve`, { token: clerk2B });
    expect(approved.status).to.equal(200);
    expect(approved.body.status).to.equal('approved');

    const res = await query(clerkB, m.atB!, { exceptionId: id });
    expect(res.body.results[0]).to.include({ status: 'ok', recordCount: m.recordCount, imported: m.recordCount });
    const rid = res.body.requestId as string;
    const hops = { [B]: await log(B, '"requestId" = ?', [rid]), [GATEWAY_ID]: await log(GATEWAY_ID, '"requestId" = ?', [rid]), [A]: await log(A, '"requestId" = ?', [rid]) };
    expect(hops[B]!.map((r) => r.action)).to.deep.equal(['exchange.query.send', 'exchange.records.import']);
    expect(hops[GATEWAY_ID]!.map((r) => r.action)).to.deep.equal(['query.route', 'query.answer']);
    expect(hops[A]!.map((r) => r.action)).to.deep.equal(['exchange.query.answer']);
    for (const [member, rows] of Object.entries(hops)) {
      for (const row of rows) {
        expect(JSON.parse(row.flags), `${member} ${row.action}`).to.include('life-protection');
        expect(row.legalBasis, `${member} ${row.action}`).to.equal('life-protection');
      }
    }

    const spent = await query(clerkB, m.atB!, { exceptionId: id });
    expect(spent.body.results[0]).to.include({ status: 'denied', reason: 'exception_used' });
    expect(await log(GATEWAY_ID, '"requestId" = ?', [spent.body.requestId])).to.deep.equal([]);

    // Two queries racing for one approval: exactly one goes out.
    const next = await ask();
    expect((await api('POST', `${requests}/${next.body.id}/approve`, { token: clerk2B })).status).to.equal(200);
    const raced = await Promise.all([query(clerkB, m.atB!, { exceptionId: next.body.id }), query(clerkB, m.atB!, { exceptionId: next.body.id })]);
    expect(raced.map((r) => `${r.body.results[0].status}:${r.body.results[0].reason ?? ''}`).sort()).to.deep.equal(['denied:exception_used', 'ok:']);
  });

  /* ---------- transport and bad input ---------- */

  it('when a client without a federation certificate connects to the gateway, the issuer or a federation port, then the connection is refused', async () => {
    const rogue = foreignCredentials(B);
    const targets = [`${fed.member(GATEWAY_ID).url}/health`, `${fed.member(ISSUER_ID).url}/health`, `${aFederation}/health`];
    const attempt = (url: string, options: https.RequestOptions) => new Promise<string>((resolve) => {
      const lib = url.startsWith('https:') ? https : http;
      const req = lib.request(url, { agent: false, ...options }, (res) => {
        res.resume();
        resolve(`status ${res.statusCode}`);
      });
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.on('error', (err) => resolve(`refused: ${(err as { code?: string }).code ?? err.message}`));
      req.end();
    });
    for (const url of targets) {
      expect(await attempt(url, { ca: toda.ca }), `${url} without a client certificate`).to.match(/^refused/);
      expect(await attempt(url, { ca: toda.ca, cert: rogue.tls.cert, key: rogue.tls.key }), `${url} with a foreign CA`).to.match(/^refused/);
      expect(await attempt(url.replace('https:', 'http:'), {}), `${url} over plain HTTP`).to.match(/^refused/);
      // Control: the same port with a federation certificate answers.
      expect(await attempt(url, { ca: toda.ca, cert: toda.tls.cert, key: toda.tls.key })).to.equal('status 200');
    }
  });

  it('when bodies are oversized, truncated or malformed, or name an unknown municipality, then each hop answers a problem, logs it and changes nothing', async () => {
    const gatewayUrl = fed.member(GATEWAY_ID).url;
    const tables = async () => ({
      replay: await count(GATEWAY_ID, 'replay_cache'), correspondence: await count(GATEWAY_ID, 'correspondence'),
      seen: await count(A, 'seen_tokens'), asked: await count(B, 'query_subjects'), residents: await count(B, 'residents'),
    });
    const before = await tables();
    const raw = (url: string, creds: MemberCredentials, body: string) => new Promise<{ status: number; body: any; type: string }>((resolve, reject) => {
      const req = https.request(url, {
        method: 'POST', agent: false, ca: creds.ca, cert: creds.tls.cert, key: creds.tls.key, headers: { 'content-type': 'application/json' },
      }, (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), type: String(res.headers['content-type']) }));
      });
      req.on('error', reject);
      req.end(body);
    });
    const problem = (res: { status: number; body: any; type?: string; headers?: unknown }, status: number, field: string) => {
      expect(res.status, JSON.stringify(res.body)).to.equal(status);
      expect(res.body.field).to.equal(field);
      expect(res.body.rule).to.be.a('string');
    };

    // The gateway.
    const huge = await asToda.postJson<any>(`${gatewayUrl}/queries`, { query: 'a'.repeat(5_000_000) });
    problem(huge, 413, 'body');
    problem(await raw(`${gatewayUrl}/queries`, toda, '{"query":"eyJhbGciOi'), 400, 'body');
    problem(await asToda.postJson<any>(`${gatewayUrl}/queries`, { query: 'not a token' }), 400, 'query');
    const claims = peekJwt((await craftQuery([{}])).compact).claims as QueryClaims;
    claims.subjects[0]!.source = '100013';
    claims.subjects[0]!.consent!.sources = ['100013'];
    const toNowhere = await signMessage(claims, toda.signer, Typ.QUERY);
    const nowhere = await toGateway(toNowhere);
    problem(nowhere, 400, 'subjects.0.source');
    expect(nowhere.body.type).to.equal('https://hikitsugi.example/problems/unknown-member');
    expect((await log(GATEWAY_ID, '"requestHash" = ?', [sha256Hex(toNowhere)])).map((r) => r.action)).to.deep.equal(['query.refuse']);
    expect(await logLine(GATEWAY_ID, /"path":"\/queries","status":413.*"refused"/), 'oversized body in the gateway log').to.equal(true);
    expect(await logLine(GATEWAY_ID, /"field":"query".*"refused"/), 'malformed token in the gateway log').to.equal(true);

    // Tawaramoto's federation port.
    problem(await asGateway.postJson<any>(`${aFederation}/federation/record-requests`, { forward: 'x'.repeat(9_000_000) }), 413, 'body');
    problem(await raw(`${aFederation}/federation/record-requests`, gw, '{"forward":"ey'), 400, 'body');
    problem(await asGateway.postJson<any>(`${aFederation}/federation/record-requests`, { forward: 42 }), 400, 'forward');
    const notJws = await postForward('only.two');
    expect(notJws.status).to.be.oneOf([400, 401]);
    await expectRefusalLoggedAtA('only.two', notJws.body.type.split('/').pop());
    expect(await logLine(A, /"status":413.*"refused"/), 'oversized body in A\'s log').to.equal(true);

    // Toda's staff API.
    const badCode = await api('POST', `${fed.url(B)}/exchange/queries`, { token: clerkB, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: movers.main.atB, source: '123456' }] } });
    problem(badCode, 400, 'subjects.0.source');
    const notMember = await api('POST', `${fed.url(B)}/exchange/queries`, { token: clerkB, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: movers.main.atB, source: '100013' }] } });
    problem(notMember, 400, 'subjects.0.source');
    expect(notMember.body.type).to.equal('https://hikitsugi.example/problems/unknown-member');
    const badToken = await api('POST', `${fed.url(B)}/exchange/queries`, { token: `${clerkB.slice(0, -4)}AAAA`, body: { purpose: 'next-dose-scheduling', subjects: [] } });
    expect(badToken.status).to.equal(401);
    expect(badToken.headers.get('content-type')).to.match(/application\/problem\+json/);
    expect((await api('POST', `${fed.url(B)}/move-ins`, { body: {} })).status).to.equal(401);
    const longCertificate = await api('POST', `${fed.url(B)}/move-ins`, { token: clerkB, body: { certificate: 'e'.repeat(20_001), myNumber: movers.main.person.myNumber, address: 'x' } });
    problem(longCertificate, 400, 'certificate');
    const toNonMember = await api('POST', `${fed.url(A)}/residents/${fed.residents(A).at(-1)!.addresseeNumber}/move-out`, {
      token: clerkA, body: { moveOutDate: '2026-04-01', destination: '123456', destinationAddress: 'x' },
    });
    problem(toNonMember, 400, 'destination');

    expect(await tables(), 'no data changed').to.deep.equal(before);
  });

  it('when every flow above has run, then the gateway\'s and the issuer\'s databases, their logs and the messages sent to the gateway hold no seeded My Number', async () => {
    const myNumbers = [A, B, C].flatMap((code) => fed.residents(code).map((r) => r.myNumber));
    const fileText = (path: string) => (existsSync(path) ? readFileSync(path).toString('latin1') : '');
    const decoded = sentToGateway.flatMap((m) => [m, ...m.split('.').slice(0, 2).map((p) => Buffer.from(p, 'base64url').toString('utf8'))]);
    const haystacks: Record<string, string> = { messages: decoded.join('\n') };
    for (const id of [GATEWAY_ID, ISSUER_ID]) {
      // SQLite: the file's bytes (and its WAL); PostgreSQL: every table's rows, read through SQL.
      haystacks[`${id} database`] = (await databaseContents(fed.member(id).env)).toString('latin1');
      haystacks[`${id} log`] = fileText(fed.member(id).logFile);
    }
    expect(haystacks['gateway database']).to.contain('correspondence');
    expect(haystacks['issuer log']!.length).to.be.greaterThan(0);
    for (const [where, text] of Object.entries(haystacks)) {
      const found = myNumbers.filter((n) => text.includes(n));
      expect(found, `${where} holds My Numbers`).to.deep.equal([]);
    }
  });
});
