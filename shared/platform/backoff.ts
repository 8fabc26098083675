/**
 * The one retry schedule (outboxes, relays, bulk jobs): `firstSeconds` after the first failure,
 * doubling after each further one, never sooner than the peer's Retry-After, at most `maxSeconds`.
 * With the defaults: 2, 4, 8 … seconds up to ten minutes.
 */
export function backoffSeconds(attempts: number, maxSeconds = 600, options: { firstSeconds?: number; retryAfter?: number | null } = {}): number {
  const doubled = (options.firstSeconds ?? 2) * 2 ** Math.min(30, Math.max(1, attempts) - 1);
  return Math.min(maxSeconds, Math.max(doubled, options.retryAfter ?? 0));
}
