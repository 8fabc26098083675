import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger } from '../../shared/platform/log.ts';
import { createStaff } from '../../services/municipality/staff/service.ts';
import { startHost, type Host } from '../../services/municipality/host.ts';
import { api } from '../fixtures/http.ts';
import { memberDatabase, onPostgres, queryRows } from '../fixtures/database.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const run = promisify(execFile);

/** The error lines of every member log under a data folder (for a failed run's message). */
function memberErrors(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory() && e.name !== 'pki') walk(path);
      else if (e.name.endsWith('.log')) {
        const bad = readFileSync(path, 'utf8').split('\n').filter((l) => /"level":(50|60)|Error/.test(l)).slice(-5);
        if (bad.length) out.push(`${path}:\n  ${bad.join('\n  ')}`);
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.join('\n');
}

const isSpread = (s: { median: number; min: number; max: number }) => Number.isFinite(s.median) && s.min <= s.median && s.median <= s.max;

describe('the benchmark at a tiny size (so it cannot rot; no timing is asserted)', () => {
  let dataDir: string;
  let result: any;
  before(async function () {
    // The benchmark measures the embedded deployment: it builds its own SQLite files whatever
    // TEST_DATABASE_URL says, so under PostgreSQL it would only repeat the SQLite run.
    if (onPostgres) this.skip();
    this.timeout(600_000);
    dataDir = mkdtempSync(join(tmpdir(), 'hikitsugi-bench-'));
    try {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/bench.ts', '--tiny', '--json-only', '--clean', '--data-dir', dataDir], {
        cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 590_000,
      });
      result = JSON.parse(stdout.trim().split('\n').pop()!);
    } catch (err) {
      // A failed run leaves its data folder: show the members' errors before the folder goes.
      throw new Error(`${(err as Error).message}\n${memberErrors(dataDir)}`);
    }
  });
  after(() => { if (dataDir) rmSync(dataDir, { recursive: true, force: true }); });

  it('when it runs, then every mover is retrieved in both designs, by bulk and by single queries', () => {
    const movers = result.config.subjects;
    expect(movers).to.equal(30);
    for (const design of ['federated', 'centralized']) {
      for (const rep of result.bulk[design].reps) expect(rep.statuses).to.deep.equal({ ok: movers });
      for (const kind of ['at1', 'concurrent']) {
        for (const rep of result.single[kind][design].reps) expect(Object.keys(rep.statuses)).to.deep.equal(['ok']);
      }
    }
  });

  it('when it runs, then the JSON line carries all five measurements with median and range', () => {
    const workloads = [result.bulk.federated, result.bulk.centralized, result.single.at1.federated, result.single.at1.centralized,
      result.single.concurrent.federated, result.single.concurrent.centralized];
    for (const w of workloads) {
      for (const figure of ['elapsedMs', 'perSecond', 'p50Ms', 'p99Ms', 'cpuMicrosPerSubject']) expect(isSpread(w[figure]), figure).to.equal(true);
      expect(w.reps).to.have.length(result.config.repetitions);
    }
    for (const ratio of ['bulkWall', 'bulkCpu', 'singleAt1Wall', 'singleConcurrentWall', 'singleCpu']) {
      expect(result.ratio[ratio], ratio).to.be.a('number').and.to.be.greaterThan(0);
    }
    for (const role of ['requester', 'gateway', 'provider', 'total']) {
      expect(result.cpuPerSubject.bulk[role], role).to.be.a('number');
      expect(result.cpuPerSubject.single[role], role).to.be.a('number');
    }
    expect(result.memory.municipalityInstanceMiB.median).to.be.greaterThan(0);
    expect(result.memory.gatewayMiB).to.be.greaterThan(0);
    expect(result.memory.centralizedMiB).to.be.greaterThan(0);
  });

  it('when it runs, then set-up is reported apart: codes registered through the issuer, the machine, each target judged', () => {
    expect(result.setup.codes).to.equal(2 * result.config.subjects);
    expect(result.setup.registrationMs).to.be.greaterThan(0);
    expect(result.setup.startup.municipalitiesMs).to.be.greaterThan(0);
    expect(result.machine.nproc).to.be.greaterThan(0);
    expect(result.machine.node).to.equal(process.version);
    expect(result.targets).to.have.length(8);
    // The headline figures under their stable names, each the same number as the detailed figure.
    expect(result.figures).to.deep.equal({
      bulkSubjectsPerSecond: result.bulk.federated.perSecond.median, bulkCpuRatio: result.ratio.bulkCpu,
      singleAt32QueriesPerSecond: result.single.concurrent.federated.perSecond.median, singleAt32P99Ms: result.single.concurrent.federated.p99Ms.median,
      registrationCodesPerSecond: result.setup.codesPerSecond,
    });
    expect(result.figures.bulkSubjectsPerSecond).to.be.greaterThan(0);
    expect(result.figures.registrationCodesPerSecond).to.be.greaterThan(0);
    for (const t of result.targets) expect(t.met === null || typeof t.met === 'boolean').to.equal(true);
    // The data folder is removed with --clean; nothing is left behind.
    expect(existsSync(join(dataDir, 'pki'))).to.equal(false);
  });
});

describe('host mode: many municipality instances in one process', () => {
  let dir: string;
  let host: Host;
  const codes = ['011002', '021008'];
  before(async function () {
    this.timeout(60_000);
    dir = mkdtempSync(join(tmpdir(), 'hikitsugi-host-'));
    host = await startHost({
      instances: codes.map((code) => ({
        env: {
          MUNICIPALITY_CODE: code, MUNICIPALITY_NAME: `Municipality ${code}`, PORT: '0', LOG_LEVEL: 'info',
          ...memberDatabase(code, join(dir, code, `${code}.sqlite`)), DATA_KEY: randomBytes(32).toString('hex'), SESSION_SECRET: randomBytes(32).toString('hex'),
        },
        logFile: join(dir, code, `${code}.log`),
      })),
    }, { logger: createLogger({ name: 'test-host', level: 'silent' }) });
    for (const i of host.instances) {
      await createStaff(i.municipality.ctx, { username: 'clerk1', displayName: 'Clerk', role: 'clerk', password: 'host-mode-password-1' });
    }
  });
  after(async () => {
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('when two instances run in one host, then each answers on its own port as its own municipality, from its own database file', async () => {
    expect(host.instances.map((i) => i.code).sort()).to.deep.equal(codes);
    expect(new Set(host.instances.map((i) => i.url)).size).to.equal(2);
    for (const i of host.instances) {
      const res = await api('GET', `${i.url}/health`);
      expect(res.status).to.equal(200);
      expect(res.body.municipality).to.equal(i.code);
      if (onPostgres) {
        // PostgreSQL: its own database (its own URL), holding exactly the one account made through this instance.
        const env = { DATABASE_URL: i.municipality.ctx.config.DATABASE_URL! };
        expect(env.DATABASE_URL).to.be.a('string');
        expect(Number((await queryRows<{ n: number }>(env, 'SELECT COUNT(*) AS n FROM staff'))[0]!.n)).to.equal(1);
      } else {
        expect(existsSync(join(dir, i.code, `${i.code}.sqlite`))).to.equal(true);
      }
    }
    if (onPostgres) expect(new Set(host.instances.map((i) => i.municipality.ctx.config.DATABASE_URL)).size).to.equal(2);
  });

  it('when a session is opened at one instance, then the other refuses its token (own secrets, no shared state)', async () => {
    const [a, b] = host.instances;
    const login = await api('POST', `${a!.url}/auth/login`, { body: { username: 'clerk1', password: 'host-mode-password-1' } });
    expect(login.status).to.equal(200);
    expect((await api('GET', `${a!.url}/auth/me`, { token: login.body.token })).status).to.equal(200);
    const elsewhere = await api('GET', `${b!.url}/auth/me`, { token: login.body.token });
    expect(elsewhere.status).to.equal(401);
    expect(elsewhere.headers.get('content-type')).to.match(/application\/problem\+json/);
  });

  it('when instances log, then each writes its own log file naming itself', async () => {
    await new Promise((r) => setTimeout(r, 200));
    for (const i of host.instances) {
      const lines = readFileSync(join(dir, i.code, `${i.code}.log`), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.some((l) => l.msg === 'ready' && l.code === i.code)).to.equal(true);
      expect(lines.every((l) => l.member === `municipality-${i.code}`)).to.equal(true);
    }
  });
});
