import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/**
 * Per-request context. Request state lives here or on `req`, never in module variables: the
 * entry follow-up system mixed users' data exactly through shared request state.
 */
export interface RequestContext {
  requestId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** Lets a federation handler adopt the trace id carried inside a verified, signed request. */
export function adoptRequestId(requestId: string): void {
  const store = storage.getStore();
  if (store) store.requestId = requestId;
}

export const newRequestId = (): string => randomUUID();
