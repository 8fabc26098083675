import type { Server } from 'node:https';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { defineAccessLog } from '../../shared/access-log/chain.ts';
import { defineCheckpoints } from '../../shared/access-log/verify.ts';
import { migrate } from '../../shared/platform/migrate.ts';
import { ISSUER_MIGRATIONS } from './migrations/index.ts';
import { checkpointAndWitness, gatewayWitness, runEvery, type PeriodicTask } from '../../shared/access-log/witness.ts';
import { createDirectoryClient } from '../../shared/federation/directory.ts';
import { openDatabase } from '../../shared/platform/db.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { readiness } from '../../shared/platform/health.ts';
import { memberProbe } from '../../shared/federation/member-probe.ts';
import { createLogger } from '../../shared/platform/log.ts';
import { createMemberClient, createMemberServer, logRefusals, memberIdentity } from '../../shared/federation/member-http.ts';
import { emptyRevocations, loadMemberCredentials, readRevocationsFile } from '../../shared/federation/pki.ts';
import { GATEWAY_ID, ISSUER_ID } from '../../shared/federation/protocol.ts';
import type { IssuerConfig } from './config.ts';
import type { IssuerContext } from './context.ts';
import { issuerRoutes } from './routes.ts';

export interface Issuer {
  ctx: IssuerContext;
  app: Express;
  /** The mTLS server (not yet listening: `main.ts` or a test listens). */
  server: Server;
  /** Periodic checkpoints of the issuer's log, witnessed by the gateway (runNow for one on demand). */
  checkpoints: PeriodicTask;
  close(): Promise<void>;
}

/** Builds one issuer: its credentials, its own access-log database, its mTLS app. */
export async function createIssuer(config: IssuerConfig, logger?: Logger): Promise<Issuer> {
  const log = logger ?? createLogger({ name: ISSUER_ID, level: config.LOG_LEVEL });
  const credentials = loadMemberCredentials(config.CERT_DIR);
  if (credentials.kind !== 'issuer') throw new Error(`CERT_DIR holds a ${credentials.kind} certificate, not the issuer's`);
  const revocations = config.REVOCATION_FILE ? await readRevocationsFile(config.REVOCATION_FILE, credentials.ca) : emptyRevocations();
  const sequelize = await openDatabase({ storage: config.DATABASE_PATH, url: config.DATABASE_URL });
  const AccessLog = defineAccessLog(sequelize);
  // The issuer's own checkpoints and the gateway's countersignatures of them.
  const Checkpoint = defineCheckpoints(sequelize);
  await migrate(sequelize, ISSUER_MIGRATIONS);
  const client = createMemberClient(credentials);
  const ctx: IssuerContext = { config, logger: log, sequelize, models: { AccessLog }, credentials, client, revocations };

  // Small bodies only: a batch of MAX_CODES_PER_BATCH My Numbers is about 8 kB.
  const app = createBaseApp(log, { bodyLimit: '16kb' });
  app.use(memberIdentity({ isRevoked: revocations.isRevoked, logger: log }));
  // Ready = own database; the gateway (where correspondences go) is reported: municipalities retry anyway.
  app.get('/ready', readiness({ member: ISSUER_ID, sequelize, peers: [memberProbe(client, GATEWAY_ID, config.GATEWAY_URL)] }));
  app.use(issuerRoutes(ctx));
  app.use(notFoundHandler);
  app.use(logRefusals(log));
  app.use(errorHandler(log));
  const server = createMemberServer(app, credentials, { isRevoked: revocations.isRevoked, logger: log });
  // The gateway's key for its countersignatures comes from the directory, verified here against the CA.
  const directory = createDirectoryClient(client, config.GATEWAY_URL, credentials.ca);
  const witness = gatewayWitness({
    client, gatewayUrl: config.GATEWAY_URL.replace(/\/+$/, ''), timeoutMs: config.GATEWAY_TIMEOUT_MS,
    gatewayKey: async () => (await directory.signingKey(GATEWAY_ID)).key,
  });
  const checkpoints = runEvery(config.CHECKPOINT_INTERVAL_SECONDS, async () => {
    await checkpointAndWitness({ sequelize, Checkpoints: Checkpoint, signer: credentials.signer, witness, logger: log, skipUnchanged: true });
  }, log, 'issuer checkpoint');
  return {
    ctx,
    app,
    server,
    checkpoints,
    close: async () => {
      await checkpoints.stop();
      client.close();
      await sequelize.close();
    },
  };
}
