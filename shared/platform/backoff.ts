/** Retry delay after `attempts` failures: 2, 4, 8 … seconds, at most `maxSeconds` (outboxes and relays). */
export const backoffSeconds = (attempts: number, maxSeconds = 600): number => Math.min(maxSeconds, 2 ** Math.min(30, Math.max(1, attempts)));
