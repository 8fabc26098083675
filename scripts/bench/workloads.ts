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
  /** Each subject's final status (after any retry round). */
  statuses: Record<string, number>;
  /** Subjects asked again because they came back source_unavailable. */
  retried: number;
}

function tally(into: Record<string, number>, statuses: string[]) {
  for (const s of statuses) into[s] = (into[s] ?? 0) + 1;
}

async function timed(asker: Asker, receiver: string, batch: Transfer[], result: RunResult): Promise<string[]> {
  const t = performance.now();
  const statuses = await asker.ask(receiver, batch);
  result.latencies.push(performance.now() - t);
  result.calls += 1;
  return statuses;
}

export interface BulkOptions {
  batchSize: number;
  /** Receivers working at once (a country's 1,741 never all send in the same instant). */
  receiversInFlight: number;
  /** Rounds in which subjects that came back source_unavailable are asked again, as a clerk would. */
  retryRounds: number;
}

/** The receivers (at most `receiversInFlight` at a time), each working through its movers batch by batch. */
export async function runBulk(asker: Asker, byReceiver: Map<string, Transfer[]>, o: BulkOptions): Promise<RunResult> {
  const result: RunResult = { elapsedMs: 0, subjects: 0, calls: 0, latencies: [], statuses: {}, retried: 0 };
  const final = new Map<Transfer, string>();
  const start = performance.now();
  let pending = [...byReceiver];
  for (let round = 0; pending.length > 0 && round <= o.retryRounds; round++) {
    const again = new Map<string, Transfer[]>();
    await runPool(pending, o.receiversInFlight, async ([receiver, transfers]) => {
      if (round > 0) result.retried += transfers.length;
      for (let i = 0; i < transfers.length; i += o.batchSize) {
        const batch = transfers.slice(i, i + o.batchSize);
        const statuses = await timed(asker, receiver, batch, result);
        batch.forEach((t, k) => {
          final.set(t, statuses[k] ?? 'missing');
          if (statuses[k] === 'source_unavailable') again.set(receiver, [...(again.get(receiver) ?? []), t]);
        });
      }
    });
    pending = [...again];
  }
  result.elapsedMs = performance.now() - start;
  result.subjects = final.size;
  tally(result.statuses, [...final.values()]);
  return result;
}

/** `queries` single-subject calls with `inFlight` outstanding at a time. */
export async function runSingle(asker: Asker, queries: Transfer[], inFlight: number): Promise<RunResult> {
  const result: RunResult = { elapsedMs: 0, subjects: 0, calls: 0, latencies: [], statuses: {}, retried: 0 };
  const start = performance.now();
  await runPool(queries, inFlight, async (t) => {
    tally(result.statuses, await timed(asker, t.receiver, [t], result));
    result.subjects += 1;
  });
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
