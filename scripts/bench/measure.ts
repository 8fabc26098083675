/**
 * What the benchmark reads off the machine and how it summarises samples. CPU and memory come
 * from /proc (Linux): utime+stime of a process (all its threads, so the libuv pool's crypto and
 * SQLite work counts too) and VmRSS. Elsewhere these read as null and the report says so.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, totalmem, loadavg } from 'node:os';

const CLOCK_TICKS_PER_SECOND = 100;

function statMicros(path: string): number {
  const stat = readFileSync(path, 'utf8');
  // Fields after the command name, which may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND) * 1e6;
}

/** CPU time (user + system) of a process so far, in microseconds; null when /proc is unavailable. */
export function cpuMicros(pid: number): number | null {
  try {
    return statMicros(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
}

/**
 * The same split by thread: the main (JavaScript) thread, and every other thread — libuv's pool
 * (key operations, SQLite's statements, file writes) and V8's helpers (GC, compilation).
 */
export function threadCpuMicros(pid: number): { main: number; other: number } | null {
  try {
    let main = 0;
    let other = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const us = statMicros(`/proc/${pid}/task/${tid}/stat`);
        if (Number(tid) === pid) main += us;
        else other += us;
      } catch {
        // A thread that ended between the listing and the read.
      }
    }
    return { main, other };
  } catch {
    return null;
  }
}

/** Resident set size of a process in bytes; null when /proc is unavailable. */
export function rssBytes(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU time of several processes, read together at one point of the run. */
export function cpuSnapshot(pids: Record<string, number>): Record<string, number | null> {
  return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMicros(pid)]));
}

export function cpuDelta(before: Record<string, number | null>, after: Record<string, number | null>): Record<string, number | null> {
  return Object.fromEntries(Object.keys(after).map((k) => {
    const a = after[k];
    const b = before[k];
    return [k, a === null || a === undefined || b === null || b === undefined ? null : a - b];
  }));
}

/** The p-th percentile (0–100) by nearest rank; NaN for no samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** Median and range of the repetitions of one figure (the report shows `median (min–max)`). */
export function spread(values: number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const sorted = [...finite].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** Elapsed milliseconds since `start` (a performance.now() reading). */
export const since = (start: number): number => performance.now() - start;

/** The machine the figures ran on, for the report and BENCHMARKS.md. */
export function machine() {
  const cpu = cpus();
  return {
    nproc: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
