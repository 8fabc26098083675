/**
 * Brings up a local federation as separate processes: issuer, gateway and municipalities, each
 * with its own database file, keys and port under one data folder. `npm start`, the end-to-end
 * tests, the simulator's targets and the benchmark all use this one launcher.
 *
 * Layout: <dataDir>/pki (CA and member certificates), <dataDir>/<member>/secrets.json,
 * <dataDir>/<member>/<member>.sqlite, <dataDir>/<member>/<member>.log, <dataDir>/gateway/directory.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { generateKeyPairSync, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { newOprfKey } from '../shared/crypto.ts';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedGatewayStaff } from '../gateway/access-log/staff.ts';
import type { SeedOptions, SeedResult } from './seed.ts';
import { DEMO_PASSWORD, controlFile } from './demo.ts';
import { memberBundle, type MemberEntry } from './member-bundle.ts';
import { initPki, type MemberSpec } from '../shared/federation/pki.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

export interface MunicipalitySpec {
  code: string;
  name: string;
  /** Staff API port (0 = pick a free one). */
  port?: number;
  /** Federation (mTLS) port (0 = pick a free one). */
  federationPort?: number;
}

export interface FederationPlan {
  dataDir: string;
  municipalities: MunicipalitySpec[];
  gatewayPort?: number;
  issuerPort?: number;
  /** The gateway's privacy-officer console (plain HTTP on 127.0.0.1; 0 = pick a free one). */
  gatewayStaffPort?: number;
  logLevel?: string;
  /** Extra environment per member id (e.g. SOURCE_TIMEOUT_MS for the gateway). */
  env?: Record<string, Record<string, string>>;
  /**
   * Where free ports are looked for when a port is 0 (default: from 20000 to below the ephemeral
   * range). Processes that launch federations side by side (parallel test workers) each take
   * their own range, so two never pick the same port before either has bound it.
   */
  portRange?: PortRange;
  /**
   * Each member's database settings: by default `{ DATABASE_PATH: sqliteFile }`; a PostgreSQL
   * deployment (or the suite under TEST_DATABASE_URL) returns `{ DATABASE_URL }` per member.
   */
  database?: (member: string, sqliteFile: string) => Record<string, string> | Promise<Record<string, string>>;
}

export interface MemberProcess {
  id: string;
  kind: 'issuer' | 'gateway' | 'municipality';
  env: Record<string, string>;
  entry: MemberEntry;
  /** Staff URL for municipalities; member URL for the gateway and issuer. */
  url: string;
  federationUrl?: string;
  /** The gateway's privacy-officer console. */
  staffUrl?: string;
  logFile: string;
  /** Extra node flags for this member's process (e.g. --cpu-prof for the benchmark's profile run). */
  nodeArgs?: string[];
  child?: ChildProcess;
}


/**
 * A free port for a member to listen on later. Chosen below the kernel's ephemeral range: a port
 * the kernel handed out (listen(0)) and we released can be taken by any outgoing connection's local
 * end (to PostgreSQL, between members) before the member binds it, and the member then fails to
 * start with EADDRINUSE. Ports below that range are only ever taken by someone who listens.
 */
export async function freePort(range: PortRange = listenPortRange()): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = range.low + randomInt(range.high - range.low);
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found below the ephemeral range');
}

export interface PortRange {
  /** Lowest port, inclusive. */
  low: number;
  /** Highest port, exclusive. */
  high: number;
}

const LISTEN_PORT_LOW = 20_000;
/** How many shares the listen range is cut into for launchers running side by side (LISTEN_PORTS_SHARE). */
const LISTEN_PORT_SHARES = 8;

/**
 * The ports members listen on: from 20000 to just below the kernel's ephemeral range. Launchers
 * running side by side on one machine (parallel test workers, and the benchmark one of them
 * starts) each take their own share, LISTEN_PORTS_SHARE=k (the (k mod 8)-th eighth): a port one of
 * them checked free is never bound meanwhile by a member another one starts or restarts.
 */
export function listenPortRange(): PortRange {
  const [ephemeralLow] = (() => {
    try {
      return readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    } catch {
      return [32768];
    }
  })();
  const all = { low: LISTEN_PORT_LOW, high: Math.max(LISTEN_PORT_LOW + 1000, ephemeralLow ?? 32768) };
  const share = process.env.LISTEN_PORTS_SHARE;
  if (share === undefined || share === '') return all;
  const k = Number(share);
  if (!Number.isInteger(k) || k < 0) throw new Error('LISTEN_PORTS_SHARE must be a whole number (0, 1, 2, …)');
  const size = Math.floor((all.high - all.low) / LISTEN_PORT_SHARES);
  const low = all.low + (k % LISTEN_PORT_SHARES) * size;
  return { low, high: low + size };
}
/** Ports this process already gave out (a member may not have bound its port yet). */
const handedOut = new Set<number>();

function canListen(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolvePort(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)));
  });
}

const hexKey = () => randomBytes(32).toString('hex');
/** A municipality's SMART Health Card signing key (SHC_SIGNING_KEY): P-256, as PKCS#8 PEM (docs/DESIGN.md §4.11). */
const healthCardKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
/** How a secret is made when it is missing: a 32-byte hex key unless named here. */
const SECRET_MAKERS: Record<string, () => string> = { SHC_SIGNING_KEY: healthCardKey, OPRF_KEY: newOprfKey };

/** Secrets are made once per member and kept in its folder (git-ignored), never defaulted. */
function secretsFor(dataDir: string, id: string, names: string[]): Record<string, string> {
  const dir = join(dataDir, id);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'secrets.json');
  const existing = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
  let changed = false;
  for (const name of names) {
    if (!existing[name]) { existing[name] = (SECRET_MAKERS[name] ?? hexKey)(); changed = true; }
  }
  if (changed) writeFileSync(file, JSON.stringify(existing, null, 2), { mode: 0o600 });
  return existing;
}

/** Creates what is missing (PKI, secrets, directory) and returns every member's process description. */
export async function prepareFederation(plan: FederationPlan): Promise<MemberProcess[]> {
  const dataDir = resolve(plan.dataDir);
  const pkiDir = join(dataDir, 'pki');
  const databaseOf = async (member: string, sqliteFile: string): Promise<Record<string, string>> =>
    (plan.database ? plan.database(member, sqliteFile) : { DATABASE_PATH: sqliteFile });
  const members: MemberSpec[] = [
    { id: 'issuer', kind: 'issuer', name: 'Issuer' }, { id: 'gateway', kind: 'gateway', name: 'Gateway' },
    ...plan.municipalities.map((m) => ({ id: m.code, kind: 'municipality' as const, name: m.name })),
  ];
  // What `npm run pki -- init --replace-rsa-ca` does, in this process. This launcher runs local
  // federations only (npm start, tests, the simulator, the benchmark): an RSA CA an earlier
  // version left in the data folder is replaced and every member re-issued.
  await initPki(pkiDir, members, { replaceRsaCa: true });

  const level = plan.logLevel ?? 'info';
  const port = () => freePort(plan.portRange);
  const gatewayPort = plan.gatewayPort || (await port());
  const issuerPort = plan.issuerPort || (await port());
  const gatewayUrl = `https://127.0.0.1:${gatewayPort}`;
  const issuerUrl = `https://127.0.0.1:${issuerPort}`;
  const processes: MemberProcess[] = [];

  for (const m of plan.municipalities) {
    const staffPort = m.port || (await port());
    const federationPort = m.federationPort || (await port());
    const secrets = secretsFor(dataDir, m.code, ['DATA_KEY', 'SESSION_SECRET', 'SHC_SIGNING_KEY']);
    const database = await databaseOf(m.code, join(dataDir, m.code, `${m.code}.sqlite`));
    processes.push({
      id: m.code, kind: 'municipality', entry: 'services/municipality/main.ts',
      url: `http://127.0.0.1:${staffPort}`, federationUrl: `https://127.0.0.1:${federationPort}`,
      logFile: join(dataDir, m.code, `${m.code}.log`),
      env: {
        MUNICIPALITY_CODE: m.code, MUNICIPALITY_NAME: m.name, HOST: '127.0.0.1', PORT: String(staffPort),
        FEDERATION_PORT: String(federationPort), ...database,
        CERT_DIR: join(pkiDir, m.code), GATEWAY_URL: gatewayUrl, ISSUER_URL: issuerUrl, LOG_LEVEL: level,
        DATA_KEY: secrets.DATA_KEY!, SESSION_SECRET: secrets.SESSION_SECRET!, SHC_SIGNING_KEY: secrets.SHC_SIGNING_KEY!, ...plan.env?.[m.code],
      },
    });
  }

  // The gateway's directory: public certificates from the PKI, endpoints from this plan.
  const directory = JSON.parse(readFileSync(join(pkiDir, 'directory.json'), 'utf8')) as { id: string; endpoint?: string }[];
  for (const entry of directory) {
    const member = processes.find((p) => p.id === entry.id);
    if (member?.federationUrl) entry.endpoint = member.federationUrl;
    // The issuer's endpoint lets members ask it for the heads of their logs it holds.
    if (entry.id === 'issuer') entry.endpoint = issuerUrl;
  }
  mkdirSync(join(dataDir, 'gateway'), { recursive: true });
  writeFileSync(join(dataDir, 'gateway', 'directory.json'), JSON.stringify(directory, null, 2));

  const issuerSecrets = secretsFor(dataDir, 'issuer', ['OPRF_KEY', 'LINK_KEY', 'CODE_KEY', 'ATTESTATION_KEY']);
  // The CA-signed list (scripts/pki.ts init re-signed it just now; `revoke` and `refresh` sign the next
  // one): the gateway re-reads the file every REVOCATION_REFRESH_SECONDS, every other member asks the gateway.
  const revocationFile = join(pkiDir, 'ca', 'revocations.jws');
  // The gateway's own privacy officer (its console), with the demo password like the municipalities' staff.
  const gatewaySecrets = secretsFor(dataDir, 'gateway', ['SESSION_SECRET', 'OPRF_KEY']);
  const gatewayStaffPort = plan.gatewayStaffPort || (await port());
  const gatewayDatabase = await databaseOf('gateway', plan.env?.gateway?.DATABASE_PATH ?? join(dataDir, 'gateway', 'gateway.sqlite'));
  const issuerDatabase = await databaseOf('issuer', join(dataDir, 'issuer', 'issuer.sqlite'));
  await seedGatewayStaff({ storage: gatewayDatabase.DATABASE_PATH, url: gatewayDatabase.DATABASE_URL }, [{ username: 'officer1', displayName: 'Gateway privacy officer', role: 'privacy_officer', password: DEMO_PASSWORD }]);
  processes.unshift(
    {
      id: 'issuer', kind: 'issuer', entry: 'services/issuer/main.ts', url: issuerUrl, logFile: join(dataDir, 'issuer', 'issuer.log'),
      env: {
        HOST: '127.0.0.1', PORT: String(issuerPort), CERT_DIR: join(pkiDir, 'issuer'), GATEWAY_URL: gatewayUrl,
        ...issuerDatabase, LOG_LEVEL: level,
        OPRF_KEY: issuerSecrets.OPRF_KEY!, LINK_KEY: issuerSecrets.LINK_KEY!, CODE_KEY: issuerSecrets.CODE_KEY!, ATTESTATION_KEY: issuerSecrets.ATTESTATION_KEY!,
        ...plan.env?.issuer,
      },
    },
    {
      id: 'gateway', kind: 'gateway', entry: 'gateway/main.ts', url: gatewayUrl, logFile: join(dataDir, 'gateway', 'gateway.log'),
      staffUrl: `http://127.0.0.1:${gatewayStaffPort}`,
      env: {
        STAFF_PORT: String(gatewayStaffPort), SESSION_SECRET: gatewaySecrets.SESSION_SECRET!, OPRF_KEY: gatewaySecrets.OPRF_KEY!,
        HOST: '127.0.0.1', PORT: String(gatewayPort), CERT_DIR: join(pkiDir, 'gateway'),
        DIRECTORY_FILE: join(dataDir, 'gateway', 'directory.json'), ...gatewayDatabase,
        REVOCATION_FILE: revocationFile, LOG_LEVEL: level, ...plan.env?.gateway,
      },
    },
  );
  return processes;
}

/**
 * Total residents up to which a federation's municipalities are seeded in one process: loading the
 * bundle costs a process about 0.6 s of CPU, more than seeding a few dozen residents (the test
 * federations); larger demo data is spread over the cores.
 */
const ONE_PROCESS_SEEDING = 100;

/**
 * Seeds municipalities in processes of their own, run from the members' bundle
 * (scripts/member-bundle.ts): side by side, one process per core, so a launcher seeding large
 * demo data uses every core, and without tsx's loader and source maps the same seeding costs about
 * 40 % less CPU (100 residents: 9.8 s under tsx, 5.8 s bundled). Small data goes in one process
 * (ONE_PROCESS_SEEDING). The options, secrets included, travel on the children's stdin, never in
 * their arguments. Results come back in the order of `list`.
 */
export async function seedMunicipalities(list: SeedOptions[]): Promise<SeedResult[]> {
  const residents = list.reduce((sum, o) => sum + o.residents, 0);
  const processes = residents <= ONE_PROCESS_SEEDING ? 1 : Math.max(1, Math.min(list.length, availableParallelism()));
  const groups: number[][] = Array.from({ length: processes }, () => []);
  list.forEach((_, i) => groups[i % processes]!.push(i));
  const results: SeedResult[] = [];
  await Promise.all(groups.filter((g) => g.length > 0).map(async (group) => {
    const seeded = await seedInOwnProcess(group.map((i) => list[i]!));
    group.forEach((i, k) => { results[i] = seeded[k]!; });
  }));
  return results;
}

async function seedInOwnProcess(list: SeedOptions[]): Promise<SeedResult[]> {
  const program = await memberBundle('scripts/seed.ts');
  const child = spawn(process.execPath, [program, '--options-on-stdin'], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: process.env.NODE_ENV ?? 'development' }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
  child.stdin.end(JSON.stringify(list));
  const [code] = await once(child, 'exit') as [number | null];
  const line = stdout.trim().split('\n').pop() ?? '';
  const codes = list.map((o) => o.env.MUNICIPALITY_CODE).join(', ');
  if (code !== 0 || !line.startsWith('[')) throw new Error(`seeding ${codes} failed (exit ${code}): ${stderr.slice(-2000)}`);
  return JSON.parse(line) as SeedResult[];
}

/**
 * Starts one member process and resolves when it logs `ready`. Its stdout/stderr go to its log
 * file (the leak scans read these files), never to the terminal of the launcher.
 */
export async function startMember(member: MemberProcess, options: { timeoutMs?: number } = {}): Promise<MemberProcess> {
  const program = await memberBundle(member.entry);
  return new Promise((resolveStart, reject) => {
    const log = createWriteStream(member.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [...(member.nodeArgs ?? []), program], {
      cwd: ROOT, env: { PATH: process.env.PATH ?? '', NODE_ENV: process.env.NODE_ENV ?? 'development', ...member.env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    member.child = child;
    let buffered = '';
    let ready = false;
    const timer = setTimeout(() => {
      if (!ready) { child.kill('SIGKILL'); reject(new Error(`${member.id} did not become ready; see ${member.logFile}`)); }
    }, options.timeoutMs ?? 120_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      if (ready) return;
      buffered += chunk.toString('utf8');
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.includes('"msg":"ready"')) {
          ready = true;
          clearTimeout(timer);
          resolveStart(member);
          break;
        }
      }
    });
    // The last output before ready, kept to explain a failed start.
    const recent: string[] = [];
    const keep = (chunk: Buffer) => { if (!ready) { recent.push(chunk.toString('utf8')); if (recent.length > 30) recent.shift(); } };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', (chunk: Buffer) => { log.write(chunk); keep(chunk); });
    child.once('exit', (code, signal) => {
      log.end();
      if (!ready) {
        clearTimeout(timer);
        // The log may be gone with a temporary folder by the time anyone reads it: quote its end.
        const tail = recent.join('').split('\n').filter(Boolean).slice(-15).map((l) => `  | ${l.slice(0, 400)}`).join('\n');
        reject(new Error(`${member.id} exited (${code ?? signal}) before it was ready; see ${member.logFile}\n${tail}`));
      }
    });
  });
}

/** Stops a member: SIGTERM (clean shutdown) or SIGKILL (a crash), and waits for the exit. */
export function stopMember(member: MemberProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const child = member.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(force); resolveStop(); });
    child.kill(signal);
  });
}

export async function startFederation(members: MemberProcess[]): Promise<void> {
  // The issuer and gateway first (municipalities fetch the directory and register codes at once).
  const [issuer, gateway, ...municipalities] = members;
  await Promise.all([startMember(issuer!), startMember(gateway!)]);
  await Promise.all(municipalities.map((m) => startMember(m)));
}

export async function stopFederation(members: MemberProcess[]): Promise<void> {
  await Promise.all(members.map((m) => stopMember(m)));
}

/* ---------- a local control endpoint (the simulator's --kill-source) ---------- */

export interface ControlServer {
  url: string;
  close(): Promise<void>;
}


/**
 * Lets a local tool stop and restart members of a federation this process launched, over HTTP
 * on 127.0.0.1 with a bearer token that only readers of the data folder know:
 *   GET  /members                       → [{ id, kind, url, running }]
 *   POST /members/:id/stop  {signal?}   → stops it (SIGTERM, or SIGKILL for a crash)
 *   POST /members/:id/start             → starts it again with the same environment and ports
 * It exists so operators can rehearse failures (`npm run simulate -- --kill-source`); it never
 * touches data, keys or the federation's own ports.
 */
export async function startControlServer(members: MemberProcess[], options: { dataDir: string; port?: number }): Promise<ControlServer> {
  const token = randomBytes(24).toString('base64url');
  const expected = Buffer.from(`Bearer ${token}`);
  const running = (m: MemberProcess) => Boolean(m.child && m.child.exitCode === null && m.child.signalCode === null);
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' });
    res.end(JSON.stringify(body));
  };
  const busy = new Set<string>();
  const server = createHttpServer((req, res) => {
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      send(res, 401, { type: 'https://hikitsugi.example/problems/unauthorized', title: 'Control token required', status: 401, field: 'authorization', rule: 'must be the bearer token in control.json' });
      return;
    }
    let body = '';
    req.on('data', (chunk: Buffer) => { if (body.length < 1024) body += chunk.toString('utf8'); });
    req.on('end', () => {
      void (async () => {
        const path = (req.url ?? '').split('?')[0]!;
        if (req.method === 'GET' && path === '/members') {
          send(res, 200, members.map((m) => ({ id: m.id, kind: m.kind, url: m.url, running: running(m) })));
          return;
        }
        const match = /^\/members\/([A-Za-z0-9-]{1,32})\/(stop|start)$/.exec(path);
        const member = match ? members.find((m) => m.id === match[1]) : undefined;
        if (req.method !== 'POST' || !match || !member) {
          send(res, 404, { type: 'https://hikitsugi.example/problems/not-found', title: 'No such member or action', status: 404 });
          return;
        }
        if (busy.has(member.id)) {
          send(res, 409, { type: 'https://hikitsugi.example/problems/busy', title: 'Member is being stopped or started', status: 409 });
          return;
        }
        busy.add(member.id);
        try {
          if (match[2] === 'stop') {
            let signal: NodeJS.Signals = 'SIGTERM';
            try {
              if (body && (JSON.parse(body) as { signal?: string }).signal === 'SIGKILL') signal = 'SIGKILL';
            } catch {
              // A body that is not JSON asks for the default.
            }
            await stopMember(member, signal);
          } else if (!running(member)) {
            await startMember(member);
          }
          send(res, 200, { id: member.id, running: running(member) });
        } catch (err) {
          send(res, 500, { type: 'https://hikitsugi.example/problems/control-failed', title: (err as Error).message.slice(0, 200), status: 500 });
        } finally {
          busy.delete(member.id);
        }
      })();
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolveListen());
  });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  writeFileSync(controlFile(options.dataDir), JSON.stringify({ url, token }), { mode: 0o600 });
  return {
    url,
    close: () => new Promise<void>((resolveClose) => {
      // A stale control.json would point the simulator at nobody (or at another launcher).
      rmSync(controlFile(options.dataDir), { force: true });
      server.close(() => resolveClose());
      server.closeAllConnections();
    }),
  };
}
