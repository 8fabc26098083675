import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { runWithContext, newRequestId } from './context.ts';
import { AppError } from './errors.ts';

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

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Every request runs inside its own context with a request id (echoed in X-Request-Id). */
export const requestContext: RequestHandler = (req, res, next) => {
  const inbound = req.get('x-request-id');
  const requestId = inbound && REQUEST_ID.test(inbound) ? inbound : newRequestId();
  res.setHeader('X-Request-Id', requestId);
  runWithContext({ requestId }, () => next());
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

/** The common front of every member's Express app: security headers, context, bounded JSON. */
export function createBaseApp(logger: Logger, options: { bodyLimit?: string } = {}): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(helmet({
    contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'] } },
  }));
  app.use(requestContext);
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
