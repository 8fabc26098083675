/**
 * Message capture (CAPTURE_DIR): an audit and leak-scan aid, off by default. When set, the
 * gateway appends every message body it receives (requests from members and its answers to them)
 * and sends (forwards to source municipalities and their answers) to one JSON-lines file there.
 * It records only what passes through the gateway anyway, so a privacy officer or a test can
 * prove by search that no My Number ever does (test/security/leak-scan.test.ts).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestHandler } from 'express';
import { currentRequestId } from '../../shared/platform/context.ts';

export const CAPTURE_FILE = 'gateway-messages.jsonl';

export interface CapturedMessage {
  at: string;
  /** `in`: a member called the gateway; `out`: the gateway called a member. */
  direction: 'in' | 'out';
  /** The other member (certificate CN), when known. */
  peer: string | null;
  method: string;
  path: string;
  requestId: string | null;
  /** HTTP status; 0 when no answer came. */
  status: number;
  request: unknown;
  response: unknown;
}

const parsed = (body: unknown): unknown => {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : body;
  if (typeof text !== 'string') return text ?? null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

/** Appends one message to CAPTURE_DIR (does nothing when capture is off). Synchronous: an aid, not a hot path. */
export function captureMessage(dir: string | undefined, message: Omit<CapturedMessage, 'at'>): void {
  if (!dir) return;
  appendFileSync(join(dir, CAPTURE_FILE), `${JSON.stringify({ at: new Date().toISOString(), ...message })}\n`);
}

/** Records every request the gateway receives with the response it sends. Mount before `memberIdentity`, so refusals are kept too. */
export function messageCapture(dir: string | undefined): RequestHandler {
  if (!dir) return (_req, _res, next) => next();
  mkdirSync(dir, { recursive: true });
  return (req, res, next) => {
    const send = res.send.bind(res);
    let body: unknown = null;
    // res.json and the problem renderer both end in res.send.
    res.send = ((chunk?: unknown) => {
      body = chunk;
      return send(chunk);
    }) as typeof res.send;
    const contextId = currentRequestId() ?? null;
    res.on('finish', () => {
      // A query's own trace id replaces the connection's (routes.ts sets it on the response).
      const header = res.getHeader('x-request-id');
      captureMessage(dir, {
        direction: 'in', peer: req.member?.id ?? null, method: req.method, path: req.path,
        requestId: header !== undefined ? String(header) : contextId, status: res.statusCode, request: req.body ?? null, response: parsed(body),
      });
    });
    next();
  };
}
