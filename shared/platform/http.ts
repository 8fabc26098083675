import type { ClientRequest, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { containsMyNumber } from '../identifiers.ts';
import { runWithContext, newRequestId } from './context.ts';
import { AppError, PROBLEM_BASE } from './errors.ts';

export const BODY_LIMIT = '256kb';
export const MAX_JSON_DEPTH = 20;

/** Depth of a parsed JSON value; deep nesting is refused before any handler walks it. */
export function jsonDepth(value: unknown, depth = 0): number {
  if (depth > MAX_JSON_DEPTH) return depth;
  if (value && typeof value === 'object') {
    let max = depth + 1;
    for (const v of Object.values(value)) max = Math.max(max, jsonDepth(v, depth + 1));
    return max;
  }
  return depth;
}

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * Every request runs inside its own context under the member's own request id (X-Request-Id on
 * the answer): the audit correlation id is never one a caller chose, so nobody can write entries
 * into another request's trace. A client's X-Request-Id, when well formed (8–128 of letters,
 * digits, . _ : -, and no My Number), is kept as `clientRequestId` (logged beside ours, echoed in
 * X-Client-Request-Id). Across members, one query keeps one id through the signed `rid`
 * (docs/PROTOCOL.md §6), adopted only once its signature verified.
 */
export const requestContext: RequestHandler = (req, res, next) => {
  const inbound = req.get('x-request-id');
  const clientRequestId = inbound && CLIENT_REQUEST_ID.test(inbound) && !containsMyNumber(inbound) ? inbound : undefined;
  const requestId = newRequestId();
  res.setHeader('X-Request-Id', requestId);
  if (clientRequestId) res.setHeader('X-Client-Request-Id', clientRequestId);
  runWithContext({ requestId, ...(clientRequestId ? { clientRequestId } : {}) }, () => next());
};

// C0/C1 controls, after percent-decoding: a NUL or line break in a path reaches logs and drivers.
const PATH_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The request target must be percent-encoded UTF-8 without control characters: `/residents/%E0%A4%A`
 * is refused here with a problem naming the path, before any router tries to decode it.
 */
const checkTarget: RequestHandler = (req, _res, next) => {
  const [path = '', query] = req.url.split(/\?(.*)/s, 2);
  for (const [field, part, decode] of [['path', path, decodeURIComponent], ['query', query ?? '', (t: string) => decodeURIComponent(t.replace(/\+/g, ' '))]] as const) {
    let decoded: string;
    try {
      decoded = decode(part);
    } catch {
      throw new AppError(400, 'malformed-request', `Malformed ${field}`, { field, rule: 'must be percent-encoded UTF-8' });
    }
    if (PATH_CONTROL.test(decoded)) {
      throw new AppError(400, 'malformed-request', `Malformed ${field}`, { field, rule: 'must not contain control characters' });
    }
  }
  next();
};

/**
 * Bodies come as they are: members never compress, and a compressed body (or one that only
 * claims to be) is refused before any inflater or parser sees it (no zip bombs, no 5xx).
 */
const refuseContentEncoding: RequestHandler = (req, _res, next) => {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new AppError(415, 'unsupported-media-type', 'Unsupported content encoding', { field: 'content-encoding', rule: 'must be identity (bodies are not compressed)' });
  }
  next();
};

/** What Node's own server takes for 100-continue (and answers 100 Continue to). */
export const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/**
 * The one expectation HTTP/1.1 defines is `100-continue` (RFC 9110 §10.1.1), which Node answers
 * itself. Any other reaches the app through `answerMalformedRequests` and is refused here, under
 * the member's own request id, with a problem naming the header and the rule (Node alone would
 * send a bare 417). The body is never read, so the connection closes after the answer.
 */
const refuseExpectation: RequestHandler = (req, res, next) => {
  const expectation = req.headers.expect;
  if (expectation !== undefined && !CONTINUE.test(expectation)) {
    res.setHeader('Connection', 'close');
    throw new AppError(417, 'expectation-failed', 'Unsupported expectation', { field: 'expect', rule: 'must be absent or 100-continue' });
  }
  next();
};

/** Answers with personal data are never stored by a browser or a proxy; a route may relax it (static assets). */
const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

const checkDepth: RequestHandler = (req, _res, next) => {
  if (req.body !== undefined && jsonDepth(req.body) > MAX_JSON_DEPTH) {
    throw new AppError(400, 'validation', 'JSON nested too deeply', { field: 'body', rule: `must nest at most ${MAX_JSON_DEPTH} levels` });
  }
  next();
};

const requireJson: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0'
    || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is('application/json') && ['POST', 'PUT', 'PATCH'].includes(req.method)) {
    throw new AppError(415, 'unsupported-media-type', 'Body must be JSON', { field: 'content-type', rule: 'must be application/json' });
  }
  next();
};

export interface BaseAppOptions {
  bodyLimit?: string;
  /**
   * How the app is served. `plain-http`: a staff port reached by host name over plain HTTP (the
   * compose deployment), where `upgrade-insecure-requests` would send the console's own scripts
   * to an https:// that does not exist, and HSTS means nothing. `tls` (default): member ports.
   */
  transport?: 'tls' | 'plain-http';
}

/** The Content-Security-Policy of every member: only the member's own scripts, styles and images. */
export function contentSecurityPolicy(transport: 'tls' | 'plain-http') {
  return {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"], scriptSrc: ["'self'"], scriptSrcAttr: ["'none'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'],
      fontSrc: ["'self'"], connectSrc: ["'self'"], objectSrc: ["'none'"], baseUri: ["'self'"], formAction: ["'self'"], frameAncestors: ["'none'"],
      ...(transport === 'tls' ? { upgradeInsecureRequests: [] } : {}),
    },
  };
}

/**
 * The common front of every member's Express app: security headers, no-store, a context with the
 * member's own request id, a well-formed target, uncompressed bounded JSON.
 */
export function createBaseApp(logger: Logger, options: BaseAppOptions = {}): Express {
  const transport = options.transport ?? 'tls';
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(helmet({
    contentSecurityPolicy: contentSecurityPolicy(transport),
    strictTransportSecurity: transport === 'tls',
  }));
  app.use(noStore);
  app.use(requestContext);
  app.use(refuseExpectation);
  app.use(checkTarget);
  app.use(refuseContentEncoding);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      logger.debug({ method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
    });
    next();
  });
  app.use(requireJson);
  app.use(express.json({ limit: options.bodyLimit ?? BODY_LIMIT, strict: true, type: 'application/json' }));
  app.use(checkDepth);
  return app;
}

/**
 * Requests Node's HTTP parser refuses (control characters in the request line or a header,
 * conflicting lengths, oversized headers) never reach Express; without this they get a bare 400
 * with no body. Each still gets an application/problem+json naming the rule, then the socket closes.
 * Likewise a request whose `Expect` is not 100-continue, which Node would answer with a bare 417:
 * it goes to the app, whose front (`createBaseApp`) refuses it as a problem. Every member server
 * is made by `listen` or `createMemberServer`, and both call this.
 */
export function answerMalformedRequests(server: HttpServer | HttpsServer, logger?: Logger): void {
  (server as HttpServer).on('checkExpectation', (req, res) => server.emit('request', req, res));
  (server as HttpServer).on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (!socket.writable || (err.code === 'ECONNRESET')) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? 431 : 400;
    const body = JSON.stringify({
      type: PROBLEM_BASE + (tooLarge ? 'headers-too-large' : 'malformed-request'),
      title: tooLarge ? 'Request headers too large' : 'Malformed HTTP request',
      status,
      field: 'request',
      rule: tooLarge ? 'headers must fit the server limit' : 'must be a well-formed HTTP/1.1 request (no control characters in the target or headers)',
    });
    logger?.warn({ code: err.code, status }, 'malformed request refused');
    socket.end(`HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n`
      + 'Content-Type: application/problem+json\r\nCache-Control: no-store\r\nConnection: close\r\n'
      + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

/**
 * A request that died on a kept-alive socket the server had just closed as idle, before any
 * response: it never reached the server's application, so sending it once more is safe.
 */
export function diedOnIdleSocket(req: ClientRequest, err: NodeJS.ErrnoException, responded = false): boolean {
  return req.reusedSocket && !responded && (err.code === 'ECONNRESET' || err.message === 'socket hang up');
}
