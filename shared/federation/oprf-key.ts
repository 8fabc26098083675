import { oprfKeyRefusal } from '../crypto.ts';
import type { Logger } from 'pino';
import { secretKey } from '../platform/config.ts';
import { rateLimit, rateLimitCount, rateWindowSeconds } from '../platform/rate-limit.ts';

/**
 * A member's share of the code derivation's OPRF key (docs/DESIGN.md §3.4): a secret like any
 * other (32 bytes, hex or base64, no default), and a P-256 scalar in [1, n−1]. The issuer and the
 * gateway each configure their own under `OPRF_KEY`.
 */
export const oprfKey = (name: string) => secretKey(name).superRefine((key, ctx) => {
  const refusal = oprfKeyRefusal(key);
  if (refusal) ctx.addIssue({ code: 'custom', message: `${name} ${refusal}` });
});

/**
 * Requests to `POST /codes/evaluate` one municipality (certificate CN) may send per window, at the
 * issuer and at the gateway alike: each carries at most 500 points, so the default lets a large
 * city register about 300,000 residents a minute and bounds what a stolen municipality key can
 * evaluate (SECURITY.md). Above it, 429 rate-limited with Retry-After, which the outbox honours.
 */
export const evaluateRateConfigShape = {
  MEMBER_EVALUATE_LIMIT: rateLimitCount(600),
  MEMBER_EVALUATE_WINDOW_SECONDS: rateWindowSeconds(60),
};

/** The limiter of `POST /codes/evaluate`, per member. */
export const evaluateRateLimit = (config: { MEMBER_EVALUATE_LIMIT: number; MEMBER_EVALUATE_WINDOW_SECONDS: number }, logger?: Logger) => rateLimit({
  limit: config.MEMBER_EVALUATE_LIMIT, windowSeconds: config.MEMBER_EVALUATE_WINDOW_SECONDS,
  keyOf: (req) => req.member?.id, scope: 'member', logger,
});
