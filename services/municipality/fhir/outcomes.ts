/**
 * Every answer of the FHIR API is `application/fhir+json` (FHIR R4 §3.1.0.1.6 http.html#mime-type),
 * and every error an OperationOutcome (FHIR R4 §3.1.0.1.12 http.html#errors): the same AppError
 * the rest of the service throws, rendered for FHIR clients instead of as problem+json.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { currentRequestId } from '../../../shared/platform/context.ts';
import { AppError, badRequest, drainRefusedBody, requestErrorOf } from '../../../shared/platform/errors.ts';

export const FHIR_JSON = 'application/fhir+json';

/** One issue of an OperationOutcome (FHIR R4 operationoutcome.html). */
export interface OutcomeIssue {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  /** http://hl7.org/fhir/issue-type (required binding). */
  code: string;
  diagnostics?: string;
  /** FHIRPath or, for a search, the parameter name at fault. */
  expression?: string[];
}

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  id?: string;
  issue: OutcomeIssue[];
}

/** The issue-type code for an HTTP status (http://hl7.org/fhir/R4/valueset-issue-type.html). */
function issueCode(status: number, code: string): string {
  if (status === 400) return code === 'required' ? 'required' : 'invalid';
  if (status === 401) return 'login';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 405) return 'not-supported';
  if (status === 406 || status === 415) return 'not-supported';
  if (status === 409) return 'conflict';
  if (status === 410) return 'deleted';
  if (status === 413) return 'too-costly';
  if (status === 422) return 'processing';
  if (status === 429) return 'throttled';
  return 'exception';
}

export function outcome(issue: OutcomeIssue): OperationOutcome {
  const requestId = currentRequestId();
  return { resourceType: 'OperationOutcome', ...(requestId ? { id: requestId } : {}), issue: [issue] };
}

/** The OperationOutcome of an AppError: the field and the rule it broke, in words and as the expression. */
export function outcomeOf(err: AppError): OperationOutcome {
  const { field, rule } = err.extra;
  const diagnostics = field && rule ? `${err.message} (${field}: ${rule})` : err.message;
  return outcome({
    severity: 'error', code: issueCode(err.status, err.code), diagnostics, ...(field ? { expression: [field] } : {}),
  });
}

/** Sends a FHIR resource with the FHIR media type. */
export function sendFhir(res: Response, status: number, resource: unknown): void {
  res.status(status).type(FHIR_JSON).send(JSON.stringify(resource));
}

/** A bad search or operation parameter: 400 naming it and the rule it broke. */
export const badParameter = (name: string, rule: string) => badRequest(name, rule, `Invalid parameter ${name}`);

/** Unknown paths under the FHIR base are FHIR errors too. */
export const fhirNotFound: RequestHandler = (req, _res, next) => {
  next(new AppError(404, 'not-found', `No FHIR interaction ${req.method} ${req.path}`));
};

/**
 * Renders every error of a request under the FHIR base as an OperationOutcome, wherever it was
 * raised: in the FHIR routes, or in the common front every member shares (a target that is not
 * percent-encoded UTF-8, a compressed or non-JSON body, malformed JSON), whose errors skip the FHIR
 * router. Those are refused with the same field and rule as the problem+json renderer gives them
 * (requestErrorOf). Unknown errors are a generic 500 with the details in the log only.
 */
export function fhirErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (err instanceof AppError) {
      if (err.status >= 500) logger.error({ err, code: err.code }, err.message);
      if (err.status === 429 && typeof err.extra.retryAfter === 'number') res.setHeader('Retry-After', String(err.extra.retryAfter));
      return sendFhir(res, err.status, outcomeOf(err));
    }
    const refused = requestErrorOf(err);
    if (refused) {
      logger.warn({ status: refused.status, code: refused.code, field: refused.extra.field }, 'request refused');
      if (refused.status === 413) drainRefusedBody(req, res);
      return sendFhir(res, refused.status, outcomeOf(refused));
    }
    logger.error({ err }, 'unhandled error');
    return sendFhir(res, 500, outcome({ severity: 'fatal', code: 'exception', diagnostics: 'Internal error' }));
  };
}
