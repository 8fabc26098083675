/**
 * Member processes run from an esbuild bundle of their source (scripts/member-bundle.ts): the
 * bundle must be the same for the same source, keep each module's own `import.meta.url` (files
 * read beside a module), and map back to the TypeScript files for the benchmark's profile.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MEMBER_ENTRIES, memberBundle, recordInputs, unchangedBundle } from '../../scripts/member-bundle.ts';
import { categoryOfFrame, sourceUrlOf } from '../../scripts/bench/profile.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** The bundle file and zero-based position where `needle` first appears. */
function locate(dir: string, needle: string): { url: string; lineNumber: number; columnNumber: number } {
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.mjs'))) {
    const lines = readFileSync(join(dir, name), 'utf8').split('\n');
    const lineNumber = lines.findIndex((l) => l.includes(needle));
    if (lineNumber >= 0) return { url: pathToFileURL(join(dir, name)).href, lineNumber, columnNumber: lines[lineNumber]!.indexOf(needle) };
  }
  throw new Error(`${needle} is in no bundled file`);
}

describe('member processes from a bundle', () => {
  let dir: string;
  before(async function () {
    this.timeout(60_000);
    dir = resolve(await memberBundle('services/issuer/main.ts'), '../../..');
  });

  it('when every member entry is asked for, then each is a file in one content-addressed folder', async () => {
    for (const entry of MEMBER_ENTRIES) {
      const file = await memberBundle(entry);
      expect(file).to.equal(join(dir, entry.replace(/\.ts$/, '.mjs')));
      expect(readFileSync(file, 'utf8').length).to.be.greaterThan(0);
    }
    expect(dir).to.match(/hikitsugi-members\/[0-9a-f]{16}$/);
  });

  it('when every file the last build read is unchanged, then the bundle is taken as it is; a file of another size or time, or one gone, means building again', () => {
    const record = join(dir, '..', 'inputs.json');
    expect(unchangedBundle(record)).to.equal(dir);
    const last = JSON.parse(readFileSync(record, 'utf8')) as { dir: string; inputs: [string, number, number][] };
    expect(last.inputs.map(([path]) => path)).to.include.members(['scripts/member-bundle.ts', 'services/issuer/main.ts', 'shared/crypto.ts']);
    const scratch = mkdtempSync(join(tmpdir(), 'hikitsugi-bundle-record-'));
    const variant = (name: string, change: (inputs: [string, number, number][]) => void) => {
      const inputs = last.inputs.map((i) => [...i] as [string, number, number]);
      change(inputs);
      const file = join(scratch, `${name}.json`);
      writeFileSync(file, JSON.stringify({ dir: last.dir, inputs }));
      return unchangedBundle(file);
    };
    const at = last.inputs.findIndex(([path]) => path === 'shared/crypto.ts');
    try {
      expect(variant('same', () => {})).to.equal(dir);
      expect(variant('edited', (inputs) => { inputs[at]![2] += 1; })).to.equal(undefined);
      expect(variant('grown', (inputs) => { inputs[at]![1] += 1; })).to.equal(undefined);
      expect(variant('gone', (inputs) => { inputs[at]![0] = 'shared/no-such-module.ts'; })).to.equal(undefined);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('when a file the build read changed after the build began, then nothing is recorded and the next launcher builds again', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'hikitsugi-bundle-record-'));
    try {
      const inputs = ['services/issuer/main.ts', 'shared/crypto.ts'];
      const changedLater = join(scratch, 'changed.json');
      // A build that began before every input's modification time: one of them may be newer than what esbuild read.
      recordInputs(dir, inputs, 0, changedLater);
      expect(existsSync(changedLater)).to.equal(false);
      const unchanged = join(scratch, 'unchanged.json');
      recordInputs(dir, inputs, Date.now(), unchanged);
      expect(unchangedBundle(unchanged)).to.equal(dir);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('when a bundled module reads a file beside itself, then its import.meta.url still names its own source file', () => {
    const catalogueModule = pathToFileURL(join(ROOT, 'services/municipality/vaccinations/catalogue.ts')).href;
    const bundled = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.mjs'))
      .map((n) => readFileSync(join(dir, n), 'utf8')).join('\n');
    expect(bundled).to.include(`new URL("./catalogue.json", ${JSON.stringify(catalogueModule)})`);
  });

  it('when a profiled frame is in the bundle, then the profile names its TypeScript file and category', () => {
    const frame = { functionName: 'hashPassword', ...locate(dir, 'async function hashPassword(') };
    const source = sourceUrlOf(frame);
    expect(source).to.equal(pathToFileURL(join(ROOT, 'shared/crypto.ts')).href);
    expect(categoryOfFrame({ functionName: frame.functionName, url: source })).to.equal('crypto');
    // Unmapped, the bundle's chunk matches no rule: its time would fall to "other".
    expect(categoryOfFrame(frame)).to.equal(undefined);
  });
});
