/**
 * Brings up the benchmark's federation with the project's own launcher (scripts/federation.ts):
 * issuer, gateway and municipalities as separate processes over mTLS, or — for a whole-country
 * run — municipalities packed into host-mode processes (services/municipality/host.ts), each
 * instance still with its own database file, keys and ports. The PKI is kept in the data folder
 * between runs (certificates for 1,741 members take minutes to make); databases and logs are not.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  prepareFederation, startMember, stopMember, type MemberProcess, type MunicipalitySpec,
} from '../federation.ts';
import { caKeyRefusal, initPki, isP256Key, type MemberSpec } from '../../shared/federation/pki.ts';
import type { BenchMunicipality } from './dataset.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const HOST_THREADPOOL_SIZE = 64;
const run = promisify(execFile);

export interface LaunchOptions {
  dataDir: string;
  municipalities: BenchMunicipality[];
  /** 0: one process per municipality; k > 0: k host-mode processes share the municipalities. */
  hosts: number;
  logLevel: string;
  env: Record<string, Record<string, string>>;
  /** Extra environment for every municipality instance. */
  municipalityEnv: Record<string, string>;
  /** Node flags for every member process (the profile run adds --cpu-prof). */
  nodeArgs?: (id: string) => string[];
  /** First port tried for municipality instances in host mode (below the ephemeral range). */
  portBase?: number;
}

export interface BenchInstance {
  code: string;
  /** Staff API URL. */
  url: string;
  env: Record<string, string>;
  /** The process that runs this instance (its own, or its host). */
  process: MemberProcess;
}

export interface BenchFederation {
  issuer: MemberProcess;
  gateway: MemberProcess;
  /** Municipality processes, or host processes. */
  workers: MemberProcess[];
  instances: BenchInstance[];
  mode: 'processes' | 'hosts';
  /** All PKI work (generation of what was missing, then the launcher's check of every member); generation alone. */
  pki: { ms: number; generationMs: number; generated: number };
}

/** Ports free on 127.0.0.1 from `base` upwards, each checked by binding it. */
async function allocatePorts(count: number, base: number): Promise<number[]> {
  const ports: number[] = [];
  for (let port = base; ports.length < count; port++) {
    if (port > 65_535) throw new Error('not enough free ports');
    const free = await new Promise<boolean>((done) => {
      const s = createServer();
      s.once('error', () => done(false));
      s.listen(port, '127.0.0.1', () => s.close(() => done(true)));
    });
    if (free) ports.push(port);
  }
  return ports;
}

/** A member's certificates are there and hold a P-256 key (a folder of an earlier version holds RSA ones). */
function memberDone(pkiDir: string, id: string): boolean {
  if (!existsSync(join(pkiDir, id, 'tls.pem')) || !existsSync(join(pkiDir, id, 'enc.pem'))) return false;
  try {
    return isP256Key(new X509Certificate(readFileSync(join(pkiDir, id, 'tls.pem'))).publicKey);
  } catch {
    return false;
  }
}

/** Members whose certificates are made in this process rather than in `pki init` processes. */
const IN_PROCESS_MEMBERS = 100;

/**
 * Makes the certificates that are missing, after the CA exists. An RSA CA of an earlier version is
 * replaced first, and its members count as missing. Existing members are kept as they are; the
 * launcher's own `init` afterwards checks them all and writes the directory. A member costs about
 * 15 ms here and a `pki init` process about 1.5 s to start: up to IN_PROCESS_MEMBERS the work is
 * done in this process, beyond it in several processes at once (each member's keys and CA
 * signatures are independent).
 */
export async function ensurePki(pkiDir: string, municipalities: BenchMunicipality[], parallel: number): Promise<number> {
  const replaceRsaCa = caKeyRefusal(pkiDir) !== null;
  const pki = join(ROOT, 'scripts/pki.ts');
  const core: MemberSpec[] = [{ id: 'issuer', kind: 'issuer', name: 'Issuer' }, { id: 'gateway', kind: 'gateway', name: 'Gateway' }];
  if (replaceRsaCa || !memberDone(pkiDir, 'gateway') || !memberDone(pkiDir, 'issuer')) await initPki(pkiDir, core, { replaceRsaCa });
  const missing = municipalities.filter((m) => !memberDone(pkiDir, m.code));
  if (missing.length === 0) return 0;
  if (missing.length <= IN_PROCESS_MEMBERS) {
    await initPki(pkiDir, missing.map((m) => ({ id: m.code, kind: 'municipality' as const, name: m.name })));
    return missing.length;
  }
  const parts = Array.from({ length: Math.min(parallel, missing.length) }, (_, k) => missing.filter((_m, i) => i % parallel === k));
  await Promise.all(parts.map((part) => run(process.execPath, [
    '--import', 'tsx', pki, 'init', '--dir', pkiDir, ...part.flatMap((m) => ['--member', `${m.code}:municipality:${m.name}`]),
  ], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 })));
  return missing.length;
}

/** Removes the previous run's databases, logs and profiles; keeps the PKI and the members' secrets. */
export function resetRunState(dataDir: string): void {
  if (!existsSync(dataDir)) return;
  for (const entry of readdirSync(dataDir, { withFileTypes: true })) {
    const path = join(dataDir, entry.name);
    if (!entry.isDirectory()) continue;
    if (entry.name === 'pki') continue;
    if (['hosts', 'profiles', 'centralized'].includes(entry.name)) {
      rmSync(path, { recursive: true, force: true });
      continue;
    }
    for (const file of readdirSync(path)) {
      if (/\.(sqlite(-wal|-shm|-journal)?|log)$/.test(file)) rmSync(join(path, file), { force: true });
    }
  }
}

/** PKI, secrets, directory, and each member's environment; nothing runs yet. */
export async function prepareBenchFederation(options: LaunchOptions, parallel: number): Promise<BenchFederation> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  resetRunState(dataDir);
  const started = performance.now();
  const generated = await ensurePki(join(dataDir, 'pki'), options.municipalities, parallel);
  const generationMs = performance.now() - started;

  const hosted = options.hosts > 0;
  const ports = hosted ? await allocatePorts(options.municipalities.length * 2, options.portBase ?? 20_000) : [];
  const specs: MunicipalitySpec[] = options.municipalities.map((m, i) => ({
    code: m.code, name: m.name, ...(hosted ? { port: ports[2 * i], federationPort: ports[2 * i + 1] } : {}),
  }));
  const env = { ...options.env };
  for (const m of options.municipalities) env[m.code] = { ...options.municipalityEnv, ...env[m.code] };
  const members = await prepareFederation({ dataDir, municipalities: specs, logLevel: options.logLevel, env });
  const pkiMs = performance.now() - started;
  for (const m of members) m.nodeArgs = options.nodeArgs?.(m.id);

  const issuer = members.find((m) => m.kind === 'issuer')!;
  const gateway = members.find((m) => m.kind === 'gateway')!;
  const municipalityProcesses = members.filter((m) => m.kind === 'municipality');
  if (!hosted) {
    return {
      issuer, gateway, workers: municipalityProcesses, mode: 'processes', pki: { ms: pkiMs, generationMs, generated },
      instances: municipalityProcesses.map((p) => ({ code: p.id, url: p.url, env: p.env, process: p })),
    };
  }

  // Host mode: the same environments, grouped into plan files, one process per group.
  const hostsDir = join(dataDir, 'hosts');
  mkdirSync(hostsDir, { recursive: true });
  const count = Math.min(options.hosts, municipalityProcesses.length);
  const workers: MemberProcess[] = [];
  const instances: BenchInstance[] = [];
  for (let k = 0; k < count; k++) {
    const group = municipalityProcesses.filter((_m, i) => i % count === k);
    const planFile = join(hostsDir, `host-${k}.json`);
    writeFileSync(planFile, JSON.stringify({ instances: group.map((m) => ({ env: m.env, logFile: m.logFile })) }), { mode: 0o600 });
    const host: MemberProcess = {
      id: `host-${k}`, kind: 'municipality', entry: 'services/municipality/host.ts', url: '', logFile: join(hostsDir, `host-${k}.log`),
      // Hundreds of instances share one libuv pool: with Node's 4 threads, a few SQLite writers
      // waiting out a busy lock hold every thread and the other instances' queries (and their signing)
      // stop behind them — a host of 580 instances stalled for minutes that way.
      env: { HOST_PLAN: planFile, LOG_LEVEL: options.logLevel, UV_THREADPOOL_SIZE: String(HOST_THREADPOOL_SIZE) },
      nodeArgs: options.nodeArgs?.(`host-${k}`),
    };
    workers.push(host);
    for (const m of group) instances.push({ code: m.id, url: m.url, env: m.env, process: host });
  }
  return { issuer, gateway, workers, instances, mode: 'hosts', pki: { ms: pkiMs, generationMs, generated } };
}

export interface StartTimings {
  /** Issuer and gateway up (they start first). */
  coreMs: number;
  /** Every municipality instance listening, from the first spawn. */
  municipalitiesMs: number;
}

/** Starts the issuer and gateway, then every municipality process or host. */
export async function startBenchFederation(fed: BenchFederation, timeoutMs: number): Promise<StartTimings> {
  const t0 = performance.now();
  await Promise.all([startMember(fed.issuer, { timeoutMs }), startMember(fed.gateway, { timeoutMs })]);
  const t1 = performance.now();
  await Promise.all(fed.workers.map((w) => startMember(w, { timeoutMs })));
  return { coreMs: t1 - t0, municipalitiesMs: performance.now() - t1 };
}

export async function stopBenchFederation(fed: BenchFederation): Promise<void> {
  await Promise.all([...fed.workers, fed.gateway, fed.issuer].map((m) => stopMember(m)));
}

/** Every process of the federation by a stable name, for CPU and memory readings. */
export function federationPids(fed: BenchFederation): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of [fed.issuer, fed.gateway, ...fed.workers]) if (m.child?.pid) out[m.id] = m.child.pid;
  return out;
}
