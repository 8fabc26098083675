/**
 * One benchmark run: the federation and the centralized baseline on the same data, side by
 * side, then the figures. Set-up (PKI, seeding, start-up, code registration, logins) is timed
 * and reported but is not part of the measured figures.
 */
import { mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { hashPassword } from '../../shared/crypto.ts';
import { startMember, stopMember, freePort, type MemberProcess } from '../federation.ts';
import { createJsonClient, runPool } from './client.ts';
import { seedCentral } from './centralized/seed.ts';
import { buildDataset, byReceiver, BENCH_SEED, type Transfer } from './dataset.ts';
import {
  federationPids, prepareBenchFederation, startBenchFederation, stopBenchFederation,
} from './launch.ts';
import { cpuMicros, machine, percentile, rssBytes, since, spread, threadCpuMicros, type Spread } from './measure.ts';
import { mergeSummaries, monotonicMicros, summariseProfileDir, type ProfileSummary } from './profile.ts';
import { BENCH_PASSWORD, seedInWorkers } from './seed.ts';
import { readScalar } from './sqlite.ts';
import { centralizedAsker, federatedAsker, runBulk, runSingle, type Asker, type RunResult } from './workloads.ts';

export interface BenchOptions {
  municipalities: number;
  subjects: number;
  repetitions: number;
  /** Subjects per bulk call (the synchronous bulk query takes up to 1,000). */
  batchSize: number;
  /** Receivers sending bulk calls at once, and rounds of asking again for source_unavailable subjects. */
  receiversInFlight: number;
  retryRounds: number;
  /** Single-subject queries per repetition at 1 in flight, and at `inFlight`. */
  singleAt1: number;
  singleConcurrent: number;
  inFlight: number;
  /** 0: one process per municipality; k: k host-mode processes. */
  hosts: number;
  dataDir: string;
  logLevel: string;
  /** Profile every member (--cpu-prof) and summarise the attribution pass by category. */
  cpuProfile: boolean;
  registrationTimeoutMs: number;
  startTimeoutMs: number;
  /** How long the federation's idle CPU is measured before the workloads (5 s unless given). */
  idleWindowMs?: number;
  log: (line: string) => void;
}

export interface WorkloadFigures {
  reps: { elapsedMs: number; perSecond: number; p50Ms: number; p99Ms: number; cpuMicrosPerSubject: number | null; statuses: Record<string, number>; retried: number }[];
  elapsedMs: Spread;
  /** Subjects (bulk) or queries (single) per second. */
  perSecond: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  /** CPU of every server process of the design, per subject. */
  cpuMicrosPerSubject: Spread;
}

export type RoleCpu = { requester: number | null; gateway: number | null; provider: number | null; total: number | null; subjects: number };

export interface BenchResult {
  bench: 'hikitsugi';
  at: string;
  machine: ReturnType<typeof machine> & { loadAverageAfter: number[] };
  config: {
    municipalities: number; subjects: number; repetitions: number; batchSize: number; receiversInFlight: number; retryRounds: number;
    singleAt1: number; singleConcurrent: number;
    inFlight: number; mode: 'processes' | 'hosts'; hosts: number; logLevel: string; sourceConcurrency: number; transport: string;
  };
  setup: {
    datasetMs: number; pkiMs: number; pkiGenerationMs: number; pkiGenerated: number; seedMs: number; seededResidents: number; seededRecords: number;
    recordsPerSubject: number; startup: { coreMs: number; municipalitiesMs: number; totalMs: number }; codes: number; registrationMs: number;
    codesPerSecond: number; loginMs: number;
  };
  bulk: { federated: WorkloadFigures; centralized: WorkloadFigures };
  single: {
    at1: { federated: WorkloadFigures; centralized: WorkloadFigures };
    concurrent: { federated: WorkloadFigures; centralized: WorkloadFigures };
  };
  ratio: { bulkWall: number; bulkCpu: number; singleAt1Wall: number; singleConcurrentWall: number; singleCpu: number };
  cpuPerSubject: { bulk: RoleCpu; single: RoleCpu; threads: Record<string, { mainShare: number } | null> };
  /** CPU the federation spends with nobody asking, in ms per second: all processes, and per instance. */
  idle: { msPerSecond: number | null; perInstanceMsPerSecond: number | null };
  memory: {
    municipalityInstanceMiB: Spread; gatewayMiB: number | null; issuerMiB: number | null; centralizedMiB: number | null;
    hosts: { id: string; instances: number; rssMiB: number | null }[];
  };
  profile: Record<string, ProfileSummary | null> | null;
}

const MiB = 2 ** 20;
const IDLE_WINDOW_MS = 5000;
const round = (v: number, digits = 1) => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : v);
const roundSpread = (s: Spread, digits = 1): Spread => ({ median: round(s.median, digits), min: round(s.min, digits), max: round(s.max, digits) });

function figures(runs: { result: RunResult; cpuMicros: number | null }[], perUnit: 'subjects' | 'calls'): WorkloadFigures {
  const reps = runs.map(({ result, cpuMicros: cpu }) => {
    // Only answers that arrived count: a subject that timed out (source_unavailable) was not retrieved.
    const ok = result.statuses.ok ?? 0;
    const units = perUnit === 'subjects' ? ok : Math.round(result.calls * (ok / Math.max(1, result.subjects)));
    return {
      elapsedMs: round(result.elapsedMs), perSecond: round(units / (result.elapsedMs / 1000)),
      p50Ms: round(percentile(result.latencies, 50), 2), p99Ms: round(percentile(result.latencies, 99), 2),
      cpuMicrosPerSubject: cpu === null ? null : round(cpu / result.subjects), statuses: result.statuses, retried: result.retried,
    };
  });
  return {
    reps,
    elapsedMs: roundSpread(spread(reps.map((r) => r.elapsedMs))),
    perSecond: roundSpread(spread(reps.map((r) => r.perSecond))),
    p50Ms: roundSpread(spread(reps.map((r) => r.p50Ms)), 2),
    p99Ms: roundSpread(spread(reps.map((r) => r.p99Ms)), 2),
    cpuMicrosPerSubject: roundSpread(spread(reps.map((r) => r.cpuMicrosPerSubject ?? Number.NaN))),
  };
}

const sumCpu = (pids: number[]): number | null => {
  let total = 0;
  for (const pid of pids) {
    const v = cpuMicros(pid);
    if (v === null) return null;
    total += v;
  }
  return total;
};

/**
 * Runs `work` and returns its result with the CPU the given processes spent meanwhile, less
 * `idleMicrosPerMs` × elapsed (their measured background, which no query causes).
 */
async function withCpu<T>(pids: number[], work: () => Promise<T>, idleMicrosPerMs = 0): Promise<{ result: T; cpuMicros: number | null }> {
  const before = sumCpu(pids);
  const started = performance.now();
  const result = await work();
  const after = sumCpu(pids);
  const background = idleMicrosPerMs * (performance.now() - started);
  return { result, cpuMicros: before === null || after === null ? null : Math.max(0, after - before - background) };
}

/** Cycles through `items` until there are `count` of them. */
const cycle = <T>(items: T[], count: number): T[] => Array.from({ length: count }, (_, i) => items[i % items.length]!);

/** One transfer per receiver in turn, so concurrent calls spread over every receiver and source. */
function interleave(groups: Transfer[][]): Transfer[] {
  const out: Transfer[] = [];
  for (let i = 0; out.length < groups.reduce((a, g) => a + g.length, 0); i++) for (const g of groups) if (g[i]) out.push(g[i]!);
  return out;
}

export async function runBenchmark(o: BenchOptions): Promise<BenchResult> {
  const log = o.log;
  const dataDir = resolve(o.dataDir);
  const at = new Date().toISOString();
  const host = machine();
  const nproc = cpus().length;

  let t = performance.now();
  const dataset = buildDataset(o.municipalities, o.subjects, BENCH_SEED);
  const datasetMs = since(t);
  const receivers = byReceiver(dataset.transfers);
  const recordsTotal = dataset.transfers.reduce((a, x) => a + x.person.records.length, 0);
  log(`dataset: ${dataset.municipalities.length} municipalities, ${dataset.transfers.length} movers, ${recordsTotal} records (${round(datasetMs)} ms)`);

  const profileDir = join(dataDir, 'profiles');
  const sourceConcurrency = 4;
  const fed = await prepareBenchFederation({
    dataDir, municipalities: dataset.municipalities, hosts: o.hosts, logLevel: o.logLevel,
    env: {
      // A whole season from one member in minutes: the per-member query budget is a policy, raised here.
      gateway: { MEMBER_QUERY_LIMIT: '1000000', SOURCE_CONCURRENCY: String(sourceConcurrency), SOURCE_TIMEOUT_MS: '60000' },
    },
    municipalityEnv: { SESSION_TTL_SECONDS: String(12 * 3600) },
    nodeArgs: o.cpuProfile ? (id) => ['--cpu-prof', '--cpu-prof-dir', join(profileDir, id)] : undefined,
  }, nproc);
  log(`pki: ${fed.pki.generated} members generated in ${round(fed.pki.generationMs / 1000)} s; checked and directory written in ${round((fed.pki.ms - fed.pki.generationMs) / 1000)} s`);

  // Seeding: the federation's databases (in worker processes) and the baseline's, from one dataset.
  t = performance.now();
  const passwordHash = await hashPassword(BENCH_PASSWORD);
  const centralDb = join(dataDir, 'centralized', 'centralized.sqlite');
  mkdirSync(join(dataDir, 'centralized'), { recursive: true });
  const [seeded] = await Promise.all([
    seedInWorkers({
      municipalities: o.municipalities, subjects: o.subjects, seed: BENCH_SEED, envs: fed.instances.map((i) => i.env),
      passwordHash, now: new Date().toISOString(),
    }, Math.max(1, Math.min(nproc, Math.ceil(o.municipalities / 4)))),
    seedCentral(centralDb, dataset),
  ]);
  const seedMs = since(t);
  log(`seeded ${seeded.residents} residents, ${seeded.records} records, ${seeded.consents} consents in ${round(seedMs / 1000)} s`);

  const central: MemberProcess = {
    id: 'centralized', kind: 'municipality', entry: 'scripts/bench/centralized/main.ts', url: '', logFile: join(dataDir, 'centralized', 'centralized.log'),
    env: { HOST: '127.0.0.1', PORT: '0', DATABASE_PATH: centralDb, LOG_LEVEL: o.logLevel },
  };
  const client = createJsonClient(Math.max(64, o.inFlight * 2));
  let stopped = false;
  try {
    t = performance.now();
    const timings = await startBenchFederation(fed, o.startTimeoutMs);
    const startupMs = since(t);
    log(`federation up (${fed.mode}${fed.mode === 'hosts' ? `: ${fed.workers.length} hosts` : ''}): issuer+gateway ${round(timings.coreMs / 1000, 2)} s, ${fed.instances.length} municipalities ${round(timings.municipalitiesMs / 1000, 2)} s`);
    // A free port picked just before the start (the members' own connections use ephemeral ports too).
    for (let attempt = 1; ; attempt++) {
      const centralPort = await freePort();
      central.env.PORT = String(centralPort);
      central.url = `http://127.0.0.1:${centralPort}`;
      try {
        await startMember(central, { timeoutMs: o.startTimeoutMs });
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }

    // Registration: every seeded resident is pending until the running members register it.
    const codes = dataset.transfers.length * 2;
    const gatewayDb = fed.gateway.env.DATABASE_PATH!;
    const deadline = Date.now() + o.registrationTimeoutMs;
    let registered = 0;
    for (;;) {
      registered = await readScalar(gatewayDb, 'SELECT COUNT(*) FROM correspondence').catch(() => 0);
      if (registered >= codes) break;
      if (Date.now() > deadline) throw new Error(`registration incomplete: ${registered} of ${codes} codes after ${o.registrationTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
    let pending = 0;
    await runPool(fed.instances, 16, async (i) => {
      for (;;) {
        const left = await readScalar(i.env.DATABASE_PATH!, "SELECT COUNT(*) FROM residents WHERE codeStatus = 'pending'");
        if (left === 0) return;
        if (Date.now() > deadline) { pending += left; return; }
        await new Promise((r) => setTimeout(r, 250));
      }
    });
    if (pending > 0) throw new Error(`registration incomplete: ${pending} residents still pending`);
    const registrationMs = since(t);
    log(`registered ${codes} codes through the issuer in ${round(registrationMs / 1000, 2)} s from the first start (${round(codes / (registrationMs / 1000))} codes/s)`);

    // Sessions: one clerk per receiving municipality.
    t = performance.now();
    const urlOf = new Map(fed.instances.map((i) => [i.code, i.url]));
    const tokens = new Map<string, string>();
    await runPool([...receivers.keys()], 8, async (code) => {
      const res = await client.request('POST', `${urlOf.get(code)}/auth/login`, { body: { username: 'clerk1', password: BENCH_PASSWORD } });
      if (res.status !== 200) throw new Error(`login at ${code}: ${res.status} ${JSON.stringify(res.body)}`);
      tokens.set(code, res.body.token as string);
    });
    const loginMs = since(t);

    const federated = federatedAsker(client, (c) => urlOf.get(c)!, (c) => tokens.get(c)!);
    const centralized = centralizedAsker(client, central.url);
    const pids = federationPids(fed);
    const fedPids = Object.values(pids);
    const centralPid = central.child!.pid!;

    // Background cost with nobody asking (outbox, bulk-job and checkpoint timers of every instance).
    const idleBefore = new Map(fedPids.map((p) => [p, cpuMicros(p)]));
    const idleWindowMs = o.idleWindowMs ?? IDLE_WINDOW_MS;
    const idle = await withCpu(fedPids, () => new Promise((r) => setTimeout(r, idleWindowMs)));
    // Per process, µs of CPU per ms of wall time: subtracted from each role's figures below.
    const idleOf = new Map(fedPids.map((p) => { const b = idleBefore.get(p); const a = cpuMicros(p); return [p, a === null || b === null || b === undefined ? 0 : (a - b) / idleWindowMs]; }));
    const idleSum = (list: number[]) => list.reduce((a, p) => a + (idleOf.get(p) ?? 0), 0);
    const idleMsPerSecond = idle.cpuMicros === null ? null : round(idle.cpuMicros / 1000 / (idleWindowMs / 1000), 1);
    log(`idle: the federation's processes use ${idleMsPerSecond} ms of CPU per second with nobody asking`);
    // Workload CPU is reported net of this background (it grows with instances, not with queries).
    const idleRate = idle.cpuMicros === null ? 0 : idle.cpuMicros / idleWindowMs;
    const bulkOptions = { batchSize: o.batchSize, receiversInFlight: o.receiversInFlight, retryRounds: o.retryRounds };

    // Warm-up (not measured): every receiver asks once for its first mover, in both designs.
    const firsts = [...receivers.values()].map((list) => list[0]!);
    for (const asker of [federated, centralized]) await runPool(firsts, 8, async (x) => { await asker.ask(x.receiver, [x]); });
    log('warm-up done');

    const bulkRuns: Record<Asker['name'], { result: RunResult; cpuMicros: number | null }[]> = { federated: [], centralized: [] };
    for (let rep = 1; rep <= o.repetitions; rep++) {
      for (const asker of [federated, centralized]) {
        const run = await withCpu(asker === federated ? fedPids : [centralPid], () => runBulk(asker, receivers, bulkOptions), asker === federated ? idleRate : 0);
        bulkRuns[asker.name].push(run);
        log(`bulk ${asker.name} #${rep}: ${run.result.subjects} subjects in ${round(run.result.elapsedMs)} ms (${JSON.stringify(run.result.statuses)})`);
      }
    }

    // Attribution: receivers one at a time, so each process plays one role (processes mode only).
    const ordered = [...receivers].sort((a, b) => b[1].length - a[1].length);
    const sample: [string, Transfer[]][] = [];
    for (const entry of ordered) {
      sample.push(entry);
      if (sample.reduce((a, [, l]) => a + l.length, 0) >= Math.min(500, dataset.transfers.length / 2)) break;
    }
    const bulkRoles: RoleCpu = { requester: 0, gateway: 0, provider: 0, total: 0, subjects: 0 };
    const threadShare: Record<string, { main: number; other: number }> = { requester: { main: 0, other: 0 }, gateway: { main: 0, other: 0 }, provider: { main: 0, other: 0 } };
    const window = { from: monotonicMicros(), to: 0 };
    // The profile windows: the first sampled receiver's bulk turn, and its first single@1 run.
    const profileWindows: Record<'bulk' | 'single', { from: number; to: number }> = { bulk: { from: 0, to: 0 }, single: { from: 0, to: 0 } };
    for (const [receiver, list] of sample) {
      if (receiver === sample[0]![0]) profileWindows.bulk.from = monotonicMicros();
      const requesterPid = fed.instances.find((i) => i.code === receiver)!.process.child!.pid!;
      const others = fed.workers.map((w) => w.child!.pid!).filter((p) => p !== requesterPid);
      const threads = () => ({
        requester: threadCpuMicros(requesterPid), gateway: threadCpuMicros(pids.gateway!),
        provider: others.map(threadCpuMicros).reduce((a, b) => (a && b ? { main: a.main + b.main, other: a.other + b.other } : null), { main: 0, other: 0 } as { main: number; other: number } | null),
      });
      const before = { requester: cpuMicros(requesterPid), gateway: cpuMicros(pids.gateway!), provider: sumCpu(others), total: sumCpu(fedPids) };
      const tb = threads();
      const started = performance.now();
      await runBulk(federated, new Map([[receiver, list]]), bulkOptions);
      const elapsed = performance.now() - started;
      const ta = threads();
      const after = { requester: cpuMicros(requesterPid), gateway: cpuMicros(pids.gateway!), provider: sumCpu(others), total: sumCpu(fedPids) };
      const background = { requester: idleSum([requesterPid]), gateway: idleSum([pids.gateway!]), provider: idleSum(others), total: idleSum(fedPids) };
      for (const k of ['requester', 'gateway', 'provider', 'total'] as const) {
        const a = after[k];
        const b = before[k];
        bulkRoles[k] = a === null || b === null || bulkRoles[k] === null ? null : bulkRoles[k]! + Math.max(0, a - b - background[k] * elapsed);
      }
      for (const k of ['requester', 'gateway', 'provider'] as const) {
        const a = ta[k];
        const b = tb[k];
        if (a && b) { threadShare[k]!.main += a.main - b.main; threadShare[k]!.other += a.other - b.other; }
      }
      bulkRoles.subjects += list.length;
      if (receiver === sample[0]![0]) profileWindows.bulk.to = monotonicMicros();
    }
    window.to = monotonicMicros();
    const perSubject = (r: RoleCpu): RoleCpu => ({
      subjects: r.subjects,
      ...Object.fromEntries((['requester', 'gateway', 'provider', 'total'] as const).map((k) => [k, r[k] === null || !r.subjects ? null : round(r[k]! / r.subjects)])),
    } as RoleCpu);
    const hosted = fed.mode === 'hosts';
    log(`attribution pass: ${bulkRoles.subjects} subjects from ${sample.length} receiver(s), one at a time (monotonic µs ${window.from}–${window.to})`);

    // Single-subject queries: at 1 in flight from the attribution receiver; concurrent over all receivers.
    const [mainReceiver, mainList] = sample[0]!;
    const at1Queries = cycle(mainList, o.singleAt1);
    const concurrentQueries = cycle(interleave([...receivers.values()]), o.singleConcurrent);
    const singleRuns = { at1: { federated: [], centralized: [] }, concurrent: { federated: [], centralized: [] } } as
      Record<'at1' | 'concurrent', Record<Asker['name'], { result: RunResult; cpuMicros: number | null }[]>>;
    const singleRoles: RoleCpu = { requester: 0, gateway: 0, provider: 0, total: 0, subjects: 0 };
    const mainPid = fed.instances.find((i) => i.code === mainReceiver)!.process.child!.pid!;
    const otherPids = fed.workers.map((w) => w.child!.pid!).filter((p) => p !== mainPid);
    for (let rep = 1; rep <= o.repetitions; rep++) {
      for (const asker of [federated, centralized]) {
        const before = { requester: cpuMicros(mainPid), gateway: cpuMicros(pids.gateway!), provider: sumCpu(otherPids) };
        const started = performance.now();
        if (asker === federated && rep === 1) profileWindows.single.from = monotonicMicros();
        const run = await withCpu(asker === federated ? fedPids : [centralPid], () => runSingle(asker, at1Queries, 1), asker === federated ? idleRate : 0);
        if (asker === federated && rep === 1) profileWindows.single.to = monotonicMicros();
        if (asker === federated) {
          const after = { requester: cpuMicros(mainPid), gateway: cpuMicros(pids.gateway!), provider: sumCpu(otherPids) };
          const elapsed = performance.now() - started;
          const background = { requester: idleSum([mainPid]), gateway: idleSum([pids.gateway!]), provider: idleSum(otherPids) };
          for (const k of ['requester', 'gateway', 'provider'] as const) {
            const a = after[k];
            const b = before[k];
            singleRoles[k] = a === null || b === null || singleRoles[k] === null ? null : singleRoles[k]! + Math.max(0, a - b - background[k] * elapsed);
          }
          singleRoles.total = run.cpuMicros === null || singleRoles.total === null ? null : singleRoles.total + run.cpuMicros;
          singleRoles.subjects += run.result.subjects;
        }
        singleRuns.at1[asker.name].push(run);
        log(`single@1 ${asker.name} #${rep}: ${run.result.calls} queries in ${round(run.result.elapsedMs)} ms (ended at monotonic µs ${monotonicMicros()})`);
      }
      for (const asker of [federated, centralized]) {
        const run = await withCpu(asker === federated ? fedPids : [centralPid], () => runSingle(asker, concurrentQueries, o.inFlight), asker === federated ? idleRate : 0);
        singleRuns.concurrent[asker.name].push(run);
        log(`single@${o.inFlight} ${asker.name} #${rep}: ${run.result.calls} queries in ${round(run.result.elapsedMs)} ms (${JSON.stringify(run.result.statuses)})`);
      }
    }

    // Memory, after the workloads (each instance's caches and pools are warm).
    const mib = (pid: number | undefined) => { const b = pid ? rssBytes(pid) : null; return b === null ? null : round(b / MiB); };
    const hostsMemory = hosted ? fed.workers.map((w) => ({ id: w.id, instances: fed.instances.filter((i) => i.process === w).length, rssMiB: mib(w.child?.pid) })) : [];
    const perInstance = hosted
      ? hostsMemory.map((h) => (h.rssMiB ?? Number.NaN) / Math.max(1, h.instances))
      : fed.workers.map((w) => mib(w.child?.pid) ?? Number.NaN);
    const memory = {
      municipalityInstanceMiB: roundSpread(spread(perInstance)),
      gatewayMiB: mib(pids.gateway), issuerMiB: mib(pids.issuer), centralizedMiB: mib(centralPid), hosts: hostsMemory,
    };

    const bulk = { federated: figures(bulkRuns.federated, 'subjects'), centralized: figures(bulkRuns.centralized, 'subjects') };
    const single = {
      at1: { federated: figures(singleRuns.at1.federated, 'calls'), centralized: figures(singleRuns.at1.centralized, 'calls') },
      concurrent: { federated: figures(singleRuns.concurrent.federated, 'calls'), centralized: figures(singleRuns.concurrent.centralized, 'calls') },
    };
    const ratio = {
      bulkWall: round(bulk.federated.elapsedMs.median / bulk.centralized.elapsedMs.median, 2),
      bulkCpu: round(bulk.federated.cpuMicrosPerSubject.median / bulk.centralized.cpuMicrosPerSubject.median, 2),
      singleAt1Wall: round(single.at1.federated.elapsedMs.median / single.at1.centralized.elapsedMs.median, 2),
      singleConcurrentWall: round(single.concurrent.federated.elapsedMs.median / single.concurrent.centralized.elapsedMs.median, 2),
      singleCpu: round(single.concurrent.federated.cpuMicrosPerSubject.median / single.concurrent.centralized.cpuMicrosPerSubject.median, 2),
    };
    const threads = Object.fromEntries(Object.entries(threadShare).map(([k, v]) => [k, hosted || v.main + v.other === 0 ? null : { mainShare: round(v.main / (v.main + v.other), 2) }]));

    await stopMember(central);
    await stopBenchFederation(fed);
    stopped = true;
    let profile: BenchResult['profile'] = null;
    if (o.cpuProfile) {
      const requesterProc = fed.instances.find((i) => i.code === sample[0]![0])!.process.id;
      profile = {};
      for (const [name, w] of Object.entries(profileWindows)) {
        const summary = (id: string) => summariseProfileDir(join(profileDir, id), w.from, w.to);
        const all = (ids: string[]) => mergeSummaries(ids.map(summary).filter((x): x is ProfileSummary => x !== null));
        if (hosted) {
          profile[`${name} hosts`] = all(fed.workers.map((x) => x.id));
          profile[`${name} gateway`] = summary('gateway');
        } else {
          profile[`${name} requester`] = summary(requesterProc);
          profile[`${name} gateway`] = summary('gateway');
          profile[`${name} provider`] = all(fed.workers.filter((x) => x.id !== requesterProc).map((x) => x.id));
        }
      }
    }

    return {
      bench: 'hikitsugi',
      at,
      machine: { ...host, loadAverageAfter: loadavg().map((l) => round(l, 2)) },
      config: {
        municipalities: o.municipalities, subjects: dataset.transfers.length, repetitions: o.repetitions, batchSize: o.batchSize,
        receiversInFlight: o.receiversInFlight, retryRounds: o.retryRounds,
        singleAt1: o.singleAt1, singleConcurrent: o.singleConcurrent, inFlight: o.inFlight, mode: fed.mode, hosts: fed.mode === 'hosts' ? fed.workers.length : 0,
        logLevel: o.logLevel, sourceConcurrency, transport: 'mTLS (TLS 1.3), keep-alive',
      },
      setup: {
        datasetMs: round(datasetMs), pkiMs: round(fed.pki.ms), pkiGenerationMs: round(fed.pki.generationMs), pkiGenerated: fed.pki.generated,
        seedMs: round(seedMs), seededResidents: seeded.residents, seededRecords: seeded.records,
        recordsPerSubject: round(recordsTotal / Math.max(1, dataset.transfers.length), 2),
        startup: { coreMs: round(timings.coreMs), municipalitiesMs: round(timings.municipalitiesMs), totalMs: round(startupMs) },
        codes, registrationMs: round(registrationMs), codesPerSecond: round(codes / (registrationMs / 1000)), loginMs: round(loginMs),
      },
      bulk,
      single,
      ratio,
      cpuPerSubject: {
        bulk: hosted ? { ...perSubject(bulkRoles), requester: null, gateway: perSubject(bulkRoles).gateway, provider: null } : perSubject(bulkRoles),
        single: hosted ? { ...perSubject(singleRoles), requester: null, provider: null } : perSubject(singleRoles),
        threads,
      },
      idle: { msPerSecond: idleMsPerSecond, perInstanceMsPerSecond: idleMsPerSecond === null ? null : round(idleMsPerSecond / fed.instances.length, 2) },
      memory,
      profile,
    };
  } finally {
    client.close();
    // Whatever got started is stopped, also when start-up itself failed halfway.
    if (!stopped) {
      await stopMember(central).catch(() => undefined);
      await stopBenchFederation(fed).catch(() => undefined);
    }
  }
}
