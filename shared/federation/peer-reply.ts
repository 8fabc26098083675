/**
 * How a member reads another member's HTTP reply, the same everywhere (docs/PROTOCOL.md §2): a
 * 2xx is an answer; 408, 429 and 5xx say "not now", so the work is kept and retried, after the
 * peer's Retry-After when it sends one; any other 4xx is the peer's final word on this request,
 * so sending it again unchanged would not help. A peer that cannot be reached at all
 * (network error, timeout) is "not now" too: each caller's catch keeps the work for a retry.
 */
export type PeerReply =
  | { outcome: 'ok' }
  | { outcome: 'retry'; /** Seconds the peer asked us to wait (Retry-After), when it said. */ retryAfter: number | null }
  | { outcome: 'final' };

/** Longest Retry-After honoured: a day. A longer or malformed value is ignored. */
const MAX_RETRY_AFTER_SECONDS = 86_400;

/** Classifies a peer's reply by its status (and Retry-After header, when the client exposes headers). */
export function classifyPeerReply(reply: { status: number; headers?: Record<string, string | string[] | undefined> }): PeerReply {
  const { status } = reply;
  if (status >= 200 && status < 300) return { outcome: 'ok' };
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return { outcome: 'final' };
  return { outcome: 'retry', retryAfter: retryAfterSeconds(reply.headers?.['retry-after']) };
}

/** Retry-After as delay-seconds (RFC 9110 §10.2.3); null when absent, malformed, zero or over a day. */
export function retryAfterSeconds(header: string | string[] | undefined): number | null {
  const value = Number(Array.isArray(header) ? header[0] : header);
  return Number.isInteger(value) && value > 0 && value <= MAX_RETRY_AFTER_SECONDS ? value : null;
}
