/**
 * Handing one outbox item to the gateway, the same for every outbox of a municipality (correction
 * notices, consent revocations): the reply is read by the one classifier (docs/PROTOCOL.md §2), and
 * a "not now" becomes the time of the next attempt with backoff (after the gateway's Retry-After).
 */
import { GATEWAY_ID } from '../../../shared/federation/protocol.ts';
import { classifyPeerReply } from '../../../shared/federation/peer-reply.ts';
import { backoffSeconds } from '../../../shared/platform/backoff.ts';
import type { FederationLink } from './link.ts';

/** Final (`sent`: the gateway took it; `refused`: its final word, as a problem code) or to retry. */
export type Delivery = { status: 'sent' | 'refused'; detail: string } | { retry: string; retryAfter?: number | null };

/** Stable problem code of a refusal (last segment of its problem type), never its text. */
export function problemCode(body: unknown): string {
  const type = (body as { type?: unknown } | null)?.type;
  const code = typeof type === 'string' ? type.split('/').pop() ?? '' : '';
  return /^[a-z0-9_-]{1,40}$/.test(code) ? code : 'unknown';
}

/**
 * Builds the body (a failure to build is retried like an unreachable gateway) and posts it to the
 * gateway at `path`; `sent`'s detail is the answer's `status` (or `fallback`).
 */
export async function deliverToGateway(fed: FederationLink, path: string, body: () => Promise<unknown>, requestId: string, fallback: string): Promise<Delivery> {
  try {
    const res = await fed.http.postJson(`${fed.gatewayUrl}${path}`, await body(), { timeoutMs: fed.timeoutMs, requestId, expectPeer: GATEWAY_ID });
    const reply = classifyPeerReply(res);
    if (reply.outcome === 'ok') return { status: 'sent', detail: String(res.body?.status ?? fallback).slice(0, 40) };
    if (reply.outcome === 'final') return { status: 'refused', detail: problemCode(res.body) };
    return { retry: `gateway answered ${res.status}`, retryAfter: reply.retryAfter };
  } catch (err) {
    return { retry: `gateway unreachable: ${(err as { code?: string }).code ?? (err as Error).message ?? 'error'}` };
  }
}

/** When a deferred item is tried again: backoff by its attempts, never before the gateway asked. */
export const nextAttemptAt = (attempts: number, retryAfter?: number | null): string =>
  new Date(Date.now() + backoffSeconds(attempts, undefined, { retryAfter }) * 1000).toISOString();
