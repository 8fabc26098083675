import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { currentRequestId } from './context.ts';
import { scrubText } from './log.ts';

/** Base of every problem `type` URI (RFC 9457 §3.1.1). Stable: clients switch on it. */
export const PROBLEM_BASE = 'https://hikitsugi.example/problems/';

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  requestId?: string;
  /** The input field at fault, as a JSON pointer-ish dotted path. */
  field?: string;
  /** The rule that field broke, in words a clerk can act on. */
  rule?: string;
  errors?: { field: string; rule: string }[];
  [extension: string]: unknown;
}

/**
 * The one error type of the project. `code` is the stable last segment of the problem type,
 * e.g. `validation`, `not-found`, `identity_mismatch`.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: { field?: string; rule?: string; errors?: { field: string; rule: string }[]; [k: string]: unknown } = {},
  ) {
    super(message);
    this.name = 'AppError';
  }

  toProblem(instance?: string): ProblemDetails {
    const requestId = currentRequestId();
    return {
      type: PROBLEM_BASE + this.code,
      title: this.message,
      status: this.status,
      ...(instance ? { instance } : {}),
      ...(requestId ? { requestId } : {}),
      ...this.extra,
    };
  }
}

export const badRequest = (field: string, rule: string, message = `Invalid ${field}`) =>
  new AppError(400, 'validation', message, { field, rule, errors: [{ field, rule }] });
export const unprocessable = (code: string, message: string, extra: AppError['extra'] = {}) =>
  new AppError(422, code, message, extra);
export const notFound = (what: string) => new AppError(404, 'not-found', `${what} not found`);
export const unauthorized = (message = 'Authentication required') => new AppError(401, 'unauthorized', message);
export const forbidden = (message = 'Not allowed for this role or municipality') => new AppError(403, 'forbidden', message);
export const conflict = (code: string, message: string, extra: AppError['extra'] = {}) => new AppError(409, code, message, extra);

export function sendProblem(res: Parameters<RequestHandler>[1], problem: ProblemDetails): void {
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

/** Unknown routes are problems too, never Express's HTML page. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError(404, 'not-found', `No route ${req.method} ${req.path}`));
};

/**
 * Renders every error as application/problem+json. Unknown errors become a generic 500: the
 * details go to the log only, so a stack trace (or a value in it) never reaches a client.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    // The instance is the path alone: a query string is the caller's input and may hold anything.
    const instance = scrubText(req.originalUrl.split('?')[0] ?? '');
    if (err instanceof AppError) {
      if (err.status >= 500) logger.error({ err, code: err.code }, err.message);
      return sendProblem(res, err.toProblem(instance));
    }
    const bodyError = requestErrorOf(err);
    if (bodyError) {
      logger.warn({ status: bodyError.status, code: bodyError.code, field: bodyError.extra.field }, 'request refused');
      if (bodyError.status === 413) drainRefusedBody(req, res);
      return sendProblem(res, bodyError.toProblem(instance));
    }
    logger.error({ err }, 'unhandled error');
    return sendProblem(res, new AppError(500, 'internal', 'Internal error').toProblem(instance));
  };
}

/**
 * An error of the HTTP stack that is the request's fault (body parser, undecodable path, another
 * 4xx raised by Express) as the AppError naming its field and rule; undefined for any other error.
 * Every renderer (problem+json here, OperationOutcome under the FHIR base) refuses them alike.
 */
export const requestErrorOf = (err: unknown): AppError | undefined => mapBodyParserError(err) ?? mapRequestError(err);

/** Past this many bytes of a refused body, the connection is cut instead of read to its end. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

/**
 * The body parser stops reading an oversized body and leaves it unread: the sender, still writing,
 * would then meet a reset instead of our 413. The rest is read and thrown away (up to a bound), and
 * the connection closes after the answer, so the sender always reads the problem.
 */
export function drainRefusedBody(req: Request, res: Response): void {
  res.setHeader('Connection', 'close');
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > MAX_DRAIN_BYTES) req.destroy();
  });
  req.resume();
}

/**
 * Errors of the HTTP stack that are the request's fault without a body-parser `type`: a path
 * parameter Express could not decode (URIError, or http-errors' 400), any other 4xx it raised.
 * Never a 5xx: the request was bad, the server is fine.
 */
function mapRequestError(err: unknown): AppError | undefined {
  if (err instanceof URIError) return new AppError(400, 'malformed-request', 'Malformed path', { field: 'path', rule: 'must be percent-encoded UTF-8' });
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown };
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500) {
    return new AppError(status, 'malformed-request', 'Malformed request', { field: 'request', rule: 'must be a well-formed HTTP request' });
  }
  return undefined;
}

/** body-parser's errors carry a `type`; turn them into named rules. */
function mapBodyParserError(err: unknown): AppError | undefined {
  const e = err as { type?: string; status?: number };
  switch (e?.type) {
    case 'entity.too.large':
      return new AppError(413, 'payload-too-large', 'Request body too large', { field: 'body', rule: 'must not exceed the size limit' });
    case 'entity.parse.failed':
      return badRequest('body', 'must be valid JSON', 'Malformed JSON body');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError(415, 'unsupported-media-type', 'Unsupported body encoding', { field: 'body', rule: 'must be UTF-8 JSON' });
    case 'request.aborted':
      return badRequest('body', 'must be sent completely', 'Request body truncated');
    default:
      return undefined;
  }
}
