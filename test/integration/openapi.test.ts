/**
 * The OpenAPI documents every member serves at GET /openapi.json (docs/PROTOCOL.md §2), built from
 * the zod schemas its routes parse with: each is a valid OpenAPI 3.1 document (swagger-parser);
 * each describes exactly the routes its Express app has, found by walking the app's own router
 * (a route added without a description fails here, and so does a description of a route that is
 * gone); no example in any of them is shaped like a My Number. The staff ports serve theirs
 * without sign-in; the federation ports only to members, over mTLS like every route there. The
 * FHIR R4 API under /fhir/R4 is described by its CapabilityStatement, not here.
 */
import type { Server } from 'node:https';
import { expect } from 'chai';
import express, { type Express } from 'express';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { findMyNumbers } from '../../shared/identifiers.ts';
import { FHIR_BASE } from '../../services/municipality/fhir/routes.ts';
import { checkAgainstDocument } from '../fixtures/http.ts';
import { startInProcessFederation, TODA, type InProcessFederation } from '../fixtures/inprocess-federation.ts';

interface Route {
  method: string;
  path: string;
}

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: string | string[];
}

/** Every (method, path) an Express 5 app routes, mounted routers included under their mount path. */
function routesOf(app: Express): Route[] {
  const out: Route[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        // One route may be registered under several paths.
        for (const path of [layer.route.path].flat()) {
          for (const method of Object.keys(layer.route.methods)) if (method !== '_all') out.push({ method: method.toUpperCase(), path: prefix + path });
        }
      } else if (layer.handle?.stack) {
        const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(layer.handle.stack, prefix + mount);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return out;
}

type Document = { openapi: string; paths: Record<string, Record<string, unknown>> };

/** The operations a document describes, as Express paths (`{id}` → `:id`). */
const documented = (doc: Document): Route[] => Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item)
  .filter((k) => ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'].includes(k))
  .map((method) => ({ method: method.toUpperCase(), path: path.replace(/\{([^}]+)\}/g, ':$1') })));

const key = (r: Route) => `${r.method} ${r.path}`;

/** Routes an app has that its document does not describe, and described ones it does not have (paths under `exclude` aside). */
function coverage(name: string, app: Express, doc: Document, exclude?: string): string[] {
  const routed = new Set(routesOf(app).map(key).filter((k) => !exclude || !k.split(' ')[1]!.startsWith(exclude)));
  const described = new Set(documented(doc).map(key));
  return [
    ...[...routed].filter((r) => !described.has(r)).map((r) => `${name}: ${r} is routed but not described in its OpenAPI document`),
    ...[...described].filter((d) => !routed.has(d)).map((d) => `${name}: ${d} is described but not routed`),
  ];
}

/** Every string of a document but regular expressions (`pattern`: zod's UUID pattern spells out the nil UUID). */
function textsOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) textsOf(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      if (k !== 'pattern') textsOf(v, out);
    }
  }
  return out;
}

/** Every value a document offers as an example or a fixed value, anywhere in it. */
function exampleValues(value: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(value)) for (const v of value) exampleValues(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (['example', 'examples', 'default', 'const', 'enum'].includes(k)) out.push(v);
      exampleValues(v, out);
    }
  }
  return out;
}

describe('integration: OpenAPI documents of every member', function () {
  this.timeout(180_000);
  let fed: InProcessFederation;
  const targets: { name: string; app: Express; doc: Document; exclude?: string }[] = [];

  before(async () => {
    fed = await startInProcessFederation({ municipalities: [TODA] });
    const m = fed.m(TODA);
    const staff = async (url: string) => {
      // Public on staff ports: no session token.
      const res = await fetch(`${url}/openapi.json`);
      expect(res.status, `${url}/openapi.json`).to.equal(200);
      return await res.json() as Document;
    };
    const member = async (as: string, url: string) => {
      const res = await fed.client(as).getJson<Document>(`${url}/openapi.json`);
      expect(res.status, `${url}/openapi.json as ${as}`).to.equal(200);
      return res.body;
    };
    const app = (server: Server) => server.listeners('request')[0] as unknown as Express;
    targets.push(
      { name: 'municipality staff API', app: m.staffApp, doc: await staff(m.url), exclude: FHIR_BASE },
      { name: 'municipality federation API', app: app(m.federationServer!), doc: await member('gateway', m.federationUrl) },
      { name: 'gateway member API', app: fed.gateway.gateway.app, doc: await member(TODA, fed.gateway.url) },
      { name: 'gateway staff API', app: fed.gateway.gateway.staffApp!, doc: await staff(fed.gatewayStaffUrl) },
      { name: 'issuer', app: fed.issuer.issuer.app, doc: await member(TODA, fed.issuer.url) },
    );
  });

  after(async () => {
    await fed?.close();
  });

  it('when each served document is read by an OpenAPI 3.1 validator, then it is valid', async () => {
    for (const t of targets) {
      expect(t.doc.openapi, t.name).to.match(/^3\.1\./);
      await SwaggerParser.validate(structuredClone(t.doc) as never).catch((err: Error) => {
        throw new Error(`${t.name}: ${err.message}`);
      });
    }
  });

  it('when each member\'s router is walked, then every route is documented and every documented route exists (FHIR under its CapabilityStatement)', () => {
    const failures: string[] = [];
    for (const t of targets) {
      expect(routesOf(t.app).length, `${t.name} routes`).to.be.greaterThan(2);
      failures.push(...coverage(t.name, t.app, t.doc, t.exclude));
    }
    expect(failures, failures.join('\n')).to.deep.equal([]);
  });

  it('when a route is added without a description, or a description outlives its route, then the walk names each', () => {
    const { doc } = targets.find((t) => t.name === 'issuer')!;
    const app = express();
    const router = express.Router();
    router.get('/health', (_req, res) => { res.end(); });
    router.post(['/codes', '/codes/batch', '/codes/evaluate', '/codes/rekey'], (_req, res) => { res.end(); });
    router.get(['/ready', '/openapi.json', '/witnessed-heads'], (_req, res) => { res.end(); });
    router.delete('/codes/:code', (_req, res) => { res.end(); });
    app.use('/', router);
    const withExtra = coverage('probe', app, doc);
    expect(withExtra).to.deep.equal(['probe: DELETE /codes/:code is routed but not described in its OpenAPI document']);
    const trimmed = { ...doc, paths: { ...doc.paths, '/gone/{id}': { get: {} } } };
    expect(coverage('probe', app, trimmed)).to.include('probe: GET /gone/:id is described but not routed');
  });

  it('when a document gives examples, then each is valid against its own schema', () => {
    let examples = 0;
    for (const t of targets) {
      const ajv = new Ajv2020({ strict: false, validateFormats: false });
      ajv.addSchema(t.doc, 'doc');
      for (const [path, item] of Object.entries(t.doc.paths)) {
        for (const [method, op] of Object.entries(item as Record<string, { requestBody?: { content?: Record<string, { example?: unknown }> } }>)) {
          const media = op.requestBody?.content?.['application/json'];
          if (media?.example === undefined) continue;
          examples += 1;
          const pointer = `doc#/paths/${path.replace(/~/g, '~0').replace(/\//g, '~1')}/${method}/requestBody/content/application~1json/schema`;
          const validate = ajv.compile({ $ref: pointer });
          expect(validate(media.example), `${t.name} ${method.toUpperCase()} ${path}: ${JSON.stringify(validate.errors)}`).to.equal(true);
        }
      }
    }
    expect(examples, 'examples given').to.be.greaterThan(0);
  });

  it('when FHIR routes are excluded, then they are the municipality\'s /fhir/R4 routes and nothing else', () => {
    const fhir = routesOf(targets[0]!.app).filter((r) => r.path.startsWith(FHIR_BASE));
    expect(fhir.map(key)).to.include(`GET ${FHIR_BASE}/metadata`);
    expect(Object.keys(targets[0]!.doc.paths).filter((p) => p.startsWith(FHIR_BASE))).to.deep.equal([]);
  });

  it('when members call the federation ports, then every answer matches that port\'s document (errors as Problem)', async () => {
    const m = fed.m(TODA);
    const calls: { as: string; doc: Document; method: 'GET' | 'POST'; url: string; body?: unknown }[] = [
      ...[`/health`, `/federation/witnessed-heads?member=gateway`, `/federation/witnessed-heads?member=${TODA}`].map((path) => ({
        as: 'gateway', doc: targets[1]!.doc, method: 'GET' as const, url: `${m.federationUrl}${path}`,
      })),
      { as: 'gateway', doc: targets[1]!.doc, method: 'POST', url: `${m.federationUrl}/federation/record-requests`, body: { forward: 'not.a.jws' } },
      ...['/health', '/ready', '/directory', '/revocations', `/checkpoints?member=${TODA}`, `/witnessed-heads?member=${TODA}`, `/audit/entries?member=${TODA}`, '/audit/entries?member=gateway']
        .map((path) => ({ as: TODA, doc: targets[2]!.doc, method: 'GET' as const, url: `${fed.gateway.url}${path}` })),
      { as: TODA, doc: targets[2]!.doc, method: 'POST', url: `${fed.gateway.url}/queries`, body: { query: 'a.b.c' } },
      ...['/health', '/ready', `/witnessed-heads?member=${TODA}`].map((path) => ({ as: TODA, doc: targets[4]!.doc, method: 'GET' as const, url: `${fed.issuer.url}${path}` })),
      { as: TODA, doc: targets[4]!.doc, method: 'POST', url: `${fed.issuer.url}/codes`, body: { seed: '12' } },
    ];
    const statuses: number[] = [];
    for (const c of calls) {
      const client = fed.client(c.as);
      const res = c.method === 'GET' ? await client.getJson(c.url) : await client.postJson(c.url, c.body);
      statuses.push(res.status);
      checkAgainstDocument(c.doc, { method: c.method, url: c.url, requestBody: c.body, status: res.status, type: String(res.headers['content-type'] ?? ''), body: res.body });
    }
    expect(statuses.filter((s) => s === 200).length, 'answers that were not refusals').to.be.greaterThan(8);
  });

  it('when the documents are searched for My Numbers, then no example or fixed value is shaped like one, and no valid one appears in any text of them', () => {
    for (const t of targets) {
      const found = textsOf(t.doc).flatMap((text) => findMyNumbers(text));
      expect(found, `${t.name}: valid My Numbers in the document`).to.deep.equal([]);
      for (const value of exampleValues(t.doc)) {
        const digits = JSON.stringify(value) ?? '';
        // Twelve digits in a row, or with separators between them, in any example: none at all.
        expect(/\p{Nd}(?:[\s\-._]{0,3}\p{Nd}){11}/u.test(digits), `${t.name}: a 12-digit example ${digits.slice(0, 80)}`).to.equal(false);
      }
    }
  });
});
