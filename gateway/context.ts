import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { Directory } from '../shared/federation/directory.ts';
import type { MemberClient } from '../shared/federation/member-http.ts';
import type { MemberCredentials } from '../shared/federation/pki.ts';
import type { RevocationGuard } from '../shared/federation/revocation.ts';
import type { DirectoryEntry } from '../shared/federation/protocol.ts';
import type { GatewayConfig } from './config.ts';
import type { OprfKeyShare } from '../shared/crypto.ts';
import type { Limiter } from '../shared/platform/concurrency.ts';

/**
 * The gateway's tables. Each folder's model.ts adds the tables it owns (a `declare module` block),
 * so this file, below every folder, imports none of them; models.ts defines them all.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface GatewayModels {}

/**
 * Everything one gateway instance needs, built by `createGateway` and passed down. Nothing is
 * module-level: tests run a gateway, restart it on the same database, and run another beside it.
 */
export interface GatewayContext {
  config: GatewayConfig;
  logger: Logger;
  sequelize: Sequelize;
  models: GatewayModels;
  credentials: MemberCredentials;
  client: MemberClient;
  /** The entries as served to members (they verify them themselves); re-read when the file changes. */
  currentDirectory(): Promise<DirectoryEntry[]>;
  /** The same entries, verified by the gateway against the CA, for its own use. */
  directory: Directory;
  /** The CA-signed revocation list the gateway holds (from REVOCATION_FILE) and relays to members. */
  revocations: RevocationGuard;
  /** One concurrency limiter per source municipality, created on first use. */
  sourceLimiters: Map<string, Limiter>;
  /** The gateway's share k_G of the code derivation's OPRF key, from OPRF_KEY (docs/DESIGN.md §3.4). */
  oprf: OprfKeyShare;
}
