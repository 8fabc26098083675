/**
 * The dependency rule (.dependency-cruiser.cjs, docs/DESIGN.md §8): members import only themselves
 * and shared/, folders import only the layers below them, nothing imports in a circle. Checked
 * here on the real tree with dependency-cruiser, so `npm test` fails on a violation; and shown to
 * catch one: a file that imports upward, across members or in a circle is named by its rule.
 */
import { expect } from 'chai';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TREE = ['services', 'gateway', 'shared', 'scripts', 'test'];

/** Violations as "rule: from → to", from a cruise of the tree with the project's own configuration. */
async function violations(): Promise<string[]> {
  const cwd = process.cwd();
  // dependency-cruiser reads paths relative to the working folder, as its CLI does.
  process.chdir(ROOT);
  try {
    const options = await extractDepcruiseOptions(join(ROOT, '.dependency-cruiser.cjs'));
    const { output } = await cruise(TREE, { ...options, validate: true }, {}, { tsConfig: extractTSConfig(join(ROOT, 'tsconfig.json')) });
    const result = output as ICruiseResult;
    expect(result.summary.totalCruised, 'the whole tree was read').to.be.greaterThan(200);
    return result.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
  } finally {
    process.chdir(cwd);
  }
}

/** Writes probe files (JavaScript: the type check never sees them) for the length of `check`. */
async function withProbes(files: Record<string, string>, check: () => Promise<void>): Promise<void> {
  try {
    for (const [path, text] of Object.entries(files)) writeFileSync(join(ROOT, path), text);
    await check();
  } finally {
    for (const path of Object.keys(files)) rmSync(join(ROOT, path), { force: true });
  }
}

describe('the dependency rule', function () {
  this.timeout(120_000);

  it('when the real tree is checked, then it has no violation', async () => {
    expect(await violations()).to.deep.equal([]);
  });

  it('when files import upward, across members, from outside the layer order or in a circle, then each rule names its import', async () => {
    // One cruise for every probe: each is a plain JavaScript file the type check never sees.
    const probes = {
      upward: 'services/municipality/residents/upward-probe.js',
      gateway: 'gateway/routing/member-probe.js',
      shared: 'shared/platform/member-probe.js',
      stray: 'services/municipality/stray-probe.js',
      circleA: 'scripts/circle-probe-a.js',
      circleB: 'scripts/circle-probe-b.js',
    };
    await withProbes({
      [probes.upward]: "export { routes } from '../asking/routes.ts';\n",
      [probes.gateway]: "export { routes } from '../../services/municipality/asking/routes.ts';\n",
      [probes.shared]: "export { createGateway } from '../../gateway/app.ts';\n",
      [probes.stray]: "export { loadConfig } from './config.ts';\n",
      [probes.circleA]: "export { b } from './circle-probe-b.js';\nexport const a = 1;\n",
      [probes.circleB]: "export { a } from './circle-probe-a.js';\nexport const b = 2;\n",
    }, async () => {
      const found = await violations();
      // A circle is reported once, from whichever of its modules the cruise met first.
      const circle = found.filter((v) => v.startsWith('no-circular: '));
      expect(circle, found.join('\n')).to.have.length(1);
      expect([`no-circular: ${probes.circleA} → ${probes.circleB}`, `no-circular: ${probes.circleB} → ${probes.circleA}`]).to.include(circle[0]);
      expect(found.filter((v) => !v.startsWith('no-circular: ')).sort()).to.deep.equal([
        `no-cross-member-import: ${probes.gateway} → services/municipality/asking/routes.ts`,
        `no-member-in-shared: ${probes.shared} → gateway/app.ts`,
        `no-upward-import: ${probes.upward} → services/municipality/asking/routes.ts`,
        `not-in-a-layer: ${probes.stray} → services/municipality/config.ts`,
      ]);
    });
  });
});
