import type { Server } from 'node:https';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { defineAccessLog } from '../../shared/access-log/chain.ts';
import { defineCheckpoints } from '../../shared/access-log/verify.ts';
import { defineWitnessedHeads, headsForAsker, HEADS_PATH } from '../../shared/access-log/heads.ts';
import { migrate } from '../../shared/platform/migrate.ts';
import { ISSUER_MIGRATIONS } from './migrations/index.ts';
import { checkpointAndWitness, gatewayWitness, runEvery, type PeriodicTask } from '../../shared/access-log/witness.ts';
import { createDirectoryClient } from '../../shared/federation/directory.ts';
import { openDatabase } from '../../shared/platform/db.ts';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { serveOpenApi } from '../../shared/platform/openapi.ts';
import { readiness } from '../../shared/platform/health.ts';
import { memberProbe } from '../../shared/federation/member-probe.ts';
import { createLogger } from '../../shared/platform/log.ts';
import { createMemberClient, createMemberServer, logRefusals, memberIdentity, memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { loadMemberCredentials } from '../../shared/federation/pki.ts';
import { createRevocationGuard, databaseKeeper, gatewayRevocationSource } from '../../shared/federation/revocation.ts';
import { GATEWAY_ID, ISSUER_ID } from '../../shared/federation/protocol.ts';
import type { IssuerConfig } from './config.ts';
import { oprfKeyShare } from '../../shared/crypto.ts';
import type { IssuerContext } from './context.ts';
import { issuerRoutes } from './routes.ts';
import { issuerDocument } from './openapi.ts';

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
  const sequelize = await openDatabase({ storage: config.DATABASE_PATH, url: config.DATABASE_URL });
  const AccessLog = defineAccessLog(sequelize);
  // The issuer's own checkpoints and the gateway's countersignatures of them.
  const Checkpoint = defineCheckpoints(sequelize);
  const WitnessedHead = defineWitnessedHeads(sequelize);
  await migrate(sequelize, ISSUER_MIGRATIONS);
  const client = createMemberClient(credentials);
  // The CA-signed list from the gateway, every REVOCATION_REFRESH_SECONDS, the newest kept in the database.
  const revocations = createRevocationGuard({
    ca: credentials.ca, source: gatewayRevocationSource(client, config.GATEWAY_URL, config.GATEWAY_TIMEOUT_MS), logger: log,
    refreshSeconds: config.REVOCATION_REFRESH_SECONDS, graceSeconds: config.REVOCATION_GRACE_SECONDS,
  });
  await revocations.attach(databaseKeeper(sequelize));
  // The gateway may not be up yet: the list it holds is used, and the next refresh tries again.
  await revocations.refresh().catch((err: Error) => log.warn({ err: err.message, list: revocations.status() }, 'revocation list not loaded at start'));
  revocations.start();
  // Members (who may call), their keys (the gateway's countersignatures), verified here against the CA.
  const directory = createDirectoryClient(client, config.GATEWAY_URL, credentials.ca, revocations);
  const ctx: IssuerContext = { config, logger: log, sequelize, models: { AccessLog, WitnessedHead }, credentials, client, revocations, oprf: oprfKeyShare(config.OPRF_KEY),
    memberKey: (id, kid) => directory.signingKey(id, kid) };

  // Small bodies only: a batch of 500 blinded points is about 24 kB, of 500 rekey items about 43 kB.
  const app = createBaseApp(log, { bodyLimit: '64kb' });
  app.use(memberIdentity({ directory, logger: log }));
  // This API's OpenAPI document, for members only like every route here (docs/PROTOCOL.md §2).
  app.get('/openapi.json', serveOpenApi(issuerDocument));
  // Ready = own database; the gateway (where correspondences go) is reported: municipalities retry anyway.
  app.get('/ready', readiness({ member: ISSUER_ID, sequelize, revocations, peers: [memberProbe(client, GATEWAY_ID, config.GATEWAY_URL)] }));
  app.use(issuerRoutes(ctx));
  // Heads of a member's own log the issuer saw in registrations (docs/PROTOCOL.md §3.0).
  app.get(HEADS_PATH, requireMember(['municipality', 'gateway']), async (req, res) => {
    res.json(await headsForAsker(WitnessedHead, memberOf(req).id, req.query));
  });
  app.use(notFoundHandler);
  app.use(logRefusals(log));
  app.use(errorHandler(log));
  const server = createMemberServer(app, credentials, { logger: log });
  const witness = gatewayWitness({
    client, gatewayUrl: config.GATEWAY_URL.replace(/\/+$/, ''), timeoutMs: config.GATEWAY_TIMEOUT_MS,
    gatewayKey: async () => (await directory.signingKey(GATEWAY_ID)).key,
  });
  const checkpoints = runEvery(config.CHECKPOINT_INTERVAL_SECONDS, async () => {
    await checkpointAndWitness({ sequelize, Checkpoints: Checkpoint, WitnessedHeads: WitnessedHead, signer: credentials.signer, witness, logger: log, skipUnchanged: true });
  }, log, 'issuer checkpoint');
  return {
    ctx,
    app,
    server,
    checkpoints,
    close: async () => {
      await checkpoints.stop();
      await revocations.stop();
      client.close();
      await sequelize.close();
    },
  };
}
