/**
 * Helpers of the security suites: figures, member clients built from a federation's real PKI
 * folder, read-only looks into members' SQLite files, protocol messages composed with real keys
 * (the way an attacker holding those keys would), hostile tokens, and the My Number leak scanner.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'chai';
import sqlite from '../../shared/platform/sqlite-driver.ts';
import { decryptField, jose, peekJwt, SIGNING_ALG } from '../../shared/crypto.ts';
import { parseKey } from '../../shared/platform/config.ts';
import { createMemberClient, type MemberClient, type MemberResponse } from '../../shared/federation/member-http.ts';
import { companionDigest, companionMatches, openMessage, sealMessage, signMessage } from '../../shared/federation/messages.ts';
import { loadMemberCredentials, type MemberCredentials } from '../../shared/federation/pki.ts';
import {
  CONSENT_SCOPE, GATEWAY_ID, Typ, recordsClaimsSchema, type AnswerClaims, type ConsentTerms, type ForwardSubject, type Purpose, type QuerySubject,
  type ReleasedSubject,
} from '../../shared/federation/protocol.ts';
import { claimResident, type RunningFederation } from '../fixtures/federation.ts';
import { api } from '../fixtures/http.ts';
import { EMPTY_HEAD, OPAQUE_SEALED } from '../fixtures/factories.ts';
export { OPAQUE_SEALED };
import { isRefusal } from '../fixtures/refusals.ts';

/* ---------- figures ---------- */

/** Prints one figure line under the running suite: every security suite reports what it tried and what came of it. */
export function figure(line: string): void {
  console.log(`      ${line}`);
}

/**
 * Counts attacks and refusals. `check` fails the running test at once when an attack got
 * through, so the figure printed at the end can only say "N attempts, N refused" in a green run.
 */
export class AttackTally {
  attempts = 0;
  refused = 0;

  constructor(private readonly name: string, private readonly verb = 'refused') {}

  check(label: string, refused: boolean, detail?: unknown): void {
    this.attempts += 1;
    if (refused) this.refused += 1;
    // SECURITY_VERBOSE=1 lists every attempt with what came back, to read why each was refused.
    if (process.env.SECURITY_VERBOSE) figure(`  ${refused ? 'refused' : 'ACCEPTED'}: ${label} → ${JSON.stringify(detail ?? null).slice(0, 300)}`);
    expect(refused, `${label}: not refused ${detail === undefined ? '' : JSON.stringify(detail).slice(0, 600)}`).to.equal(true);
  }

  print(extra = ''): void {
    figure(`${this.name}: ${this.attempts} attempts, ${this.refused} ${this.verb}${extra}`);
  }
}

/* ---------- the federation's members, as files ---------- */

export const pkiDir = (fed: RunningFederation): string => join(fed.dataDir, 'pki');

/** A member's real credentials from the federation's PKI folder (what stealing its keys would give). */
export function credentialsOf(fed: RunningFederation, id: string): MemberCredentials {
  return loadMemberCredentials(join(pkiDir(fed), id));
}

/** An mTLS client holding a member's real certificate. */
export function clientOf(fed: RunningFederation, id: string): MemberClient {
  return createMemberClient(credentialsOf(fed, id));
}

export const federationUrl = (fed: RunningFederation, code: string): string => fed.member(code).federationUrl!;
export const databasePath = (fed: RunningFederation, id: string): string => fed.member(id).env.DATABASE_PATH!;

export interface ReadOnlyDb {
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  count(table: string): Promise<number>;
  close(): Promise<void>;
}

/** A read-only SQLite connection to a member's database file (WAL: it sees every committed write). */
export function openReadOnly(path: string): Promise<ReadOnlyDb> {
  return new Promise((resolve, reject) => {
    const db = new sqlite.Database(path, sqlite.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      db.configure('busyTimeout', 10_000);
      resolve({
        all: <T>(sql: string, params: unknown[] = []) => new Promise<T[]>((ok, fail) => db.all(sql, params, (e, rows) => (e ? fail(e) : ok(rows as T[])))),
        count: (table) => new Promise<number>((ok, fail) => db.get(`SELECT COUNT(*) AS n FROM "${table}"`, (e, row) => (e ? fail(e) : ok(Number((row as { n: number }).n))))),
        close: () => new Promise<void>((ok) => db.close(() => ok())),
      });
    });
  });
}

/** Row counts of the named tables, in one object (compare before and after a request). */
export async function countRows(db: ReadOnlyDb, tables: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of tables) out[t] = await db.count(t);
  return out;
}

/** Business tables of a municipality: a refused request must leave every one as it was. */
export const MUNICIPALITY_TABLES = [
  'residents', 'resident_history', 'vaccination_records', 'vaccination_tickets', 'ticket_reviews', 'consents', 'move_ins',
  'query_subjects', 'exception_requests', 'idempotency_keys', 'staff',
];

/** Every My Number held anywhere in the federation: each municipality's residents, decrypted with its own data key. */
export async function allMyNumbers(fed: RunningFederation): Promise<string[]> {
  const found = new Set<string>();
  for (const m of fed.members.filter((x) => x.kind === 'municipality')) {
    const key = parseKey(m.env.DATA_KEY!, 'DATA_KEY');
    for (const r of await fed.rows<{ id: string; myNumberEncrypted: string }>(m.id, 'SELECT id, "myNumberEncrypted" FROM residents')) {
      found.add(decryptField(key, r.myNumberEncrypted, r.id));
    }
  }
  for (const m of fed.members.filter((x) => x.kind === 'municipality')) for (const r of fed.residents(m.id)) found.add(r.myNumber);
  return [...found];
}

export interface HeldResident {
  id: string;
  addresseeNumber: string;
  code: string | null;
  status: string;
  birthDate: string;
  sex: string;
  kana: string;
}

/** Residents as a municipality's database holds them (the test's god view; the suites' attackers never get this). */
export function heldResidents(fed: RunningFederation, code: string): Promise<HeldResident[]> {
  return fed.rows<HeldResident>(code, 'SELECT id, "addresseeNumber", code, status, "birthDate", sex, kana FROM residents ORDER BY "addresseeNumber"');
}

/** The issuer's attestation the gateway keeps for a municipality's code (a rogue gateway holds these). */
export async function attestationOf(fed: RunningFederation, municipality: string, code: string): Promise<string> {
  const rows = await fed.rows<{ attestation: string }>(GATEWAY_ID, 'SELECT attestation FROM correspondence WHERE municipality = ? AND code = ?', [municipality, code]);
  if (!rows[0]) throw new Error(`no correspondence for ${municipality}/${code}`);
  return rows[0].attestation;
}

/* ---------- staff flows used as setup ---------- */

export const inDays = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString();

export interface Moved {
  from: string;
  to: string;
  /** Addressee number at the old and the new municipality. */
  fromAddressee: string;
  toAddressee: string;
  myNumber: string;
  birthDate: string;
  sex: string;
  kana: string;
  recordCount: number;
}

/**
 * Moves a seeded resident who still lives at `from` and has records to `to`, through the staff
 * APIs (move-out certificate, move-in with or without consent for `from`), then waits for the
 * new code. Each call claims a different resident (claimResident: no other suite of this process has it).
 */
export async function moveResident(fed: RunningFederation, from: string, to: string, options: { consent?: boolean; purpose?: Purpose } = {}): Promise<Moved> {
  const fromClerk = await fed.login(from, 'clerk1');
  const toClerk = await fed.login(to, 'clerk1');
  const held = new Map((await heldResidents(fed, from)).map((r) => [r.addresseeNumber, r]));
  for (;;) {
    const seeded = await claimResident(fed, from, (r) => r.records.length > 0);
    const records = await api('GET', `${fed.url(from)}/residents/${seeded.addresseeNumber}/vaccinations`, { token: fromClerk });
    if (records.status !== 200 || records.body.records.length === 0) continue;
    const out = await api('POST', `${fed.url(from)}/residents/${seeded.addresseeNumber}/move-out`, {
      token: fromClerk, body: { moveOutDate: new Date().toISOString().slice(0, 10), destination: to, destinationAddress: '転入先 1-1' },
    });
    if (out.status !== 201) throw new Error(`move-out: ${out.status} ${JSON.stringify(out.body)}`);
    const moveIn = await api('POST', `${fed.url(to)}/move-ins`, {
      token: toClerk,
      body: {
        certificate: out.body.certificate, myNumber: seeded.myNumber, address: '転入先 1-1',
        ...(options.consent === false ? {} : { consent: { purpose: options.purpose ?? 'next-dose-scheduling', expiresAt: inDays(30), method: 'written' } }),
      },
    });
    if (moveIn.status !== 201) throw new Error(`move-in: ${moveIn.status} ${JSON.stringify(moveIn.body)}`);
    await fed.waitForCodes(to);
    return {
      from, to, fromAddressee: seeded.addresseeNumber, toAddressee: moveIn.body.resident.addresseeNumber, myNumber: seeded.myNumber,
      birthDate: seeded.birthDate, sex: seeded.sex, kana: held.get(seeded.addresseeNumber)!.kana, recordCount: records.body.records.length,
    };
  }
}

/** The codes and attestations of a moved resident at both ends, as the gateway's table holds them. */
export async function codesOf(fed: RunningFederation, moved: Moved) {
  const atFrom = (await heldResidents(fed, moved.from)).find((r) => r.addresseeNumber === moved.fromAddressee)!;
  const atTo = (await heldResidents(fed, moved.to)).find((r) => r.addresseeNumber === moved.toAddressee)!;
  if (!atFrom.code || !atTo.code) throw new Error('codes not issued yet');
  return {
    fromCode: atFrom.code, toCode: atTo.code,
    fromAttestation: await attestationOf(fed, moved.from, atFrom.code),
    toAttestation: await attestationOf(fed, moved.to, atTo.code),
  };
}

/* ---------- protocol messages, composed with real keys ---------- */

export function consentTerms(source: string, purpose: Purpose = 'next-dose-scheduling', overrides: Partial<ConsentTerms> = {}): ConsentTerms {
  return {
    id: randomUUID(), scope: CONSENT_SCOPE, purpose, sources: [source], givenAt: new Date(Date.now() - 60_000).toISOString(),
    expiresAt: inDays(30), method: 'written', ...overrides,
  };
}

/** What B seals for A once per query: the identity checks of its subjects, bound to the query jti. */
export async function sealIdentities(b: MemberCredentials, a: MemberCredentials, jti: string, identities: ({ ref: string; birthDate: string; sex: string; kana: string } & Record<string, unknown>)[]): Promise<string> {
  return sealMessage({ aud: a.id, jti, identities: identities.map(({ ref, birthDate, sex, kana, moveIn }) => ({ ref, birthDate, sex, kana, ...(moveIn ? { moveIn } : {}) })) },
    b.signer, Typ.SEALED_IDENTITIES, a.encryption);
}


/** A query and the sealed part it names, as B sends them to the gateway. */
export interface SignedQuery {
  compact: string;
  jti: string;
  rid: string;
  sealed: string;
  /** The body of `POST /queries`. */
  body: { query: string; sealed: string };
}

/**
 * A query exactly as B's own code would sign it (valid unless the caller changes something), naming
 * its sealed part (`overrides.sealed`, else an opaque one) by digest unless `overrides.sealedDigest` says otherwise.
 */
export async function signQuery(b: MemberCredentials, subjects: QuerySubject[], overrides: Record<string, unknown> = {}, ttl?: number): Promise<SignedQuery> {
  const jti = String(overrides.jti ?? randomUUID());
  const rid = String(overrides.rid ?? `sec-${randomUUID()}`);
  const { sealed = OPAQUE_SEALED, ...claims } = overrides as { sealed?: string } & Record<string, unknown>;
  const compact = await signMessage({
    aud: GATEWAY_ID, jti, rid, purpose: 'next-dose-scheduling', actor: 'staff-under-test', subjects, sealedDigest: companionDigest(sealed), head: EMPTY_HEAD, ...claims,
  }, b.signer, Typ.QUERY, ttl);
  return { compact, jti, rid, sealed, body: { query: compact, sealed } };
}

/** One subject of a query with a code that B does not need to hold (the gateway decides). */
export function looseSubject(source: string, sub: string, ref = '0'): QuerySubject {
  return { ref, sub, source, legalBasis: 'consent', consent: consentTerms(source) } as QuerySubject;
}

/** A random code (26 base32 characters) that no municipality holds. */
export const randomCode = (): string => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return Array.from({ length: 26 }, () => alphabet[Math.floor(Math.random() * 32)]).join('');
};

/** A genuine query of B for a moved resident, with consent and the identity sealed for A. */
export async function genuineQuery(b: MemberCredentials, a: MemberCredentials, moved: Moved, toCode: string, overrides: Record<string, unknown> = {}) {
  return genuineBatch(b, a, [{ ref: '0', moved, toCode }], overrides);
}

/** A genuine query of B for several moved residents at one source: consent per subject, their identities in one envelope for A. */
export async function genuineBatch(b: MemberCredentials, a: MemberCredentials, subjects: { ref: string; moved: Moved; toCode: string }[], overrides: Record<string, unknown> = {}) {
  const jti = String(overrides.jti ?? randomUUID());
  const purpose = (overrides.purpose as Purpose | undefined) ?? 'next-dose-scheduling';
  const querySubjects = subjects.map(({ ref, toCode }) => ({ ref, sub: toCode, source: a.id, legalBasis: 'consent', consent: consentTerms(a.id, purpose) }) as QuerySubject);
  const sealed = await sealIdentities(b, a, jti, subjects.map(({ ref, moved }) => ({ ref, ...moved })));
  return signQuery(b, querySubjects, { sealed, ...overrides, jti, purpose });
}

/** The gateway's envelope to A, signed with the gateway's real key. */
export async function signForward(gateway: MemberCredentials, aud: string, query: string, subjects: ForwardSubject[], overrides: Record<string, unknown> = {}, ttl?: number): Promise<{ compact: string; jti: string }> {
  const jti = String(overrides.jti ?? randomUUID());
  const rid = String(overrides.rid ?? peekJwt(query).claims.rid ?? `sec-${randomUUID()}`);
  const compact = await signMessage({ aud, jti, rid, query, subjects, head: EMPTY_HEAD, ...overrides }, gateway.signer, Typ.FORWARD, ttl);
  return { compact, jti };
}

/**
 * What A released to B in its reply: the records envelope beside the answer, checked against the
 * digest the answer names and opened with B's key, A's signature verified.
 */
export async function releasedTo(b: MemberCredentials, a: MemberCredentials, res: MemberResponse): Promise<ReleasedSubject[]> {
  const answer = answerOf(res);
  const records = recordsOf(res);
  if (!answer?.recordsDigest) return [];
  if (!companionMatches(records, answer.recordsDigest)) throw new Error('the records beside the answer are not the ones it names');
  const opened = await openMessage(records!, b.decryption.key, recordsClaimsSchema, {
    key: createPublicKey(a.signer.key), issuer: a.id, audience: b.id, typ: Typ.RECORDS,
  });
  return opened.subjects;
}

/** A's answer, read without verification (the test only inspects what A decided). */
export function answerOf(res: MemberResponse): AnswerClaims | undefined {
  const answer = (res.body as { answer?: unknown })?.answer;
  return typeof answer === 'string' ? (peekJwt(answer).claims as unknown as AnswerClaims) : undefined;
}

/** The records envelope A sent beside its answer, if any. */
export function recordsOf(res: MemberResponse): string | undefined {
  const records = (res.body as { records?: unknown })?.records;
  return typeof records === 'string' ? records : undefined;
}

/**
 * How A refuses a forwarded query: the whole envelope as a problem (HTTP status and problem code),
 * or each subject in its signed answer (status and reason), never with records.
 */
export type RefusalByA = { status: number; code: string } | { subject: string; reason: string };

/** A refused the forwarded query exactly as `expected` says. */
export function refusedByA(res: MemberResponse, expected: RefusalByA): boolean {
  if ('code' in expected) return isRefusal(res, expected.status, expected.code);
  const answer = answerOf(res);
  return res.status === 200 && !!answer && answer.results.length > 0
    && answer.recordsDigest === undefined && recordsOf(res) === undefined && answer.results.every((r) => r.status === expected.subject && r.reason === expected.reason);
}

/* ---------- hostile tokens ---------- */

const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/**
 * A JWT with exactly these claims and header (no defaults: the caller decides iat/exp/jti), signed
 * with the federation's algorithm (ES256) unless the header names another one for its key.
 */
export async function rawJwt(claims: Record<string, unknown>, key: MemberCredentials['signer']['key'], header: Record<string, unknown>): Promise<string> {
  return new jose.SignJWT(claims).setProtectedHeader({ alg: SIGNING_ALG, ...header } as jose.JWTHeaderParameters).sign(key);
}

/** An RSA-2048 key of the attacker's own: the key type members held before P-256, for algorithm-confusion attempts. */
export const attackerRsaKey = (): ReturnType<typeof generateKeyPairSync>['privateKey'] => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

/** `alg: none` with a non-empty signature part, so it passes a compact-JWS shape check and reaches the verifier. */
export const unsignedJwt = (claims: Record<string, unknown>, header: Record<string, unknown>): string =>
  `${b64url({ ...header, alg: 'none' })}.${b64url(claims)}.${b64url('no-signature')}`;

/** The classic key confusion: HS256 with the signer's public key (PEM text) as the HMAC secret. */
export async function hs256WithPublicKey(claims: Record<string, unknown>, publicPem: string, header: Record<string, unknown>): Promise<string> {
  return new jose.SignJWT(claims).setProtectedHeader({ ...header, alg: 'HS256' } as jose.JWTHeaderParameters).sign(new TextEncoder().encode(publicPem));
}

/** The same token with its payload replaced and its signature kept. */
export function withPayload(compact: string, change: (claims: Record<string, unknown>) => Record<string, unknown>): string {
  const [header, payload, signature] = compact.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
  return `${header}.${b64url(change(claims))}.${signature}`;
}

/** Claims with a chosen lifetime window, relative to now (seconds). */
export const window = (iatOffset: number, expOffset: number): { iat: number; exp: number } => ({ iat: nowSeconds() + iatOffset, exp: nowSeconds() + expOffset });

/** Public key of a member's signing certificate, as PEM (what anyone reads from the directory). */
export const signingPublicPem = (creds: MemberCredentials): string =>
  new X509Certificate(creds.tls.cert).publicKey.export({ type: 'spki', format: 'pem' }).toString();

/* ---------- the My Number leak scanner ---------- */

const digest = (algorithm: string, text: string): Buffer => createHash(algorithm).update(text).digest();
/** base64 and base64url compared alike, unpadded. */
const normal64 = (text: string): string => text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

export interface Needles {
  myNumbers: Set<string>;
  /** Lower-case hex of SHA-256, SHA-1 and MD5 of each My Number. */
  hex: Map<string, string>;
  /** Unpadded base64url of those digests and of the My Number text itself. */
  b64: Map<string, string>;
  count: number;
}

/** What must never appear: each My Number, its unkeyed SHA-256/SHA-1/MD5 in hex and base64, and its own base64. */
export function leakNeedles(myNumbers: string[]): Needles {
  const hex = new Map<string, string>();
  const b64 = new Map<string, string>();
  for (const n of myNumbers) {
    for (const algorithm of ['sha256', 'sha1', 'md5']) {
      const d = digest(algorithm, n);
      hex.set(d.toString('hex'), `${algorithm}-hex(${n})`);
      b64.set(normal64(d.toString('base64')), `${algorithm}-base64(${n})`);
    }
    b64.set(normal64(Buffer.from(n).toString('base64')), `base64(${n})`);
  }
  return { myNumbers: new Set(myNumbers), hex, b64, count: myNumbers.length + hex.size + b64.size };
}

const HEX_SIZES = [32, 40, 64];
const B64_SIZES = [16, 22, 27, 43];

function windows(run: string, sizes: number[], visit: (w: string) => void): void {
  for (const size of sizes) for (let i = 0; i + size <= run.length; i++) visit(run.slice(i, i + size));
}

/**
 * Every needle found in `bytes`, also inside base64/base64url text (JWS segments, JSON strings,
 * SQLite pages), decoded up to two levels deep. Works on raw bytes (latin1), so binary database
 * pages are scanned as they are.
 */
export function scanForLeaks(bytes: Buffer, needles: Needles, depth = 0): string[] {
  const text = bytes.toString('latin1');
  const hits: string[] = [];
  for (const m of text.matchAll(/\d{12,}/g)) windows(m[0], [12], (w) => { if (needles.myNumbers.has(w)) hits.push(`my-number(${w})`); });
  for (const m of text.matchAll(/[0-9a-fA-F]{32,}/g)) windows(m[0].toLowerCase(), HEX_SIZES, (w) => { const h = needles.hex.get(w); if (h) hits.push(h); });
  for (const m of text.matchAll(/[A-Za-z0-9+/_-]{16,}/g)) {
    const run = normal64(m[0]);
    windows(run, B64_SIZES, (w) => { const h = needles.b64.get(w); if (h) hits.push(h); });
    if (depth < 2 && run.length >= 20) {
      // Decode from the start and from every "eyJ" ('{"' in base64): text glued to a JWS in a
      // database page would otherwise shift the alignment.
      const starts = new Set([0]);
      for (let i = run.indexOf('eyJ'); i >= 0; i = run.indexOf('eyJ', i + 1)) starts.add(i);
      for (const s of starts) hits.push(...scanForLeaks(Buffer.from(run.slice(s), 'base64url'), needles, depth + 1));
    }
  }
  return hits;
}
