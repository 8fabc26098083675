/**
 * Member processes run from one esbuild bundle of their TypeScript and the packages it uses, not
 * under tsx's loader: a municipality importing its 161 modules through tsx's hooks spent 2.6 s of
 * CPU before it could start, its own code bundled 1.1 s, with the packages bundled too (no
 * thousand files to find, read and wrap one by one) 0.6 s (docs/BENCHMARKS.md, "Member processes
 * from a bundle"). The launcher starts dozens of members (the simulator, the end-to-end suites,
 * the benchmark).
 *
 * A module's `import.meta.url` keeps naming its own source file, so files read beside a
 * module (the vaccine catalogue, the consoles' pages) are found as under tsx; only an entry point
 * keeps the bundle's own URL, which is how `host.ts` knows it was started as a program.
 *
 * The bundle is content-addressed: `node_modules/.cache/hikitsugi-members/<hash>/`, written once
 * and reused by every launcher that builds the same source (parallel test workers included). A
 * linked source map lets `--enable-source-maps` and the benchmark's profile name TypeScript lines.
 *
 * Building only to learn that hash cost each launcher about 2.5 s of CPU (esbuild reads and
 * bundles every file again). So the last build also writes down every file it read, with its
 * size and modification time (`inputs.json` beside the bundles); a launcher that finds each of
 * them unchanged, this file included, takes that bundle without running esbuild. Any change to a
 * file it read (a new import means an edited importer) builds again.
 */
import { build, type Plugin } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/**
 * Every program the launcher starts as a process, by its source path from the project root: the
 * members, the benchmark's centralized baseline (started the same way, so the two compare), and
 * the seeding of a municipality's demo data.
 */
export const MEMBER_ENTRIES = [
  'services/municipality/main.ts', 'services/municipality/host.ts', 'services/issuer/main.ts', 'gateway/main.ts',
  'scripts/bench/centralized/main.ts', 'scripts/seed.ts',
] as const;
export type MemberEntry = (typeof MEMBER_ENTRIES)[number];

const MEMBER_BUNDLE_CACHE = join(ROOT, 'node_modules', '.cache', 'hikitsugi-members');
/** The last build's bundle folder and the files it was made from (see above). */
const LAST_BUILD = join(MEMBER_BUNDLE_CACHE, 'inputs.json');
/** This file: how the bundle is made is an input of every bundle. */
const THIS_FILE = fileURLToPath(import.meta.url);
/** Where esbuild places the output in memory (`write: false`): paths are taken relative to it. */
const OUT_ROOT = join(MEMBER_BUNDLE_CACHE, 'out');

/** Bundles left by older source are removed after this long (a launcher still running one has long started its members). */
const STALE_BUNDLE_MS = 24 * 3600_000;

/**
 * Packages node loads from node_modules as usual rather than from the bundle: a native addon
 * (better-sqlite3 finds its binary beside its own files), pino's transport worker (a file of its
 * own, started by path), and the optional drivers and helpers Sequelize, pg and pino ask for only
 * when configured for them, which are not installed (node-sqlite3 among them: Sequelize is given
 * shared/platform/sqlite-driver.ts instead).
 */
const OUTSIDE_THE_BUNDLE = [
  'better-sqlite3', 'sqlite3', 'thread-stream',
  'pg-native', 'pg-hstore', 'pg-query-stream', 'tedious', 'mysql2', 'mariadb', 'oracledb', 'ibm_db', 'snowflake-sdk', 'pino-pretty',
] as const;

let bundling: Promise<string> | undefined;

/** The bundled file to run for a member entry (built, or found unchanged, at the first call of this process). */
export async function memberBundle(entry: MemberEntry): Promise<string> {
  bundling ??= Promise.resolve().then(() => unchangedBundle() ?? bundleMembers()).catch((err: unknown) => {
    bundling = undefined;
    throw err;
  });
  const dir = await bundling;
  return join(dir, entry.replace(/\.ts$/, '.mjs'));
}

function sourceUrls(entries: Set<string>): Plugin {
  return {
    name: 'source-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        const contents = entries.has(args.path) ? source : source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href));
        return { contents, loader: 'ts' };
      });
    },
  };
}

/** A file as the last build read it: path from the project root, size, modification time. */
type InputStamp = [path: string, size: number, mtimeMs: number];

function stampOf(path: string): InputStamp {
  const { size, mtimeMs } = statSync(join(ROOT, path));
  return [path, size, mtimeMs];
}

/** The last build's folder when it still exists and every file it was made from is as it was then; otherwise undefined. */
export function unchangedBundle(record = LAST_BUILD): string | undefined {
  try {
    const last = JSON.parse(readFileSync(record, 'utf8')) as { dir: string; inputs: InputStamp[] };
    const dir = join(MEMBER_BUNDLE_CACHE, last.dir);
    if (!existsSync(dir) || last.inputs.length === 0) return undefined;
    for (const [path, size, mtimeMs] of last.inputs) {
      const now = stampOf(path);
      if (now[1] !== size || now[2] !== mtimeMs) return undefined;
    }
    // In use again: not stale for another day.
    const now = new Date();
    utimesSync(dir, now, now);
    return dir;
  } catch {
    // No record yet, an unreadable one, or a file it names is gone: build.
    return undefined;
  }
}

/**
 * Writes down what the build in `dir` was made from (replacing the record at once: readers see the
 * old or the new). Not when a file changed after the build began: esbuild may have read it before
 * the change, and the next launcher must build again.
 */
export function recordInputs(dir: string, inputs: string[], buildStartedMs: number, record = LAST_BUILD): void {
  const paths = [...new Set([relative(ROOT, THIS_FILE), ...inputs])];
  const stamps = paths.map(stampOf);
  // With a margin: file times come from a coarser clock than Date.now().
  if (stamps.some(([, , mtimeMs]) => mtimeMs >= buildStartedMs - 2000)) return;
  const partial = `${record}.${process.pid}.partial`;
  writeFileSync(partial, JSON.stringify({ dir: relative(MEMBER_BUNDLE_CACHE, dir), inputs: stamps }));
  renameSync(partial, record);
}

async function bundleMembers(): Promise<string> {
  const entries = MEMBER_ENTRIES.map((e) => join(ROOT, e));
  const started = Date.now();
  const result = await build({
    entryPoints: entries, outbase: ROOT, outdir: OUT_ROOT, outExtension: { '.js': '.mjs' },
    bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20', external: [...OUTSIDE_THE_BUNDLE],
    // The packages' CommonJS modules call `require`; an ES module has none unless given one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    sourcemap: 'linked', sourcesContent: false, write: false, logLevel: 'silent', metafile: true,
    plugins: [sourceUrls(new Set(entries))],
  });
  // The metafile names inputs relative to the working directory.
  const inputs = Object.keys(result.metafile.inputs).map((p) => relative(ROOT, resolve(p)));
  const files = result.outputFiles.map((f) => ({ path: relative(OUT_ROOT, f.path), contents: f.contents }))
    .sort((a, b) => a.path.localeCompare(b.path));
  const hash = createHash('sha256');
  for (const f of files) hash.update(f.path).update('\0').update(f.contents).update('\0');
  const dir = join(MEMBER_BUNDLE_CACHE, hash.digest('hex').slice(0, 16));
  if (existsSync(dir)) {
    // In use again: not stale for another day.
    const now = new Date();
    utimesSync(dir, now, now);
    recordInputs(dir, inputs, started);
    return dir;
  }
  // Written beside its final name and renamed: a launcher never runs a half-written bundle.
  const partial = `${dir}.${process.pid}.partial`;
  rmSync(partial, { recursive: true, force: true });
  for (const f of files) {
    mkdirSync(dirname(join(partial, f.path)), { recursive: true });
    writeFileSync(join(partial, f.path), f.contents);
  }
  try {
    renameSync(partial, dir);
  } catch (err) {
    // Another launcher wrote the same bundle first.
    rmSync(partial, { recursive: true, force: true });
    if (!existsSync(dir)) throw err;
  }
  removeStaleBundles(dir);
  recordInputs(dir, inputs, started);
  return dir;
}

function removeStaleBundles(current: string): void {
  const now = Date.now();
  for (const name of readdirSync(MEMBER_BUNDLE_CACHE)) {
    const path = join(MEMBER_BUNDLE_CACHE, name);
    if (path === current || path === LAST_BUILD) continue;
    try {
      if (now - statSync(path).mtimeMs > STALE_BUNDLE_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // Removed meanwhile by another launcher.
    }
  }
}
