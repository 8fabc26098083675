import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/**
 * Per-request context. Request state lives here or on `req`, never in module variables: the
 * entry follow-up system mixed users' data exactly through shared request state.
 */
export interface RequestContext {
  /** The member's own correlation id: made here, or taken from a verified signed message (adoptRequestId). */
  requestId: string;
  /** The id a client sent in X-Request-Id, kept beside ours for its own tracing; never a correlation id. */
  clientRequestId?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

export function currentClientRequestId(): string | undefined {
  return storage.getStore()?.clientRequestId;
}

/**
 * Lets a federation handler adopt the trace id carried inside a verified, signed request (one
 * query is one id on every member's log, docs/PROTOCOL.md §6). Only after the signature verified:
 * a raw header never becomes a correlation id.
 */
export function adoptRequestId(requestId: string): void {
  const store = storage.getStore();
  if (store) store.requestId = requestId;
}

export const newRequestId = (): string => randomUUID();
