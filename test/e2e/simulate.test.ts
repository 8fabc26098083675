/**
 * `npm run simulate` at a tiny size against a federation of real processes, with --kill-source:
 * the simulator is its own process and reaches the federation only through the staff APIs and
 * the launcher's control endpoint, as it does against `npm start`.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { startControlServer, type ControlServer } from '../../scripts/federation.ts';
import { startTestFederation, type RunningFederation } from '../fixtures/federation.ts';
import { api } from '../fixtures/http.ts';

const run = promisify(execFile);
const RESIDENTS = 12;

describe('the move-in simulator (real processes)', () => {
  let fed: RunningFederation;
  let control: ControlServer;

  before(async function () {
    this.timeout(180_000);
    fed = await startTestFederation({ residents: RESIDENTS });
    control = await startControlServer(fed.members, { dataDir: fed.dataDir });
    for (const m of fed.members.filter((x) => x.kind === 'municipality')) await fed.waitForCodes(m.id);
  });
  after(async () => {
    await control?.close();
    await fed?.close();
  });

  const simulate = async (args: string[]) => {
    const municipalities = fed.members.filter((m) => m.kind === 'municipality').flatMap((m) => ['--municipality', `${m.id}=${m.url}`]);
    try {
      const out = await run(process.execPath, ['--import', 'tsx', 'scripts/simulate.ts', ...municipalities, '--residents', String(RESIDENTS), '--data-dir', fed.dataDir, ...args], {
        cwd: resolve(import.meta.dirname, '../..'), timeout: 240_000, maxBuffer: 8 * 1024 * 1024,
      });
      return { code: 0, stdout: out.stdout };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: `${e.stdout ?? ''}\n${e.stderr ?? ''}` };
    }
  };

  it('when six residents move with one source stopped mid-run, then every moved resident ends under exactly one outcome, nothing is lost or duplicated, and the exit code is 0', async function () {
    this.timeout(300_000);
    const { code, stdout } = await simulate(['--move-ins', '6', '--without-consent', '0.2', '--wrong-birth-date', '0.2', '--kill-source', '--random-seed', 'e2e']);
    const json = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
    expect(json, stdout).to.be.a('string');
    const report = JSON.parse(json!);
    expect(code, stdout).to.equal(0);
    expect(report).to.include({ moved: 6, lost: 0, duplicated: 0, leaked: 0, unexpected: 0, moveFailed: 0, unaccounted: 0, unavailable: 0 });
    expect(report.refused).to.deep.equal({ no_consent: 1, identity_mismatch: 1 });
    expect(report.fetched).to.equal(4);
    expect(report.fetched + report.refused.no_consent + report.refused.identity_mismatch + report.unavailable).to.equal(report.moved);
    expect(report.recordsImported).to.be.a('number');
    expect(report.perSubjectMs.p50).to.be.a('number');
    // The stopped source's residents were partial results first, then retried to completion.
    expect(report.killedSource.partial.source_unavailable).to.be.greaterThan(0);
    expect(report.retried).to.equal(report.killedSource.partial.source_unavailable);
    expect(stdout).to.match(/fetched \(ok\)\s+4/);

    // The stopped member is back and serving.
    const back = await api('GET', `${fed.url(report.killedSource.id)}/ready`);
    expect(back.status).to.equal(200);
  });
});
