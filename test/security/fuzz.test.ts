/**
 * Property-based fuzzing (fast-check) of every HTTP route that takes input and is not already
 * covered by test/integration/write-fuzz.test.ts (resident and record writes): the staff routes
 * of auth, search, consents, moves, queries, exceptions and the log, and the federation routes —
 * the gateway's /queries and /correspondence, a municipality's /federation/record-requests and
 * the issuer's /codes — over real mTLS with real member keys. Inputs range from valid ones (to
 * reach the deep rules; federation messages are signed with the real keys after mutation) through
 * valid-with-one-field-changed to arbitrary JSON and broken text. Only success or 4xx
 * problem+json may come back, each answer within a per-request timeout, and a refusal changes no
 * business row anywhere (the access log may grow by the one entry that records the refusal).
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { signPayload } from '../../shared/crypto.ts';
import { companionDigest, signHead } from '../../shared/federation/messages.ts';
import type { MemberCredentials } from '../../shared/federation/pki.ts';
import { GATEWAY_ID, ISSUER_ID, Typ } from '../../shared/federation/protocol.ts';
import { DEMO_PASSWORD } from '../../scripts/demo.ts';
import { EMPTY_HEAD, randomMyNumber } from '../fixtures/factories.ts';
import { randomBytes } from 'node:crypto';
import { AKIOTA, securityFederation, TAWARAMOTO, TODA, type SecurityFederation } from './federation.ts';
import {
  codesOf, countRows, credentialsOf, databasePath, figure, heldResidents, inDays, moveResident, MUNICIPALITY_TABLES, openReadOnly,
  randomCode, rawJwt, sealIdentities, type Moved, type ReadOnlyDb,
} from './support.ts';
import { rawRequest } from '../fixtures/refusals.ts';

const RUNS = Number(process.env.SECURITY_FUZZ_RUNS ?? process.env.FUZZ_RUNS ?? 15);
const REQUEST_TIMEOUT_MS = 20_000;
/** Where staff routes are fuzzed (B), and the source municipality of its federation traffic (A). */
const B = TODA;
const A = TAWARAMOTO;
const C = AKIOTA;

type BodyCase =
  | { kind: 'valid'; seed: number }
  | { kind: 'mutated'; seed: number; pick: number; value: unknown; drop: boolean; extra: boolean }
  | { kind: 'json'; json: unknown }
  | { kind: 'raw'; raw: string };

const bodyCase: fc.Arbitrary<BodyCase> = fc.oneof(
  { weight: 2, arbitrary: fc.nat().map((seed) => ({ kind: 'valid' as const, seed })) },
  {
    weight: 5,
    arbitrary: fc.record({ seed: fc.nat(), pick: fc.nat(), value: fc.jsonValue({ maxDepth: 3 }), drop: fc.boolean(), extra: fc.boolean() })
      .map((c) => ({ kind: 'mutated' as const, ...c })),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((json) => ({ kind: 'json' as const, json })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }).map((raw) => ({ kind: 'raw' as const, raw })) },
);
/** A path parameter: usually the live one, sometimes anything. */
const paramCase = fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 60 }) });

/** Changes one (possibly nested `a.b`) key of a valid object: drops it or sets any JSON; maybe adds a stranger. */
function mutate(valid: Record<string, unknown>, c: Extract<BodyCase, { kind: 'mutated' }>): Record<string, unknown> {
  const body = structuredClone(valid);
  const keys: string[] = [];
  for (const [k, v] of Object.entries(body)) {
    keys.push(k);
    const inner = Array.isArray(v) ? v[0] : v;
    if (inner && typeof inner === 'object') for (const ik of Object.keys(inner)) keys.push(`${k}.${ik}`);
  }
  if (keys.length === 0) return c.extra ? { unexpected: c.value } : body;
  const path = keys[c.pick % keys.length]!.split('.');
  let target = body as Record<string, unknown>;
  if (path.length === 2) {
    const v = body[path[0]!];
    target = (Array.isArray(v) ? v[0] : v) as Record<string, unknown>;
  }
  const key = path.at(-1)!;
  if (c.drop) delete target[key];
  else target[key] = c.value;
  if (c.extra) body.unexpected = c.value;
  return body;
}

interface Answer {
  status: number;
  contentType: string;
  body: unknown;
}

interface Route {
  name: string;
  /** Valid input for a seed: a body, a query string's fields, or (federation) the claims to sign. */
  valid(seed: number): Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Sends the case; `param` is a fuzzed path parameter (undefined: the live one). */
  send(input: { json?: unknown; raw?: string }, param: string | undefined): Promise<Answer>;
  hasParam?: boolean;
  /** Business row counts that a refusal must leave unchanged (and `always`: that nothing may change). */
  counts(): Promise<Record<string, number>>;
  always?: boolean;
  accessLog(): Promise<number>;
  afterSuccess?(): Promise<void>;
}

describe('security: property-based fuzzing of every route that takes input', function () {
  this.timeout(600_000);
  let fed: SecurityFederation;
  const dbs = new Map<string, ReadOnlyDb>();
  const tokens = new Map<string, string>();
  let moved: Moved;
  let codes: Awaited<ReturnType<typeof codesOf>>;
  let a: MemberCredentials;
  let b: MemberCredentials;
  let gw: MemberCredentials;
  let issuer: MemberCredentials;
  const live = {} as { own: string; other: string; consentId: string; certificates: string[]; exceptionId: string; queryJti: string; requestId: string };
  const tally = { cases: 0, success: 0, refused: 0 };
  const perRoute: string[] = [];

  const db = (id: string) => dbs.get(id)!;
  const accessLog = (...ids: string[]) => async () => {
    let n = 0;
    for (const id of ids) n += await db(id).count('access_log');
    return n;
  };

  async function staff(user: string, method: string, path: string, input: { json?: unknown; raw?: string }, query = false): Promise<Answer> {
    let url = `${fed.url(B)}${path}`;
    let body: string | undefined;
    if (query) {
      const fields = input.json && typeof input.json === 'object' && !Array.isArray(input.json) ? input.json as Record<string, unknown> : { q: input.raw ?? JSON.stringify(input.json) };
      const qs = new URLSearchParams(Object.entries(fields).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
      url += `?${qs.toString()}`;
    } else if (input.raw !== undefined) body = input.raw;
    else if (input.json !== undefined) body = JSON.stringify(input.json);
    const res = await fetch(url, {
      method,
      headers: { ...(user === 'nobody' ? {} : { authorization: `Bearer ${tokens.get(user)}` }), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: text };
  }

  async function member(as: MemberCredentials, url: string, input: { json?: unknown; raw?: string }): Promise<Answer> {
    const raw = input.raw ?? JSON.stringify(input.json);
    const res = await rawRequest(url, { method: 'POST', ca: as.ca, cert: as.tls.cert, key: as.tls.key, raw, timeoutMs: REQUEST_TIMEOUT_MS });
    return { status: res.status, contentType: res.contentType, body: res.body };
  }

  const at = (p: string | undefined, liveValue: string) => (p === undefined ? liveValue : encodeURIComponent(p));
  const staffCounts = async () => countRows(db(B), MUNICIPALITY_TABLES);

  /** Full claims of a genuine query of B for the moved resident, sealed for A (iss/iat/exp included: mutations may hit them). */
  async function queryClaims(): Promise<Record<string, unknown>> {
    const jti = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    return {
      iss: B, aud: GATEWAY_ID, jti, iat: now, exp: now + 240, rid: `fuzz-${randomUUID()}`, purpose: 'next-dose-scheduling', actor: 'fuzz',
      subjects: [{
        ref: '0', sub: codes.toCode, source: A, legalBasis: 'consent',
        consent: { id: randomUUID(), scope: 'vaccination-history', purpose: 'next-dose-scheduling', sources: [A], givenAt: new Date(Date.now() - 60_000).toISOString(), expiresAt: inDays(30), method: 'written' },
      }],
      sealed: await sealIdentities(b, a, jti, [{ ref: '0', ...moved }]),
      head: EMPTY_HEAD,
    };
  }

  /** A JSON body, or a signed message built from (possibly mutated) claims when the route is a federation one. */
  async function inputOf(route: Route, c: BodyCase, sign?: (claims: Record<string, unknown>) => Promise<Record<string, unknown>>): Promise<{ json?: unknown; raw?: string }> {
    if (c.kind === 'raw') return { raw: c.raw };
    if (c.kind === 'json') return { json: c.json };
    const valid = await route.valid(c.seed);
    const body = c.kind === 'mutated' ? mutate(valid, c) : valid;
    return { json: sign ? await sign(body) : body };
  }

  before(async () => {
    fed = await securityFederation();
    for (const id of [A, B, GATEWAY_ID, ISSUER_ID]) dbs.set(id, await openReadOnly(databasePath(fed, id)));
    for (const user of ['clerk1', 'clerk2', 'officer1', 'operator1', 'admin1']) tokens.set(user, await fed.login(B, user));
    [a, b, gw, issuer] = [credentialsOf(fed, A), credentialsOf(fed, B), credentialsOf(fed, GATEWAY_ID), credentialsOf(fed, ISSUER_ID)];
    moved = await moveResident(fed, A, B);
    codes = await codesOf(fed, moved);

    const clerk = { authorization: `Bearer ${tokens.get('clerk1')}`, 'content-type': 'application/json' };
    const post = async (path: string, body: unknown, headers: Record<string, string> = clerk) => {
      const res = await fetch(`${fed.url(B)}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
      return { status: res.status, body: await res.json() as any };
    };
    const created = await post('/residents', { name: '試験 太郎', kana: 'シケン タロウ', birthDate: '1980-02-02', sex: 'male', address: '戸田市 1-1', myNumber: randomMyNumber() });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    live.own = created.body.addresseeNumber;
    live.other = (await heldResidents(fed, B)).find((r) => r.status === 'resident' && r.addresseeNumber !== live.own)!.addresseeNumber;
    const consent = await post(`/residents/${live.own}/consents`, { purpose: 'next-dose-scheduling', sources: [A], expiresAt: inDays(30), method: 'written' });
    live.consentId = consent.body.id;
    // Move-out certificates addressed to B, for /move-ins (each can be used once).
    live.certificates = [];
    const aClerk = await fed.login(C, 'clerk1');
    for (const r of (await heldResidents(fed, C)).filter((x) => x.status === 'resident').slice(-2)) {
      const out = await fetch(`${fed.url(C)}/residents/${r.addresseeNumber}/move-out`, {
        method: 'POST', headers: { authorization: `Bearer ${aClerk}`, 'content-type': 'application/json' },
        body: JSON.stringify({ moveOutDate: new Date().toISOString().slice(0, 10), destination: B, destinationAddress: '戸田市 2-2' }),
      }).then((res) => res.json()) as { certificate: string };
      live.certificates.push(out.certificate);
    }
    const exception = await post('/exchange/exception-requests', {
      addresseeNumber: moved.toAddressee, source: A, purpose: 'next-dose-scheduling', justification: '救急搬送され本人の同意を得られないため接種歴の確認が必要',
    });
    live.exceptionId = exception.body.id;
    const query = await post('/exchange/queries', { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moved.toAddressee, source: A }] });
    live.requestId = query.body.requestId;
    const sent = await db(B).all<{ queryJti: string }>('SELECT queryJti FROM query_subjects WHERE requestId = ?', [live.requestId]);
    live.queryJti = sent[0]!.queryJti;
    // Codes register in the background: let them land before counting rows at the gateway.
    await fed.waitForCodes(B, 60_000);
  });

  after(async () => {
    for (const d of dbs.values()) await d.close();
    for (const line of perRoute) figure(line);
    figure(`fuzz: ${tally.cases} cases on ${perRoute.length} routes, ${tally.success} accepted, ${tally.refused} refused with 4xx, 0 server errors, 0 hangs, 0 changes on refusal`);
  });

  const text = (seed: number) => `確認 ${seed % 1000}`;
  const staffRoutes = (): Route[] => [
    { name: 'POST /auth/login', valid: (s) => ({ username: ['clerk1', 'clerk2', 'nobody'][s % 3], password: s % 2 ? DEMO_PASSWORD : 'not-the-password' }), send: (i) => staff('nobody', 'POST', '/auth/login', i), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'POST /staff', valid: (s) => ({ username: `fuzz${s % 100_000}`, displayName: text(s), role: ['clerk', 'operator', 'privacy_officer', 'admin'][s % 4], password: 'fuzz-password-long-enough' }), send: (i) => staff('admin1', 'POST', '/staff', i), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET /residents?…', valid: (s) => ({ kana: 'タナカ', page: String(1 + (s % 3)), pageSize: String(1 + (s % 50)), status: 'resident' }), send: (i) => staff('clerk1', 'GET', '/residents', i, true), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET /residents/:a', hasParam: true, valid: () => ({}), send: (_i, p) => staff('operator1', 'GET', `/residents/${at(p, live.other)}`, {}), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'POST …/consents', hasParam: true, valid: (s) => ({ purpose: 'next-dose-scheduling', sources: [A], expiresAt: inDays(1 + (s % 300)), method: 'written' }), send: (i, p) => staff('clerk1', 'POST', `/residents/${at(p, live.own)}/consents`, i), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'POST …/consents/:id/revoke', hasParam: true, valid: (s) => ({ reason: text(s) }), send: (i, p) => staff('clerk1', 'POST', `/residents/${live.own}/consents/${at(p, live.consentId)}/revoke`, i), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'POST /exchange/queries', valid: () => ({ purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moved.toAddressee, source: A }] }), send: (i) => staff('clerk1', 'POST', '/exchange/queries', i), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET /exchange/queries/:jti', hasParam: true, valid: () => ({}), send: (_i, p) => staff('clerk1', 'GET', `/exchange/queries/${at(p, live.queryJti)}`, {}), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'POST /exchange/exception-requests', valid: (s) => ({ addresseeNumber: moved.toAddressee, source: A, purpose: 'next-dose-scheduling', justification: `救急搬送され本人の同意を得られないため確認が必要 ${s}` }), send: (i) => staff('clerk1', 'POST', '/exchange/exception-requests', i), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'POST /exchange/exception-requests/:id/approve', hasParam: true, valid: () => ({}), send: (_i, p) => staff('clerk2', 'POST', `/exchange/exception-requests/${at(p, live.exceptionId)}/approve`, {}), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET /exchange/exception-requests?…', valid: (s) => ({ status: ['pending', 'approved', 'used', 'rejected'][s % 4] }), send: (i) => staff('clerk1', 'GET', '/exchange/exception-requests', i, true), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET /ticket-reviews?…', valid: (s) => ({ status: 'open', page: String(1 + (s % 3)), pageSize: '5' }), send: (i) => staff('clerk1', 'GET', '/ticket-reviews', i, true), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET /audit/entries?…', valid: (s) => ({ action: 'resident.read', outcome: 'allowed', limit: String(1 + (s % 20)), from: '2020-01-01T00:00:00Z' }), send: (i) => staff('officer1', 'GET', '/audit/entries', i, true), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET /audit/entries/:seq', hasParam: true, valid: () => ({}), send: (_i, p) => staff('officer1', 'GET', `/audit/entries/${at(p, '1')}`, {}), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET /audit/trace/:requestId', hasParam: true, valid: () => ({}), send: (_i, p) => staff('officer1', 'GET', `/audit/trace/${at(p, live.requestId)}`, {}), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET /audit/export.csv?…', valid: (s) => ({ outcome: s % 2 ? 'allowed' : 'denied', action: 'resident.read' }), send: (i) => staff('officer1', 'GET', '/audit/export.csv', i, true), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'POST /audit/reconcile', valid: (s) => ({ from: '2020-01-01T00:00:00Z', to: new Date(Date.now() + (s % 1000) * 1000).toISOString() }), send: (i) => staff('officer1', 'POST', '/audit/reconcile', i), counts: staffCounts, accessLog: accessLog(B) },
    { name: 'GET …/disclosure', hasParam: true, valid: () => ({}), send: (_i, p) => staff('officer1', 'GET', `/residents/${at(p, live.own)}/disclosure`, {}), counts: staffCounts, accessLog: accessLog(B) },
    // Last: a valid move-in registers a code (in the background) and a valid move-out ends `own` as a resident.
    {
      name: 'POST /move-ins',
      valid: (s) => ({ certificate: live.certificates[s % live.certificates.length], myNumber: randomMyNumber(), address: '戸田市 2-2', ...(s % 2 ? { consent: { purpose: 'next-dose-scheduling', expiresAt: inDays(30), method: 'written' } } : {}) }),
      send: (i) => staff('clerk1', 'POST', '/move-ins', i), counts: staffCounts, accessLog: accessLog(B),
      afterSuccess: () => fed.waitForCodes(B, 60_000),
    },
    { name: 'POST …/move-out', hasParam: true, valid: (s) => ({ moveOutDate: new Date().toISOString().slice(0, 10), destination: [A, C][s % 2], destinationAddress: text(s) }), send: (i, p) => staff('clerk1', 'POST', `/residents/${at(p, live.own)}/move-out`, i), counts: staffCounts, accessLog: accessLog(B) },
  ];

  const federationRoutes = (): Route[] => {
    const gatewayUrl = fed.member(GATEWAY_ID).url;
    const correspondence = () => countRows(db(GATEWAY_ID), ['correspondence']);
    return [
      {
        name: 'gateway POST /queries (as a municipality)',
        valid: () => queryClaims(),
        send: async (i) => member(b, `${gatewayUrl}/queries`, i),
        // The gateway writes no business row even when it answers, and A changes nothing when asked.
        counts: async () => ({ ...(await correspondence()), ...(await countRows(db(A), MUNICIPALITY_TABLES)) }),
        always: true,
        accessLog: accessLog(GATEWAY_ID),
      },
      {
        name: 'gateway POST /correspondence (as the issuer)',
        valid: async (s) => {
          const code = randomCode();
          const link = Buffer.from(randomUUID() + randomUUID()).toString('base64url').slice(0, 43);
          const attestation = await signPayload({ iss: ISSUER_ID, municipality: C, code, link: s % 2 ? link : 'x'.repeat(43) }, { ...issuer.signer, typ: Typ.ATTESTATION });
          return { linkId: Buffer.from(randomUUID() + randomUUID()).toString('base64url').slice(0, 43), municipality: C, code, attestation };
        },
        send: (i) => member(issuer, `${gatewayUrl}/correspondence`, i),
        counts: correspondence,
        accessLog: accessLog(GATEWAY_ID),
      },
      {
        name: 'municipality POST /federation/record-requests (as the gateway)',
        valid: async () => {
          const query = await queryClaims();
          const now = Math.floor(Date.now() / 1000);
          return {
            iss: GATEWAY_ID, aud: A, jti: randomUUID(), iat: now, exp: now + 240, rid: query.rid, query,
            subjects: [{ ref: '0', code: codes.fromCode, requesterAttestation: codes.toAttestation, sourceAttestation: codes.fromAttestation }], head: EMPTY_HEAD,
          };
        },
        send: (i) => member(gw, `${federationUrl(A)}/federation/record-requests`, i),
        // Answering never changes A's business data, whatever comes in.
        counts: () => countRows(db(A), MUNICIPALITY_TABLES),
        always: true,
        accessLog: accessLog(A),
      },
      {
        name: 'issuer POST /codes (as a municipality)',
        // A seed, as a municipality finalizes it (docs/DESIGN.md §4.2): the issuer takes no My Number.
        // With its signed log head for the issuer (docs/PROTOCOL.md §3.0).
        valid: async () => ({ seed: randomBytes(32).toString('base64url'), head: await signHead(EMPTY_HEAD, b.signer, ISSUER_ID) }),
        send: (i) => member(b, `${fed.member(ISSUER_ID).url}/codes`, i),
        counts: correspondence,
        accessLog: accessLog(ISSUER_ID),
      },
    ];
  };
  const federationUrl = (code: string) => fed.member(code).federationUrl!;

  /**
   * B's (mutated) query claims signed by B: the sealed part leaves the claims and travels beside the
   * query, named by its digest when it is still a string (docs/PROTOCOL.md §3.11).
   */
  async function signedQuery(claims: Record<string, unknown>): Promise<{ query: string; sealed: unknown }> {
    const { sealed, ...rest } = claims;
    const named = typeof sealed === 'string' ? { ...rest, sealedDigest: companionDigest(sealed) } : rest;
    return { query: await rawJwt(named, b.signer.key, { kid: b.signer.kid, typ: Typ.QUERY }), sealed };
  }

  /** How a federation route's (mutated) claims become its body. */
  function signerFor(route: Route): ((claims: Record<string, unknown>) => Promise<Record<string, unknown>>) | undefined {
    if (route.name.startsWith('gateway POST /queries')) return signedQuery;
    if (route.name.startsWith('municipality POST /federation')) {
      return async (claims) => {
        // The embedded query is signed by B; a mutation may have replaced it with anything.
        const q = claims.query;
        const { query, sealed } = q && typeof q === 'object' && !Array.isArray(q) ? await signedQuery(q as Record<string, unknown>) : { query: q, sealed: undefined };
        return { forward: await rawJwt({ ...claims, query }, gw.signer.key, { kid: gw.signer.kid, typ: Typ.FORWARD }), sealed };
      };
    }
    return undefined;
  }

  function property(route: Route, seen: { cases: number; success: number }) {
    return fc.asyncProperty(bodyCase, route.hasParam ? paramCase : fc.constant(undefined), async (c, p) => {
      seen.cases += 1;
      const input = await inputOf(route, c, signerFor(route));
      const before = await route.counts();
      const logBefore = await route.accessLog();
      const res = await route.send(input, p);
      expect(res.status, `${route.name} → ${res.status} ${String(res.body).slice(0, 300)}`).to.be.within(200, 499);
      if (res.status >= 400) {
        expect(res.contentType, `${res.status} ${String(res.body).slice(0, 200)}`).to.match(/application\/problem\+json/);
        expect(await route.counts(), `${res.status} ${String(res.body).slice(0, 300)}`).to.deep.equal(before);
        expect(await route.accessLog() - logBefore, 'a refusal adds at most the entry that records it').to.be.at.most(1);
        tally.refused += 1;
      } else {
        if (route.always) expect(await route.counts(), `${route.name} changed business rows while answering`).to.deep.equal(before);
        seen.success += 1;
        tally.success += 1;
        await route.afterSuccess?.();
      }
    });
  }

  it('when random input reaches the federation routes (gateway, issuer, a municipality\'s federation port), then only 2xx or 4xx come back and a refusal changes no row', async () => {
    for (const route of federationRoutes()) {
      const seen = { cases: 0, success: 0 };
      await fc.assert(property(route, seen), { numRuns: RUNS * 2, endOnFailure: true });
      tally.cases += seen.cases;
      perRoute.push(`  ${route.name}: ${seen.cases} cases, ${seen.success} accepted`);
    }
  });

  it('when random input reaches the staff routes not covered by the write fuzz, then only 2xx or 4xx come back and a refusal changes no row', async () => {
    for (const route of staffRoutes()) {
      const seen = { cases: 0, success: 0 };
      await fc.assert(property(route, seen), { numRuns: RUNS, endOnFailure: true });
      tally.cases += seen.cases;
      perRoute.push(`  ${route.name}: ${seen.cases} cases, ${seen.success} accepted`);
    }
  });
});
