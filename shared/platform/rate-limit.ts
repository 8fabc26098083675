/**
 * Per-principal rate limits for the query routes (a federation member at the gateway, a staff
 * account at a municipality). A token bucket per key: `limit` requests may come at once, and the
 * bucket refills at `limit` per `windowSeconds`. Over the limit the caller gets 429
 * application/problem+json with Retry-After (RFC 9110 §10.2.3), so a well-behaved client knows
 * when to come back. Keys are authenticated principals only (certificate CN, staff id), never an
 * address or a header a caller could vary at will.
 *
 * State lives in the limiter returned by `rateLimit`, one per app instance: several members run
 * in one process and must not share budgets.
 */
import type { Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AppError } from './errors.ts';

/** Config building blocks: requests per window, and the window in seconds (env, with defaults). */
export const rateLimitCount = (fallback: number) => z.coerce.number().int().min(1).max(1_000_000).default(fallback);
export const rateWindowSeconds = (fallback: number) => z.coerce.number().int().min(1).max(86_400).default(fallback);

export interface RateLimitOptions {
  /** Requests allowed at once, and refilled per window. */
  limit: number;
  windowSeconds: number;
  /** The authenticated principal of the request; undefined lets it through (auth runs first). */
  keyOf(req: Request): string | undefined;
  /** What the key is, for the problem's `field` and rule: `member`, `staff`. */
  scope: string;
  logger?: Logger;
  /** Monotonic milliseconds; tests may pass their own clock. */
  now?: () => number;
}

export interface RateDecision {
  allowed: boolean;
  /** Whole seconds until one more request would be allowed (0 when allowed). */
  retryAfter: number;
  remaining: number;
}

/** Beyond this many keys, full (idle) buckets are dropped: they carry no information. */
const MAX_IDLE_KEYS = 10_000;

/** The bucket arithmetic alone, without Express (unit-testable, reused by the middleware). */
export function createRateLimiter(options: Pick<RateLimitOptions, 'limit' | 'windowSeconds' | 'now'>) {
  const { limit, windowSeconds } = options;
  // A config object built by hand without the schema's defaults must fail at start, not refuse every request.
  if (!Number.isInteger(limit) || limit < 1 || !(windowSeconds > 0)) throw new Error(`rate limit needs a positive limit and window (got ${limit} per ${windowSeconds} s)`);
  const now = options.now ?? (() => performance.now());
  const perMs = limit / (windowSeconds * 1000);
  const buckets = new Map<string, { tokens: number; at: number }>();

  const refill = (bucket: { tokens: number; at: number }, t: number) => {
    bucket.tokens = Math.min(limit, bucket.tokens + (t - bucket.at) * perMs);
    bucket.at = t;
  };

  return {
    take(key: string): RateDecision {
      const t = now();
      let bucket = buckets.get(key);
      if (!bucket) {
        if (buckets.size >= MAX_IDLE_KEYS) {
          for (const [k, b] of buckets) {
            refill(b, t);
            if (b.tokens >= limit) buckets.delete(k);
          }
        }
        bucket = { tokens: limit, at: t };
        buckets.set(key, bucket);
      }
      refill(bucket, t);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { allowed: true, retryAfter: 0, remaining: Math.floor(bucket.tokens) };
      }
      return { allowed: false, retryAfter: Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000)), remaining: 0 };
    },
  };
}

/**
 * Express middleware: refuses with 429 once `keyOf(req)` has used up its budget. Mount it after
 * authentication (the key must be verified) and before the handler does any work.
 */
export function rateLimit(options: RateLimitOptions): RequestHandler {
  const limiter = createRateLimiter(options);
  const rule = `at most ${options.limit} requests per ${options.windowSeconds} seconds per ${options.scope}`;
  return (req, res, next) => {
    const key = options.keyOf(req);
    if (key === undefined) return next();
    const decision = limiter.take(key);
    res.setHeader('RateLimit-Policy', `${options.limit};w=${options.windowSeconds}`);
    if (decision.allowed) return next();
    res.setHeader('Retry-After', String(decision.retryAfter));
    options.logger?.warn({ scope: options.scope, key, path: req.path, retryAfter: decision.retryAfter }, 'rate limit reached');
    throw new AppError(429, 'rate-limited', 'Too many requests', { field: options.scope, rule, retryAfter: decision.retryAfter });
  };
}
