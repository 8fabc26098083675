import type { Server } from 'node:https';
import { Router, type Express } from 'express';
import type { Logger } from 'pino';
import { openDatabase } from '../shared/platform/db.ts';
import { directoryFromFile } from '../shared/federation/directory.ts';
import { errorHandler, notFoundHandler } from '../shared/platform/errors.ts';
import { createBaseApp } from '../shared/platform/http.ts';
import { serveOpenApi } from '../shared/platform/openapi.ts';
import { readiness } from '../shared/platform/health.ts';
import { memberProbe } from '../shared/federation/member-probe.ts';
import { createLogger } from '../shared/platform/log.ts';
import { createMemberClient, createMemberServer, logRefusals, memberIdentity } from '../shared/federation/member-http.ts';
import { loadMemberCredentials } from '../shared/federation/pki.ts';
import { createRevocationGuard, databaseKeeper, fileRevocationSource } from '../shared/federation/revocation.ts';
import { GATEWAY_ID, type DirectoryEntry } from '../shared/federation/protocol.ts';
import { codeRoutes } from './codes/routes.ts';
import type { GatewayConfig } from './config.ts';
import type { GatewayContext } from './context.ts';
import { directoryRoutes } from './directory/routes.ts';
import { defineGatewayModels } from './models.ts';
import { prepareGatewaySchema } from './migrations/index.ts';
import { messageCapture } from './routing/capture.ts';
import { routingRoutes } from './routing/routes.ts';
import { trailRoutes } from './trail/routes.ts';
import { gatewayAuditRoutes } from './access-log/routes.ts';
import { gatewayCheckpoint } from './access-log/service.ts';
import { createGatewayStaffApp } from './access-log/staff.ts';
import { runEvery, type PeriodicTask } from '../shared/access-log/witness.ts';
import { queryBodyLimit } from './routing/schemas.ts';
import { notificationRoutes } from './notifications/routes.ts';
import { startCorrectionRelay } from './notifications/service.ts';
import { consentRevocationRoutes } from './consent-revocations/routes.ts';
import { startConsentRevocationRelay } from './consent-revocations/service.ts';
import { startGatewayAlertSchedule } from './alerts/service.ts';
import { gatewayAlertRoutes } from './alerts/routes.ts';
import { gatewayMemberDocument, gatewayStaffDocument } from './openapi.ts';
import { oprfKeyShare } from '../shared/crypto.ts';

export interface Gateway {
  ctx: GatewayContext;
  app: Express;
  /** The mTLS server (not yet listening: `main.ts` or a test listens). */
  server: Server;
  /** The privacy officers' console app (plain HTTP, 127.0.0.1), when STAFF_PORT is configured. */
  staffApp?: Express;
  /** Periodic checkpoints of the gateway's own head (runNow for one on demand). */
  checkpoints: PeriodicTask;
  close(): Promise<void>;
}

/** Builds one gateway: its credentials, directory, own database and mTLS app. */
export async function createGateway(config: GatewayConfig, logger?: Logger): Promise<Gateway> {
  const log = logger ?? createLogger({ name: GATEWAY_ID, level: config.LOG_LEVEL });
  const credentials = loadMemberCredentials(config.CERT_DIR);
  if (credentials.kind !== 'gateway') throw new Error(`CERT_DIR holds a ${credentials.kind} certificate, not the gateway's`);
  const sequelize = await openDatabase({ storage: config.DATABASE_PATH, url: config.DATABASE_URL });
  const models = defineGatewayModels(sequelize);
  await prepareGatewaySchema(sequelize);
  // The CA-signed list from REVOCATION_FILE, re-read every REVOCATION_REFRESH_SECONDS; the newest
  // accepted one is kept in the database, so neither a restart nor an older file rolls it back.
  const revocations = createRevocationGuard({
    ca: credentials.ca, source: fileRevocationSource(config.REVOCATION_FILE), logger: log,
    refreshSeconds: config.REVOCATION_REFRESH_SECONDS, graceSeconds: config.REVOCATION_GRACE_SECONDS,
  });
  await revocations.attach(databaseKeeper(sequelize));
  await revocations.refresh().catch((err: Error) => log.warn({ err: err.message, list: revocations.status() }, 'revocation list not loaded at start'));
  revocations.start();
  // The gateway verifies the entries it serves, too: it only routes to and trusts CA-certified keys.
  // DIRECTORY_FILE is re-read when its modification time changes (no restart to add a member).
  const directory = directoryFromFile(config.DIRECTORY_FILE, credentials.ca, revocations, log);
  const currentDirectory = (): Promise<DirectoryEntry[]> => directory.configured();
  await currentDirectory();
  const client = createMemberClient(credentials);
  const ctx: GatewayContext = {
    config, logger: log, sequelize, models, credentials, client, currentDirectory, directory, revocations,
    sourceLimiters: new Map(), oprf: oprfKeyShare(config.OPRF_KEY),
  };

  const relay = startCorrectionRelay(ctx);
  const revocationRelay = startConsentRevocationRelay(ctx);
  const alerts = startGatewayAlertSchedule(ctx);
  const app = createBaseApp(log, { bodyLimit: `${Math.ceil(queryBodyLimit(config.MAX_BATCH) / 1024)}kb` });
  app.use(messageCapture(config.CAPTURE_DIR));
  app.use(memberIdentity({ directory, logger: log }));
  app.get('/health', async (_req, res) => {
    await sequelize.authenticate();
    res.json({ status: 'ok', member: GATEWAY_ID, members: (await directory.entries()).length });
  });
  // The member API's OpenAPI document, for members only like every route here (docs/PROTOCOL.md §2).
  app.get('/openapi.json', serveOpenApi(gatewayMemberDocument));
  // Ready = own database; the municipalities it routes to are reported (one down fails only its own subjects).
  app.get('/ready', readiness({
    member: GATEWAY_ID, sequelize, revocations,
    peers: async () => (await directory.entries()).filter((e) => e.kind === 'municipality' && e.endpoint).map((e) => memberProbe(client, e.id, e.endpoint!)),
  }));
  app.use(directoryRoutes(ctx));
  app.use(codeRoutes(ctx));
  app.use(routingRoutes(ctx));
  app.use(trailRoutes(ctx));
  app.use(notificationRoutes(ctx, relay));
  app.use(consentRevocationRoutes(ctx, revocationRelay));
  app.use(gatewayAuditRoutes(ctx));
  app.use(notFoundHandler);
  app.use(logRefusals(log));
  app.use(errorHandler(log));
  const server = createMemberServer(app, credentials, { logger: log });
  const checkpoints = runEvery(config.CHECKPOINT_INTERVAL_SECONDS, async () => { await gatewayCheckpoint(ctx, true); }, log, 'gateway checkpoint');
  return {
    ctx,
    app,
    server,
    // The staff port's OpenAPI document names no person: public there (docs/PROTOCOL.md §2).
    staffApp: config.STAFF_PORT !== undefined
      ? createGatewayStaffApp(ctx, (sessions) => [gatewayAlertRoutes(ctx, sessions), Router().get('/openapi.json', serveOpenApi(gatewayStaffDocument))])
      : undefined,
    checkpoints,
    close: async () => {
      await checkpoints.stop();
      await revocations.stop();
      await relay.stop();
      await revocationRelay.stop();
      await alerts.stop();
      client.close();
      await sequelize.close();
    },
  };
}
