/**
 * Maps `items` through `fn` with at most `limit` calls in flight, keeping the input order.
 * Key operations in WebCrypto (jose) and SQLite statements run on libuv's pool: a batch worked
 * through one subject at a time leaves the second core idle, an unbounded one floods the pool and
 * the peer.
 */
export async function mapWithLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Subjects of one batch worked on at once in a member (their key operations run on libuv's pool). */
export const SUBJECTS_IN_FLIGHT = 4;

/** At most `max` tasks at a time; the rest wait in order. The gateway keeps one per source. */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

export function createLimiter(max: number): Limiter {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    else active += 1;
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, so a newcomer cannot slip past the limit.
      const next = waiting.shift();
      if (next) next();
      else active -= 1;
    }
  };
}
