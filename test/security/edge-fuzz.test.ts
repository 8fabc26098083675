/**
 * Property-based fuzzing (fast-check, fixed seed) of the edge of every member: every route of the
 * municipality's staff and federation apps, the gateway's member and staff apps and the issuer,
 * found by walking each Express app's own router (a route added later is fuzzed too); case n of an
 * app goes to its route n mod routes, so every route is reached (at least `EDGE_FUZZ_RUNS` cases per
 * app, and one per route where an app has more). Each case
 * is written as raw bytes on a socket — mTLS with a real member certificate on member ports — so
 * that broken percent-encoding, control characters, conflicting headers, compressed or falsely
 * compressed bodies, wrong content types, oversized and malformed bodies all reach the server as
 * a hostile client would send them, with random extra headers (Expect, Prefer, Idempotency-Key,
 * Cookie and unknown names). Only 2xx–4xx may come back; every 4xx is problem+json; an unknown
 * expectation is 417 naming `expect`; no request hangs. The test prints routes reached, cases
 * tried, refused and 5xx seen (SECURITY.md, threat model §1).
 */
import net from 'node:net';
import tls from 'node:tls';
import { gzipSync } from 'node:zlib';
import type { Express } from 'express';
import type { Server } from 'node:https';
import { expect } from 'chai';
import fc from 'fast-check';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { CONTINUE } from '../../shared/platform/http.ts';
import type { MemberCredentials } from '../../shared/federation/pki.ts';
import { startInProcessFederation, TAWARAMOTO, TODA, type InProcessFederation } from '../fixtures/inprocess-federation.ts';
import { figure } from './support.ts';

const SEED = Number(process.env.EDGE_FUZZ_SEED ?? 20_250_401);
const RUNS = Number(process.env.EDGE_FUZZ_RUNS ?? 120);
const REQUEST_TIMEOUT_MS = 20_000;
const MY_NUMBER = completeMyNumber('12345678901');

interface RouteSpec {
  method: string;
  path: string;
}

/** Every (method, path) an Express 5 app routes, through mounted routers. */
function routesOf(app: Express): RouteSpec[] {
  const out: RouteSpec[] = [];
  const walk = (stack: unknown[]) => {
    for (const layer of stack as { route?: { path: string | string[]; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[]) {
      if (layer.route) {
        // One route may be registered under several paths.
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const method of Object.keys(layer.route.methods)) {
          if (method !== '_all') for (const path of paths) out.push({ method: method.toUpperCase(), path });
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: unknown[] } }).router.stack);
  return out;
}

interface Target {
  name: string;
  url: URL;
  routes: RouteSpec[];
  /** Client certificate for member ports. */
  tls?: MemberCredentials;
  /** Valid bearer tokens on staff ports (used for about half the cases). */
  tokens: string[];
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes `head` + `body` on a fresh connection and reads the answer until the server closes it. */
function rawExchange(target: Target, head: string, body: Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const port = Number(target.url.port);
    const socket = target.tls
      ? tls.connect({ host: '127.0.0.1', port, ca: target.tls.ca, cert: target.tls.tls.cert, key: target.tls.tls.key, servername: 'localhost' })
      : net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`));
    }, REQUEST_TIMEOUT_MS);
    socket.once(target.tls ? 'secureConnect' : 'connect', () => socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body])));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      // Interim answers (100 Continue to `Expect: 100-continue`) come before the final one.
      const text = Buffer.concat(chunks).toString('utf8').replace(/^(HTTP\/1\.1 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
      const [top = '', ...rest] = text.split('\r\n\r\n');
      const lines = top.split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers, body: rest.join('\r\n\r\n') });
    });
  });
}

const notations = [MY_NUMBER, `${MY_NUMBER.slice(0, 4)}-${MY_NUMBER.slice(4, 8)}-${MY_NUMBER.slice(8)}`,
  MY_NUMBER.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)))];
/** Path parameter values: plausible, random, and hostile encodings. */
const paramValue = fc.oneof(
  fc.constantFrom('1', '0000000001', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', '00000000-0000-4000-8000-000000000000', 'x'.repeat(300)),
  fc.constantFrom('%E0%A4%A', '%ZZ', '%', '%00', '%0A', '%C0%AF', '..%2F..', '%ED%A0%80', '%F0%9F%98'),
  fc.constantFrom(...notations.map(encodeURIComponent)),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
);
const queryString = fc.oneof(
  fc.constant(''),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom(...notations, '2026-02-30', '9999-12-31T00:00:00Z')), { maxKeys: 4 })
    .map((d) => new URLSearchParams(d).toString()),
  fc.constantFrom('name=%E0%A4%A', 'q=%', 'a[b]=c', 'from=%00', 'limit=-1&limit=2', 'kana=%ED%A0%80', 'status=resident&status=deceased'),
);
const contentType = fc.constantFrom(
  undefined, 'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/json; charset=x-unknown',
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/problem+json', '', ';;;', 'application/json, text/plain',
);
const contentEncoding = fc.constantFrom(undefined, undefined, 'gzip', 'deflate', 'br', 'identity', 'x-unknown', 'gzip, gzip', 'GZIP');
const requestId = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 200 }).map((s) => s.replace(/[\r\n]/g, '')), fc.constantFrom(...notations.slice(0, 2), 'trace-0001-abcd'));
const body = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.jsonValue({ maxDepth: 4 }).map((json) => ({ kind: 'json' as const, json })),
  fc.string({ maxLength: 300 }).map((raw) => ({ kind: 'raw' as const, raw })),
  fc.jsonValue({ maxDepth: 2 }).map((json) => ({ kind: 'gzip' as const, json })),
  fc.constantFrom({ kind: 'deep' as const }, { kind: 'huge' as const }, { kind: 'notations' as const }),
);
/**
 * Headers some frameworks act on (a bogus `Expect` got Node's bare 417), well-known ones with
 * odd values, and random names; values never hold CR or LF (that would be another request).
 */
const extraHeader = fc.tuple(
  fc.oneof(
    fc.constantFrom('Expect', 'Expect', 'Prefer', 'Idempotency-Key', 'Cookie', 'If-None-Match', 'If-Modified-Since', 'Range', 'Accept', 'Accept-Encoding',
      'Accept-Charset', 'Origin', 'X-Forwarded-For', 'X-HTTP-Method-Override', 'Forwarded', 'TE', 'Upgrade'),
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,24}$/),
  ),
  fc.oneof(
    fc.constantFrom('100-continue', 'bogus', '200-ok', '100-continue, bogus', '', 'respond-async, wait=1', 'return=minimal', 'handling=lenient',
      'session=x; __Host-a=b', 'bytes=0-0,-1', '*', 'W/"x"', 'h2c', 'deflate;q=0', '00000000-0000-4000-8000-000000000000', ...notations),
    fc.string({ maxLength: 60 }).map((v) => v.replace(/[\r\n]/g, '')),
  ),
);
/** Request-line and header damage Node's parser (not Express) must refuse as a problem. */
const damage = fc.constantFrom(undefined, undefined, undefined, undefined, 'ctl-in-path', 'ctl-in-header', 'length-and-chunked', 'bad-length');

const caseArb = fc.record({
  method: fc.option(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'), { freq: 4 }),
  params: fc.array(paramValue, { minLength: 3, maxLength: 3 }), liveParams: fc.boolean(), query: queryString,
  auth: fc.constantFrom('token', 'token', 'none', 'garbage'), token: fc.nat(), contentType, contentEncoding, requestId, body, damage,
  extraHeaders: fc.array(extraHeader, { maxLength: 3 }),
});
type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function bodyBytes(c: Case): Buffer | undefined {
  switch (c.body.kind) {
    case 'none': return undefined;
    case 'json': return Buffer.from(JSON.stringify(c.body.json) ?? 'null');
    case 'raw': return Buffer.from(c.body.raw);
    case 'gzip': return gzipSync(Buffer.from(JSON.stringify(c.body.json) ?? 'null'));
    case 'deep': return Buffer.from('['.repeat(500) + ']'.repeat(500));
    case 'huge': return Buffer.from(JSON.stringify({ name: 'x'.repeat(20_000_000) }));
    case 'notations': return Buffer.from(JSON.stringify({ name: notations[2], address: notations[1], reason: notations[0], justification: `救急搬送 ${notations[1]} のため確認が必要です` }));
  }
}

/** Case `n` of a target goes to its route `n mod routes`, so every route is reached in turn. */
function requestOf(target: Target, route: RouteSpec, c: Case): { head: string; body: Buffer } {
  const method = c.method ?? route.method;
  let i = 0;
  let path = route.path.replace(/:[A-Za-z]+/g, () => (c.liveParams ? '1' : c.params[i++ % 3]!));
  if (c.query) path += `?${c.query}`;
  if (c.damage === 'ctl-in-path') path += '\u0001x';
  const payload = bodyBytes(c) ?? Buffer.alloc(0);
  const headers: string[] = [`Host: 127.0.0.1:${target.url.port}`, 'Connection: close'];
  if (c.auth === 'token' && target.tokens.length) headers.push(`Authorization: Bearer ${target.tokens[c.token % target.tokens.length]}`);
  if (c.auth === 'garbage') headers.push('Authorization: Bearer not.a.token');
  if (c.contentType !== undefined) headers.push(`Content-Type: ${c.contentType}`);
  if (c.contentEncoding !== undefined) headers.push(`Content-Encoding: ${c.contentEncoding}`);
  if (c.requestId !== undefined) headers.push(`X-Request-Id: ${Buffer.from(c.requestId, 'utf8').toString('latin1')}`);
  for (const [name, value] of c.extraHeaders) headers.push(`${name}: ${Buffer.from(value, 'utf8').toString('latin1')}`);
  if (c.damage === 'ctl-in-header') headers.push('X-Note: a\u0000b');
  if (c.damage === 'length-and-chunked') headers.push('Transfer-Encoding: chunked');
  headers.push(`Content-Length: ${c.damage === 'bad-length' ? '-1' : payload.length}`);
  return { head: `${method} ${path} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`, body: payload };
}

describe('security: edge fuzzing of every route of every member (raw HTTP, fixed seed)', function () {
  this.timeout(900_000);
  let fed: InProcessFederation;
  const targets: Target[] = [];
  const tally = { cases: 0, refused: 0, accepted: 0, serverErrors: 0, routes: 0, reached: 0, expect: 0 };
  const perTarget: string[] = [];

  before(async () => {
    fed = await startInProcessFederation({ municipalities: [TAWARAMOTO, TODA] });
    const m = fed.m(TODA);
    const staffTokens = await Promise.all(['clerk', 'privacy_officer', 'operator', 'admin'].map((r) => m.tokenFor(r as 'clerk')));
    const app = (server: Server) => server.listeners('request')[0] as unknown as Express;
    targets.push(
      { name: 'municipality staff app', url: new URL(m.url), routes: routesOf(m.staffApp), tokens: staffTokens },
      { name: 'municipality federation app', url: new URL(m.federationUrl), routes: routesOf(app(m.federationServer!)), tls: fed.pki.credentials('gateway'), tokens: [] },
      { name: 'gateway member app', url: new URL(fed.gateway.url), routes: routesOf(fed.gateway.gateway.app), tls: fed.pki.credentials(TODA), tokens: [] },
      { name: 'gateway staff app', url: new URL(fed.gatewayStaffUrl), routes: routesOf(fed.gateway.gateway.staffApp!), tokens: [await fed.gatewayLogin()] },
      { name: 'issuer', url: new URL(fed.issuer.url), routes: routesOf(fed.issuer.issuer.app), tls: fed.pki.credentials(TODA), tokens: [] },
    );
  });

  after(async () => {
    for (const line of perTarget) figure(line);
    figure(`edge fuzz (seed ${SEED}): ${tally.reached} of ${tally.routes} routes reached, ${tally.cases} cases, ${tally.accepted} accepted, `
      + `${tally.refused} refused with 4xx problem+json, ${tally.serverErrors} 5xx; ${tally.expect} cases with a bogus Expect, each 417 problem+json`);
    await fed?.close();
  });

  it('when hostile paths, query strings, headers, encodings and bodies reach every route of every member, then only 2xx–4xx come back, every 4xx as problem+json, and nothing hangs', async () => {
    const failures: string[] = [];
    for (const target of targets) {
      expect(target.routes.length, `${target.name} routes`).to.be.greaterThan(0);
      const seen = { cases: 0, refused: 0 };
      const reached = new Set<number>();
      await fc.assert(fc.asyncProperty(caseArb, async (c) => {
        const index = seen.cases % target.routes.length;
        const request = requestOf(target, target.routes[index]!, c);
        const res = await rawExchange(target, request.head, request.body);
        reached.add(index);
        seen.cases += 1;
        tally.cases += 1;
        const what = `${target.name}: ${request.head.split('\r\n')[0]} → ${res.status} ${res.body.slice(0, 200)}`;
        if (res.status >= 500) tally.serverErrors += 1;
        expect(res.status, what).to.be.within(200, 499);
        if (res.status >= 400) {
          tally.refused += 1;
          seen.refused += 1;
          if (!request.head.startsWith('HEAD ')) expect(res.headers['content-type'] ?? '', what).to.match(/^application\/problem\+json/);
        } else {
          tally.accepted += 1;
        }
        // Node alone answers an expectation it does not know with a bare 417; a member names the header.
        const expectation = c.extraHeaders.find(([name]) => name.toLowerCase() === 'expect')?.[1];
        if (expectation !== undefined && !CONTINUE.test(expectation) && !/[\u0000-\u0008\u000a-\u001f\u007f]/.test(expectation) && !c.damage && res.status !== 431) {
          tally.expect += 1;
          expect(res.status, what).to.equal(417);
          if (!request.head.startsWith('HEAD ')) expect(JSON.parse(res.body), what).to.include({ type: 'https://hikitsugi.example/problems/expectation-failed', field: 'expect' });
        }
      }), { numRuns: Math.max(RUNS, target.routes.length), seed: SEED, endOnFailure: true }).catch((err: Error) => {
        failures.push(`${target.name} (seed ${SEED}): ${err.message.slice(0, 4000)}`);
      });
      tally.routes += target.routes.length;
      tally.reached += reached.size;
      perTarget.push(`  ${target.name}: ${reached.size} of ${target.routes.length} routes reached, ${seen.cases} cases, ${seen.refused} refused`);
    }
    expect(failures, failures.join('\n')).to.deep.equal([]);
    expect(tally.serverErrors).to.equal(0);
    expect(tally.reached, 'routes reached').to.equal(tally.routes);
    expect(tally.expect, 'cases with a bogus Expect').to.be.greaterThan(0);
  });
});
