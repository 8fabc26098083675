import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Whether the module at `moduleUrl` (its `import.meta.url`) is the program node was started with.
 * Compared as real paths: node runs a program from its real path, while `process.argv[1]` keeps
 * the path as typed, which may pass through a symbolic link (a linked node_modules holding the
 * members' bundle) or hold characters a URL encodes.
 */
export function isMainModule(moduleUrl: string): boolean {
  const started = process.argv[1];
  if (!started) return false;
  try {
    return realpathSync(fileURLToPath(moduleUrl)) === realpathSync(started);
  } catch {
    return false;
  }
}
