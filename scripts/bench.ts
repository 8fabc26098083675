/**
 * `npm run bench`: hikitsugi against the centralized design it replaces, side by side in one run
 * on the same data (docs/BENCHMARKS.md explains every figure and keeps the latest ones).
 *
 *   npm run bench                                # 20 municipalities, 10,000 movers, 3 repetitions
 *   npm run bench -- --municipalities 1741       # the whole country, in host-mode processes
 *   npm run bench -- --cpu-prof                  # also: where each member's time goes
 *   npm run bench -- --tiny                      # seconds; what `npm test` runs so this cannot rot
 *
 * Prints a table, then one JSON line (the last line of stdout). Progress goes to stderr.
 */
import { readFileSync, rmSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { headlineFigures, renderTable, targets } from './bench/report.ts';
import { runBenchmark } from './bench/run.ts';

const int = (min: number, max: number) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
  return n;
};

const program = new Command('bench')
  .description('hikitsugi benchmark: bulk and single queries against a centralized baseline')
  .option('--municipalities <n>', 'municipalities in the federation', int(2, 42_300), 20)
  .option('--subjects <n>', 'movers retrieved by the bulk workload', int(2, 1_000_000), 10_000)
  .option('--repetitions <n>', 'repetitions of each workload', int(1, 20), 3)
  // 200 as the bulk jobs' chunks: with every receiver asking at once, a call of 1,000 waits for the
  // whole season and outlives the 30 s a municipality gives the gateway (its subjects come back source_unavailable).
  .option('--batch-size <n>', 'subjects per bulk call: a receiver sends its movers in as few calls as the synchronous bulk query takes (≤ 1000 each)', int(1, 1000), 1000)
  // A municipality waits 30 s for the gateway: with more subjects in flight than the federation
  // answers in that time, calls time out and their work is thrown away (BENCHMARKS.md).
  .option('--receivers-in-flight <n>', 'receivers sending bulk calls at once', int(1, 100_000), 4)
  .option('--retry-rounds <n>', 'rounds of asking again for subjects that came back source_unavailable', int(0, 10), 2)
  .option('--single <n>', 'single-subject queries per repetition at 1 in flight', int(1, 100_000), 200)
  .option('--single-concurrent <n>', 'single-subject queries per repetition at --in-flight', int(1, 1_000_000), 2000)
  .option('--in-flight <n>', 'single-subject queries in flight for the concurrent run', int(1, 1024), 32)
  .option('--hosts <k>', 'host-mode processes for the municipalities (0 = one process each; default: 0 up to 64 municipalities, else one per 600)', int(0, 64))
  .option('--data-dir <dir>', 'data folder; the PKI is kept there between runs (default data/bench-<N>)')
  .option('--log-level <level>', 'members\' log level (all logs on by default)', 'info')
  .option('--cpu-prof', 'profile every member (--cpu-prof) and summarise where the time goes', false)
  .option('--tiny', 'a run of seconds: 3 municipalities, 30 movers, 1 repetition (what the test runs)', false)
  .option('--clean', 'remove the data folder afterwards (PKI included)', false)
  .option('--json-only', 'print only the JSON line', false)
  .parse();

const o = program.opts<{
  municipalities: number; subjects: number; repetitions: number; batchSize: number; receiversInFlight: number; retryRounds: number;
  single: number; singleConcurrent: number;
  inFlight: number; hosts?: number; dataDir?: string; logLevel: string; cpuProf: boolean; tiny: boolean; clean: boolean; jsonOnly: boolean;
}>();
if (o.tiny) {
  const given = (name: string) => program.getOptionValueSource(name) === 'cli';
  if (!given('municipalities')) o.municipalities = 3;
  if (!given('subjects')) o.subjects = 30;
  if (!given('repetitions')) o.repetitions = 1;
  if (!given('single')) o.single = 5;
  if (!given('singleConcurrent')) o.singleConcurrent = 40;
}
const hosts = o.hosts ?? (o.municipalities <= 64 ? 0 : Math.ceil(o.municipalities / 600));
const dataDir = o.dataDir ?? `data/bench-${o.municipalities}${hosts ? 'h' : ''}`;

// Every instance holds a database (3 files), two listening sockets and a log file open.
const openFiles = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 'NaN');
const perProcess = hosts ? Math.ceil(o.municipalities / hosts) * 12 + 512 : 1024;
if (Number.isFinite(openFiles) && openFiles < perProcess) {
  console.error(`warning: ulimit -n is ${openFiles}; a host of ${Math.ceil(o.municipalities / Math.max(1, hosts))} instances wants about ${perProcess} (raise it with ulimit -n)`);
}

const result = await runBenchmark({
  municipalities: o.municipalities, subjects: o.subjects, repetitions: o.repetitions, batchSize: o.batchSize,
  receiversInFlight: o.receiversInFlight, retryRounds: o.retryRounds, singleAt1: o.single, singleConcurrent: o.singleConcurrent, inFlight: o.inFlight, hosts, dataDir, logLevel: o.logLevel,
  cpuProfile: o.cpuProf, registrationTimeoutMs: 30 * 60_000, startTimeoutMs: 15 * 60_000,
  // A tiny run proves the benchmark still runs; its idle figure need not be steady.
  ...(o.tiny ? { idleWindowMs: 1000 } : {}),
  log: (line) => console.error(`[bench] ${line}`),
});
const checks = targets(result);
if (!o.jsonOnly) console.log(renderTable(result, checks));
console.log(JSON.stringify({ ...result, figures: headlineFigures(result), targets: checks }));
// Databases and logs stay for inspection until the next run resets them; --clean removes all.
if (o.clean) rmSync(dataDir, { recursive: true, force: true });
