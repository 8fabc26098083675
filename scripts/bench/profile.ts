/**
 * Where a member's main-thread time goes, from a V8 CPU profile (`node --cpu-prof`), by
 * category. Each sample is charged to the innermost frame that belongs to a known category
 * (a JSON.stringify called by pino is logging; called by Sequelize it is the database). Only
 * samples inside the measured window count. Work on libuv's pool (key operations, SQLite's
 * statements) is not on the main thread: the report gives it separately from /proc.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const CATEGORIES = ['crypto', 'sequelize/sqlite', 'http/tls', 'logging', 'validation', 'app', 'gc', 'other'] as const;
export type Category = (typeof CATEGORIES)[number];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber?: number; columnNumber?: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const RULES: [Category, RegExp][] = [
  ['crypto', /\/node_modules\/jose\/|node:internal\/crypto|\/shared\/(crypto|federation\/messages|platform\/base64)\.ts/],
  ['sequelize/sqlite', /\/node_modules\/(sequelize|sqlite3|wkx|dottie|lodash|inflection|validator|moment|moment-timezone|retry-as-promised|pg-connection-string)\/|\/shared\/platform\/db\.ts|\/model\.ts/],
  ['logging', /\/node_modules\/(pino|pino-std-serializers|sonic-boom|fast-redact|thread-stream|quick-format-unescaped|safe-stable-stringify|on-exit-leak-free|atomic-sleep)\/|\/shared\/platform\/log\.ts/],
  ['http/tls', /node:(_http|http|https|_tls|tls|net|internal\/(http|stream|streams|tls|net|js_stream|url))|node:stream|\/node_modules\/(express|router|body-parser|raw-body|helmet|qs|iconv-lite|finalhandler|on-finished|content-type|type-is|mime-types|mime-db|accepts|send|cookie|statuses|http-errors|depd|negotiator|parseurl|encodeurl|media-typer|vary|forwarded|proxy-addr|merge-descriptors|etag|fresh|range-parser|serve-static|bytes|unpipe|ee-first|content-disposition|destroy|path-to-regexp)\/|\/shared\/(federation\/(member-http|member-client)|platform\/(http|server|errors))\.ts/],
  ['validation', /\/node_modules\/zod\/|\/shared\/platform\/validation\.ts|\/schemas\.ts/],
  ['app', /\/(services|gateway|shared|scripts)\//],
];

/** The category of one profiled frame by its file, or undefined when the caller's category applies. */
export function categoryOfFrame(frame: Pick<ProfileNode['callFrame'], 'functionName' | 'url'>): Category | undefined {
  if (frame.functionName === '(garbage collector)') return 'gc';
  if (!frame.url) return undefined;
  for (const [category, pattern] of RULES) if (pattern.test(frame.url)) return category;
  return undefined;
}

const sourceMaps = new Map<string, { map: SourceMap; dir: string } | null>();

/**
 * The source file a frame's code came from: members run from a bundle with a linked source map
 * (scripts/member-bundle.ts), and the rules above are written against the TypeScript files.
 */
export function sourceUrlOf(frame: ProfileNode['callFrame']): string {
  if (!frame.url.startsWith('file:') || frame.lineNumber === undefined || frame.lineNumber < 0) return frame.url;
  let known = sourceMaps.get(frame.url);
  if (known === undefined) {
    const file = fileURLToPath(frame.url);
    known = existsSync(`${file}.map`) ? { map: new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))), dir: dirname(file) } : null;
    sourceMaps.set(frame.url, known);
  }
  if (!known) return frame.url;
  const entry = known.map.findEntry(frame.lineNumber, frame.columnNumber ?? 0) as { originalSource?: string };
  return entry.originalSource ? pathToFileURL(resolve(known.dir, entry.originalSource)).href : frame.url;
}

export interface ProfileSummary {
  /** Main-thread busy time inside the window, in milliseconds. */
  busyMs: number;
  /** Share of the busy time per category, 0–1. */
  share: Record<Category, number>;
}

/** Summarises one profile over [fromMicros, toMicros] of the monotonic clock (V8 and hrtime share it). */
export function summariseProfile(profile: CpuProfile, fromMicros: number, toMicros: number): ProfileSummary {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) {
    byId.set(n.id, { ...n, callFrame: { ...n.callFrame, url: sourceUrlOf(n.callFrame) } });
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const memo = new Map<number, Category | 'idle'>();
  const categoryOf = (id: number): Category | 'idle' => {
    const known = memo.get(id);
    if (known) return known;
    const leaf = byId.get(id)!;
    let found: Category | 'idle' = leaf.callFrame.functionName === '(idle)' ? 'idle' : 'other';
    if (found !== 'idle') {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const c = categoryOfFrame(byId.get(cur)!.callFrame);
        if (c) { found = c; break; }
      }
    }
    memo.set(id, found);
    return found;
  };
  const totals = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < fromMicros || t > toMicros) continue;
    // A sample stands for the time until the next one.
    const weight = profile.timeDeltas[i + 1] ?? 0;
    const c = categoryOf(profile.samples[i]!);
    if (c !== 'idle') totals[c] += weight;
  }
  const busy = CATEGORIES.reduce((a, c) => a + totals[c], 0);
  return {
    busyMs: busy / 1000,
    share: Object.fromEntries(CATEGORIES.map((c) => [c, busy ? totals[c] / busy : 0])) as Record<Category, number>,
  };
}

/** The summary of the main-thread profile a process wrote into `dir` (the newest, if it ran more than once). */
export function summariseProfileDir(dir: string, fromMicros: number, toMicros: number): ProfileSummary | null {
  let files: string[];
  try {
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (tsx's loader has its own).
    files = readdirSync(dir).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)).sort();
  } catch {
    return null;
  }
  const file = files.pop();
  if (!file) return null;
  return summariseProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, fromMicros, toMicros);
}

/** Adds summaries (weighted by busy time), e.g. all providers together. */
export function mergeSummaries(summaries: ProfileSummary[]): ProfileSummary | null {
  if (summaries.length === 0) return null;
  const busyMs = summaries.reduce((a, s) => a + s.busyMs, 0);
  const share = Object.fromEntries(CATEGORIES.map((c) => [c, busyMs ? summaries.reduce((a, s) => a + s.share[c] * s.busyMs, 0) / busyMs : 0])) as Record<Category, number>;
  return { busyMs, share };
}

/** The monotonic clock in microseconds, as V8 stamps profiles. */
export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);
