/**
 * An oversized body is refused with 413 as problem+json (docs/PROTOCOL.md §2) — and the sender,
 * still writing when the refusal comes, reads it: the rest of the body is drained and the
 * connection closes, instead of the sender meeting a reset (shared/platform/errors.ts).
 */
import { expect } from 'chai';
import https from 'node:https';
import { testPki } from '../fixtures/pki.ts';
import type { AddressInfo } from 'node:net';
import { errorHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { createLogger } from '../../shared/platform/log.ts';

describe('an oversized body', () => {
  let server: https.Server;
  let port: number;
  const pki = testPki();
  const gateway = pki.credentials('gateway');

  before(async () => {
    const logger = createLogger({ name: 'oversized-body-test', level: 'silent' });
    const app = createBaseApp(logger, { transport: 'plain-http', bodyLimit: '64kb' });
    app.post('/echo', (req, res) => { res.json(req.body); });
    app.use(errorHandler(logger));
    server = https.createServer({ key: gateway.tls.key, cert: gateway.tls.cert }, app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('when a client sends 9 MB in pieces to a 64 kB limit, then it reads 413 payload-too-large naming the body, without a reset, and the server serves the next request', async () => {
    const piece = Buffer.alloc(64 * 1024, 'a');
    const answer = await new Promise<{ status: number; type: string; body: any }>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/echo', method: 'POST', agent: false, ca: pki.ca.cert, servername: 'gateway', checkServerIdentity: () => undefined, headers: { 'content-type': 'application/json', 'content-length': String(144 * piece.length + 12) } }, (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: JSON.parse(text) }));
      });
      req.on('error', reject);
      const write = async () => {
        req.write('{"value":"');
        for (let i = 0; i < 144; i += 1) {
          if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
        }
        req.end('"}');
      };
      write().catch(reject);
    });
    expect(answer.status).to.equal(413);
    expect(answer.type).to.match(/application\/problem\+json/);
    expect(answer.body).to.include({ field: 'body' });
    expect(answer.body.type).to.match(/\/payload-too-large$/);
    const next = await new Promise<any>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/echo', method: 'POST', agent: false, ca: pki.ca.cert, checkServerIdentity: () => undefined, headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => resolve(JSON.parse(text)));
      });
      req.on('error', reject);
      req.end('{"ok":true}');
    });
    expect(next).to.deep.equal({ ok: true });
  });
});
