/**
 * The member-side view of the federation directory. The gateway serves the directory, but a
 * member trusts no entry until it has checked both certificates against the federation CA
 * itself (chain, validity, CN == id, OU == kind, key usage, not revoked): the gateway could
 * otherwise swap a member's key for one it holds and read or forge that member's messages.
 */
import type { KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import type { Logger } from 'pino';
import { AppError } from '../platform/errors.ts';
import type { MemberClient } from './member-client.ts';
import { readDirectoryFile, verifyMemberCertificate, type MemberKind } from './pki.ts';
import { createRevocationGuard, gatewayRevocationSource, type RevocationGuard } from './revocation.ts';
import { directoryEntrySchema, GATEWAY_ID, type DirectoryEntry } from './protocol.ts';

export interface PublicKeyRef {
  key: KeyObject;
  kid: string;
}

/** A directory entry whose certificates passed verification. */
export interface VerifiedEntry {
  id: string;
  kind: MemberKind;
  name: string;
  endpoint?: string;
  signing: PublicKeyRef & { serial: string; notAfter: Date };
  encryption: PublicKeyRef & { serial: string; notAfter: Date };
}

export interface RejectedEntry {
  id: string;
  field: string;
  rule: string;
}

export interface Directory {
  /**
   * The entry of member `id` if its signing (and TLS) certificate is the one with `serial`, else
   * undefined: how a server tells a member from a holder of some other CA certificate. An unknown
   * id or serial refreshes the directory at most once per MEMBER_REFRESH_MS.
   */
  member(id: string, serial: string): Promise<VerifiedEntry | undefined>;
  /** The verified signing key of a member; with `kid`, the key must be that one (refreshes once if not). */
  signingKey(id: string, kid?: string): Promise<PublicKeyRef>;
  encryptionKey(id: string): Promise<PublicKeyRef>;
  endpoint(id: string): Promise<string>;
  entry(id: string): Promise<VerifiedEntry>;
  /** Every verified entry. */
  entries(): Promise<VerifiedEntry[]>;
  /** Entries refused at the last load, with the rule each broke. */
  rejected(): RejectedEntry[];
  isRevoked(serial: string): boolean;
  /** The revocation list this directory is judged by (held, refreshed and kept by its guard). */
  revocations: RevocationGuard;
  refresh(): Promise<void>;
}

/** Least time between two directory refreshes caused by an unknown peer (a non-member cannot make us fetch per request). */
export const MEMBER_REFRESH_MS = 5000;

export const unknownMember = (id: string, field = 'member') =>
  new AppError(400, 'unknown-member', 'Unknown federation member', { field, rule: `must be a member of the federation directory (${id} is not)` });

/** Verifies each entry; entries that fail are dropped and reported, never trusted. */
export function verifyEntries(raw: unknown, caPem: string, isRevoked: (serial: string) => boolean, at = new Date()): { entries: Map<string, VerifiedEntry>; rejected: RejectedEntry[] } {
  const entries = new Map<string, VerifiedEntry>();
  const rejected: RejectedEntry[] = [];
  if (!Array.isArray(raw)) {
    throw new AppError(502, 'invalid-directory', 'Directory malformed', { field: 'directory', rule: 'must be an array of entries' });
  }
  for (const [index, item] of raw.entries()) {
    const parsed = directoryEntrySchema.safeParse(item);
    const id = parsed.success ? parsed.data.id : String((item as { id?: unknown })?.id ?? index);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      rejected.push({ id, field: issue?.path.join('.') || 'entry', rule: issue?.message ?? 'invalid' });
      continue;
    }
    const e = parsed.data;
    if (entries.has(e.id)) {
      // Two entries for one id: trust neither, so the gateway cannot shadow a member.
      entries.delete(e.id);
      rejected.push({ id: e.id, field: 'id', rule: 'must be unique' });
      continue;
    }
    try {
      const common = { expectedId: e.id, expectedKind: e.kind, isRevoked, at };
      const signing = verifyMemberCertificate(e.signingCertificate, caPem, { ...common, usage: 'signing', field: 'signingCertificate' });
      const encryption = verifyMemberCertificate(e.encryptionCertificate, caPem, { ...common, usage: 'encryption', field: 'encryptionCertificate' });
      entries.set(e.id, {
        id: e.id,
        kind: e.kind,
        name: e.name,
        ...(e.endpoint ? { endpoint: e.endpoint.replace(/\/+$/, '') } : {}),
        signing: { key: signing.publicKey, kid: signing.kid, serial: signing.serial, notAfter: signing.notAfter },
        encryption: { key: encryption.publicKey, kid: encryption.kid, serial: encryption.serial, notAfter: encryption.notAfter },
      });
    } catch (err) {
      const extra = err instanceof AppError ? err.extra : {};
      rejected.push({ id: e.id, field: String(extra.field ?? 'certificate'), rule: String(extra.rule ?? (err as Error).message) });
    }
  }
  return { entries, rejected };
}

type Loader = () => Promise<unknown>;

interface SourceOptions {
  /** True when the source has changed since the last load (a file's mtime): reload before answering. */
  changed?: () => boolean;
  /** Where refused entries are reported after each load. */
  logger?: Logger;
}

function directoryFrom(caPem: string, load: Loader, guard: RevocationGuard, source: SourceOptions = {}): Directory {
  // Per instance, never module-level: several members may live in one process.
  let raw: unknown = [];
  let entries = new Map<string, VerifiedEntry>();
  let rejected: RejectedEntry[] = [];
  /** The list number the entries were verified with: a new list re-verifies them. */
  let verifiedWith: number | undefined;
  let loaded: Promise<void> | undefined;
  let inflight: Promise<void> | undefined;
  let lastMemberRefresh = 0;

  function verify(): void {
    const number = guard.current()?.number;
    const verified = verifyEntries(raw, caPem, guard.isRevoked);
    entries = verified.entries;
    rejected = verified.rejected;
    verifiedWith = number;
  }

  function current(): Map<string, VerifiedEntry> {
    if (guard.current()?.number !== verifiedWith) verify();
    return entries;
  }

  function reload(): Promise<void> {
    // Concurrent callers share one fetch.
    inflight ??= (async () => {
      try {
        if (!guard.current()) await guard.refresh().catch(() => undefined);
        raw = await load();
        verify();
        for (const bad of rejected) source.logger?.warn({ peer: bad.id, field: bad.field, rule: bad.rule }, 'directory entry refused');
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  }

  async function ensureLoaded(): Promise<void> {
    loaded ??= reload().catch((err) => {
      loaded = undefined;
      throw err;
    });
    await loaded;
    // A changed source is read before anything is judged by it, throttle or not: it is local and cheap.
    if (source.changed?.()) await reload();
  }

  /** Unknown ids trigger one refresh: a member may have joined since the last load. */
  async function lookup(id: string): Promise<VerifiedEntry> {
    await ensureLoaded();
    // Keys and endpoints are trusted only under a list that is itself still trusted (fail closed).
    guard.assertFresh();
    let found = current().get(id);
    if (!found) {
      await reload();
      found = current().get(id);
    }
    if (!found) throw unknownMember(id);
    return found;
  }

  return {
    async member(id, serial) {
      await ensureLoaded();
      const matches = (e: VerifiedEntry | undefined) => e?.signing.serial === serial;
      let found = current().get(id);
      if (!matches(found) && Date.now() - lastMemberRefresh >= MEMBER_REFRESH_MS) {
        lastMemberRefresh = Date.now();
        await reload();
        found = current().get(id);
      }
      return matches(found) ? found : undefined;
    },
    async signingKey(id, kid) {
      let found = await lookup(id);
      if (kid !== undefined && found.signing.kid !== kid) {
        // The member may have renewed its certificate since our last load.
        await reload();
        found = await lookup(id);
        if (found.signing.kid !== kid) {
          throw new AppError(401, 'invalid-signature', 'Message signed with an unknown key', { field: 'kid', rule: `must be the kid of ${id}'s current signing certificate` });
        }
      }
      return { key: found.signing.key, kid: found.signing.kid };
    },
    async encryptionKey(id) {
      const found = await lookup(id);
      return { key: found.encryption.key, kid: found.encryption.kid };
    },
    async endpoint(id) {
      const found = await lookup(id);
      if (!found.endpoint) throw new AppError(400, 'unknown-member', 'Member has no endpoint', { field: 'member', rule: `${id} answers no requests (no endpoint in the directory)` });
      return found.endpoint;
    },
    entry: lookup,
    async entries() {
      await ensureLoaded();
      return [...current().values()];
    },
    rejected: () => {
      current();
      return rejected;
    },
    isRevoked: (serial) => guard.isRevoked(serial),
    revocations: guard,
    refresh: reload,
  };
}

/**
 * The directory as a member sees it: fetched from GET {gateway}/directory over mTLS (the peer
 * must be the gateway). Revocations come from `revocations` (a member's own guard, refreshed on
 * its schedule and kept in its database), or else from a guard that asks the gateway's
 * GET /revocations when the directory loads (tools and tests). Every entry is verified here, not
 * trusted from the gateway.
 */
export function createDirectoryClient(client: MemberClient, gatewayUrl: string, caPem: string, revocations?: RevocationGuard): Directory {
  const base = gatewayUrl.replace(/\/+$/, '');
  const guard = revocations ?? createRevocationGuard({ ca: caPem, source: gatewayRevocationSource(client, base) });
  return directoryFrom(caPem, async () => {
    const res = await client.getJson(`${base}/directory`, { expectPeer: GATEWAY_ID });
    if (res.status !== 200) {
      throw new AppError(502, 'invalid-directory', 'Directory unavailable', { field: 'directory', rule: `gateway answered ${res.status}` });
    }
    return res.body;
  }, guard);
}

/** The same view from entries at hand (the gateway's own directory file, tests). */
export function directoryFromEntries(entries: DirectoryEntry[] | (() => unknown), caPem: string, revocations: RevocationGuard): Directory {
  return directoryFrom(caPem, async () => (typeof entries === 'function' ? entries() : entries), revocations);
}

/**
 * The same view from a directory.json file (the gateway's DIRECTORY_FILE), re-read whenever its
 * modification time changes, so whoever runs the federation may add a member, renew a
 * certificate or fix an entry without a restart, and no member is judged by an older file.
 * `configured()` is the file as written (what the gateway serves; members verify it themselves).
 */
export function directoryFromFile(path: string, caPem: string, revocations: RevocationGuard, logger?: Logger): Directory & { configured(): Promise<DirectoryEntry[]> } {
  let seen = -1;
  let configured: DirectoryEntry[] = [];
  const directory = directoryFrom(caPem, async () => {
    const mtime = statSync(path).mtimeMs;
    configured = readDirectoryFile(path);
    seen = mtime;
    return configured;
  }, revocations, { changed: () => statSync(path).mtimeMs !== seen, logger });
  return {
    ...directory,
    async configured() {
      await directory.entries();
      return configured;
    },
  };
}
