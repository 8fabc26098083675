/**
 * Mutual TLS between federation members (docs/DESIGN.md §6.2). A member is identified by the client
 * certificate the TLS handshake verified against the federation CA — never by a header or a
 * body field. Servers refuse connections without such a certificate; clients pin the peer they
 * meant to reach by its certificate CN.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls, { type PeerCertificate, type TLSSocket } from 'node:tls';
import type { ErrorRequestHandler, Express, Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { AppError, forbidden, unauthorized } from '../platform/errors.ts';
import { answerMalformedRequests, diedOnIdleSocket } from '../platform/http.ts';
import { currentRequestId } from '../platform/context.ts';
import type { Directory } from './directory.ts';
import { MEMBER_KINDS, type MemberCredentials, type MemberKind } from './pki.ts';
import { normalizeSerial } from './revocation.ts';
import type { MemberClient, MemberResponse, RequestOptions } from './member-client.ts';

/** Who is on the other end of a verified mTLS connection. */
export interface Member {
  id: string;
  kind: MemberKind;
  serial: string;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by `memberIdentity` from the verified client certificate. */
      member?: Member;
    }
  }
}

export interface MemberServerOptions {
  logger?: Logger;
}

export interface MemberIdentityOptions {
  /**
   * Who the members are and which certificates are revoked, consulted on every request (not only
   * at the handshake: a keep-alive connection outlives a revocation).
   */
  directory: Directory;
  logger?: Logger;
}

/**
 * Probes that still answer when the revocation list is stale, so an operator sees why the member
 * is not ready (revoked certificates and non-members are refused there too).
 */
export const PROBE_PATHS: readonly string[] = ['/health', '/ready'];

const TLS_MIN_VERSION = 'TLSv1.3';
/** How long a member's server keeps an idle connection of another member open. */
const MEMBER_KEEP_ALIVE_MS = 60_000;

/**
 * An HTTPS server that requires a client certificate issued by the federation CA (expired or
 * foreign certificates fail the handshake). Mount `memberIdentity` in the app to learn who asked.
 */
export function createMemberServer(app: Express, credentials: MemberCredentials, options: MemberServerOptions = {}): https.Server {
  const server = https.createServer({
    cert: credentials.tls.cert,
    key: credentials.tls.key,
    ca: [credentials.ca],
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: TLS_MIN_VERSION,
  }, app);
  // Members call each other in bursts (a bulk query fans out to every source): a connection idle
  // between two bursts stays open for the next one instead of costing a new mutual handshake.
  // Node's default closes it after 5 s; the header timeout must stay above the keep-alive one.
  server.keepAliveTimeout = MEMBER_KEEP_ALIVE_MS;
  server.headersTimeout = MEMBER_KEEP_ALIVE_MS + 1000;
  answerMalformedRequests(server, options.logger);
  server.on('tlsClientError', (err) => {
    // A failed handshake never reaches Express; it is still worth a line in the log.
    options.logger?.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'TLS handshake refused');
  });
  return server;
}

/**
 * The certificate the peer of a TLS socket presented, read once per connection: it cannot change
 * while the connection lives (TLS 1.3 has no renegotiation), and Node builds a new object of the
 * whole certificate at every call. Undefined before the handshake has finished.
 */
const peerCertificates = new WeakMap<TLSSocket, PeerCertificate>();
function peerCertificateOf(socket: TLSSocket): PeerCertificate | undefined {
  const known = peerCertificates.get(socket);
  if (known) return known;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  peerCertificates.set(socket, cert);
  return cert;
}

function peerOf(req: Request): PeerCertificate | undefined {
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return undefined;
  return peerCertificateOf(socket);
}

const first = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

/**
 * Sets `req.member` from the verified peer certificate, the one place a member is identified.
 * In order, each a problem+json naming the refusal: no mutually authenticated connection (401);
 * a certificate without a member id and kind (403 `invalid-certificate`); a revoked serial (403
 * `certificate-revoked`); a revocation list that can no longer be trusted (503
 * `revocation-list-stale` / `revocation-list-missing`, except on PROBE_PATHS); a certificate the
 * CA signed for someone who is not in the directory, or not this member's current certificate
 * (403 `not-a-member`).
 */
export function memberIdentity(options: MemberIdentityOptions): RequestHandler {
  const { directory, logger } = options;
  return async (req, _res, next) => {
    const cert = peerOf(req);
    if (!cert) throw unauthorized('A federation client certificate is required');
    const id = first(cert.subject?.CN);
    const kind = first(cert.subject?.OU);
    if (!id || !MEMBER_KINDS.includes(kind as MemberKind)) {
      throw new AppError(403, 'invalid-certificate', 'Client certificate names no federation member', { field: 'certificate', rule: 'CN must be a member id and OU a member kind' });
    }
    const serial = normalizeSerial(cert.serialNumber);
    if (directory.isRevoked(serial)) {
      logger?.warn({ peer: id, serial }, 'revoked certificate refused');
      throw new AppError(403, 'certificate-revoked', 'Client certificate revoked', { field: 'certificate', rule: 'must not be revoked' });
    }
    if (!PROBE_PATHS.includes(req.path)) directory.revocations.assertFresh();
    const entry = await directory.member(id, serial);
    if (!entry || entry.kind !== kind) {
      logger?.warn({ peer: id, serial }, 'non-member certificate refused');
      throw new AppError(403, 'not-a-member', 'Client certificate is not a federation member\'s', {
        field: 'certificate', rule: 'must be the certificate the federation directory lists for the member it names',
      });
    }
    req.member = { id, kind: kind as MemberKind, serial };
    next();
  };
}

/** Lets only members of the given kinds (and, optionally, ids) through. */
export function requireMember(kinds: MemberKind[], ids?: string[]): RequestHandler {
  return (req, _res, next) => {
    const member = req.member;
    if (!member) throw unauthorized('A federation client certificate is required');
    if (!kinds.includes(member.kind) || (ids && !ids.includes(member.id))) {
      throw forbidden(`Only ${kinds.join(' or ')} members may call this`);
    }
    next();
  };
}

/** The member identified for this request; routes behind `memberIdentity` only. */
export function memberOf(req: Request): Member {
  if (!req.member) throw unauthorized('A federation client certificate is required');
  return req.member;
}

/** Refusals (4xx) at a federation hop are logged with the member and the rule, then rendered as usual. */
export function logRefusals(logger: Logger): ErrorRequestHandler {
  return (err, req, _res, next) => {
    if (err instanceof AppError && err.status < 500) {
      logger.warn({ peer: req.member?.id, path: req.path, status: err.status, code: err.code, field: err.extra.field, rule: err.extra.rule }, 'refused');
    } else if (typeof err?.type === 'string' && typeof err?.status === 'number' && err.status < 500) {
      // The JSON parser's refusals (too large, truncated, not JSON) are bad input at this hop too.
      logger.warn({ peer: req.member?.id, path: req.path, status: err.status, code: err.type, field: 'body' }, 'refused');
    }
    next(err);
  };
}

/** Listens on host:port (0 = a free port) and resolves with the https URL. */
export function listenMember(server: https.Server, port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      resolve(`https://${host}:${address.port}`);
    });
  });
}

/** Closes a member server, ending idle keep-alive connections so shutdown does not hang. */
export function closeMemberServer(server: https.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/* ---------- client ---------- */

export type { MemberClient, MemberResponse, RequestOptions } from './member-client.ts';

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024;

/** The peer could not be reached, timed out, or broke off: callers map it to `source_unavailable`. */
export const PEER_UNAVAILABLE = 'peer-unavailable';

export function peerUnavailable(url: string, reason: string): AppError {
  return new AppError(503, PEER_UNAVAILABLE, 'Federation peer unavailable', { peer: new URL(url).origin, reason });
}

export const isPeerUnavailable = (err: unknown): err is AppError => err instanceof AppError && err.code === PEER_UNAVAILABLE;

/**
 * A client with this member's certificate, trusting only the federation CA. One keep-alive agent
 * per client (http.request, not fetch: a TLS handshake per call costs several times more).
 */
export function createMemberClient(credentials: MemberCredentials): MemberClient {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 64,
    // One TLS context for every connection of this client: given the PEMs instead, Node parses
    // the certificate, the key and the CA again for each new connection.
    secureContext: tls.createSecureContext({ cert: credentials.tls.cert, key: credentials.tls.key, ca: [credentials.ca], minVersion: TLS_MIN_VERSION }),
    minVersion: TLS_MIN_VERSION,
    // A resumed TLS session carries no peer certificate on the client side, so the CN pinning
    // below could not be checked: every new connection does a full handshake.
    maxCachedSessions: 0,
  });

  async function send<T>(method: string, url: string, body: unknown, options: RequestOptions): Promise<MemberResponse<T>> {
    try {
      return await attempt<T>(method, url, body, options);
    } catch (err) {
      // The peer closed an idle keep-alive socket just as we reused it: nothing reached the
      // application, so one retry on a fresh connection is safe (Node's documented pattern).
      if (isPeerUnavailable(err) && err.extra.staleSocket) return attempt<T>(method, url, body, options);
      throw err;
    }
  }

  function attempt<T>(method: string, url: string, body: unknown, options: RequestOptions): Promise<MemberResponse<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const requestId = options.requestId ?? currentRequestId();
    const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
    return new Promise((resolve, reject) => {
      let settled = false;
      let responded = false;
      const fail = (reason: string, staleSocket = false) => {
        if (settled) return;
        settled = true;
        const err = peerUnavailable(url, reason);
        if (staleSocket) err.extra.staleSocket = true;
        reject(err);
      };
      const req = https.request(url, {
        method,
        agent,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...(requestId ? { 'x-request-id': requestId } : {}),
        },
      }, (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            req.destroy();
            fail('response too large');
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err) => fail(err.message));
        res.on('aborted', () => fail('response aborted'));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          if (/json/.test(res.headers['content-type'] ?? '') && text) {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed as T });
        });
      });
      req.setTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, () => {
        req.destroy();
        fail('timeout');
      });
      req.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message, diedOnIdleSocket(req, err, responded)));
      // The body leaves only once the peer's certificate names the member we meant to reach. Checked
      // per request, not per handshake: a keep-alive socket may have been opened for another URL.
      req.once('socket', (socket: TLSSocket) => {
        const send = () => {
          const peer = first(peerCertificateOf(socket)?.subject?.CN);
          if (options.expectPeer !== undefined && peer !== options.expectPeer) {
            req.destroy();
            fail(`peer certificate names ${peer ?? 'nobody'}, expected ${options.expectPeer}`);
            return;
          }
          req.end(payload);
        };
        if (peerCertificateOf(socket)?.subject) send();
        else socket.once('secureConnect', send);
      });
    });
  }

  return {
    postJson: (url, body, options = {}) => send('POST', url, body, options),
    getJson: (url, options = {}) => send('GET', url, undefined, options),
    close: () => agent.destroy(),
  };
}
