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
 */
import { build, type Plugin } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
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

/** The bundled file to run for a member entry (built at the first call of this process). */
export async function memberBundle(entry: MemberEntry): Promise<string> {
  bundling ??= bundleMembers().catch((err: unknown) => {
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

async function bundleMembers(): Promise<string> {
  const entries = MEMBER_ENTRIES.map((e) => join(ROOT, e));
  const result = await build({
    entryPoints: entries, outbase: ROOT, outdir: OUT_ROOT, outExtension: { '.js': '.mjs' },
    bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20', external: [...OUTSIDE_THE_BUNDLE],
    // The packages' CommonJS modules call `require`; an ES module has none unless given one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    sourcemap: 'linked', sourcesContent: false, write: false, logLevel: 'silent',
    plugins: [sourceUrls(new Set(entries))],
  });
  const files = result.outputFiles.map((f) => ({ path: relative(OUT_ROOT, f.path), contents: f.contents }))
    .sort((a, b) => a.path.localeCompare(b.path));
  const hash = createHash('sha256');
  for (const f of files) hash.update(f.path).update('\0').update(f.contents).update('\0');
  const dir = join(MEMBER_BUNDLE_CACHE, hash.digest('hex').slice(0, 16));
  if (existsSync(dir)) {
    // In use again: not stale for another day.
    const now = new Date();
    utimesSync(dir, now, now);
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
  return dir;
}

function removeStaleBundles(current: string): void {
  const now = Date.now();
  for (const name of readdirSync(MEMBER_BUNDLE_CACHE)) {
    const path = join(MEMBER_BUNDLE_CACHE, name);
    if (path === current) continue;
    try {
      if (now - statSync(path).mtimeMs > STALE_BUNDLE_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // Removed meanwhile by another launcher.
    }
  }
}
