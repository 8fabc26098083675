/**
 * The two workloads, run the same way against either design through an `Asker`:
 *   bulk   — every receiving municipality at once retrieves all its movers, in batches of up to
 *            `batchSize` subjects per call (the synchronous bulk query), one call after another;
 *   single — one subject per call, with a fixed number of calls in flight.
 * Latencies are taken per call at the client; statuses are counted per subject.
 */
import { runPool, type JsonClient } from './client.ts';
import type { Transfer } from './dataset.ts';
import { BENCH_PURPOSE } from './seed.ts';

export interface Asker {
  name: 'federated' | 'centralized';
  /** One call by `receiver` about `batch`; resolves with one status per subject. */
  ask(receiver: string, batch: Transfer[]): Promise<string[]>;
}

export interface RunResult {
  elapsedMs: number;
  subjects: number;
  calls: number;
  /** Per call, in milliseconds. */
  latencies: number[];
  statuses: Record<string, number>;
}

function tally(into: Record<string, number>, statuses: string[]) {
  for (const s of statuses) into[s] = (into[s] ?? 0) + 1;
}

async function timed(asker: Asker, receiver: string, batch: Transfer[], result: RunResult) {
  const t = performance.now();
  const statuses = await asker.ask(receiver, batch);
  result.latencies.push(performance.now() - t);
  result.calls += 1;
  result.subjects += batch.length;
  tally(result.statuses, statuses);
}

/** Every receiver at once, each working through its own movers batch by batch. */
export async function runBulk(asker: Asker, byReceiver: Map<string, Transfer[]>, batchSize: number): Promise<RunResult> {
  const result: RunResult = { elapsedMs: 0, subjects: 0, calls: 0, latencies: [], statuses: {} };
  const start = performance.now();
  await Promise.all([...byReceiver].map(async ([receiver, transfers]) => {
    for (let i = 0; i < transfers.length; i += batchSize) await timed(asker, receiver, transfers.slice(i, i + batchSize), result);
  }));
  result.elapsedMs = performance.now() - start;
  return result;
}

/** `queries` single-subject calls with `inFlight` outstanding at a time. */
export async function runSingle(asker: Asker, queries: Transfer[], inFlight: number): Promise<RunResult> {
  const result: RunResult = { elapsedMs: 0, subjects: 0, calls: 0, latencies: [], statuses: {} };
  const start = performance.now();
  await runPool(queries, inFlight, (t) => timed(asker, t.receiver, [t], result));
  result.elapsedMs = performance.now() - start;
  return result;
}

/** hikitsugi: the receiving municipality's clerk asks through its own staff API (B → gateway → A). */
export function federatedAsker(client: JsonClient, urlOf: (code: string) => string, tokenOf: (code: string) => string): Asker {
  return {
    name: 'federated',
    async ask(receiver, batch) {
      const res = await client.request('POST', `${urlOf(receiver)}/exchange/queries`, {
        token: tokenOf(receiver),
        body: { purpose: BENCH_PURPOSE, subjects: batch.map((t) => ({ addresseeNumber: t.receiverAddressee, source: t.source })) },
      });
      if (res.status !== 200) return batch.map(() => `http_${res.status}`);
      return (res.body.results as { status: string }[]).map((r) => r.status);
    },
  };
}

/** The centralized baseline: the same question, by My Number, to the one central service. */
export function centralizedAsker(client: JsonClient, url: string): Asker {
  return {
    name: 'centralized',
    async ask(receiver, batch) {
      const res = await client.request('POST', `${url}/histories`, { body: { municipality: receiver, myNumbers: batch.map((t) => t.person.myNumber) } });
      if (res.status !== 200) return batch.map(() => `http_${res.status}`);
      return (res.body.results as { status: string }[]).map((r) => r.status);
    },
  };
}
