import type { Server } from 'node:https';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { defineAccessLog, protectAccessLog } from '../../shared/audit.ts';
import { openDatabase } from '../../shared/db.ts';
import { errorHandler, notFoundHandler } from '../../shared/errors.ts';
import { createBaseApp } from '../../shared/http.ts';
import { createLogger } from '../../shared/log.ts';
import { createMemberClient, createMemberServer, logRefusals, memberIdentity } from '../../shared/member-http.ts';
import { emptyRevocations, loadMemberCredentials, readRevocationsFile } from '../../shared/pki.ts';
import { ISSUER_ID } from '../../shared/protocol.ts';
import type { IssuerConfig } from './config.ts';
import type { IssuerContext } from './context.ts';
import { issuerRoutes } from './routes.ts';

export interface Issuer {
  ctx: IssuerContext;
  app: Express;
  /** The mTLS server (not yet listening: `main.ts` or a test listens). */
  server: Server;
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
  await sequelize.sync();
  await protectAccessLog(sequelize);
  const client = createMemberClient(credentials);
  const ctx: IssuerContext = { config, logger: log, sequelize, models: { AccessLog }, credentials, client, revocations };

  const app = createBaseApp(log, { bodyLimit: '4kb' });
  app.use(memberIdentity({ isRevoked: revocations.isRevoked, logger: log }));
  app.use(issuerRoutes(ctx));
  app.use(notFoundHandler);
  app.use(logRefusals(log));
  app.use(errorHandler(log));
  const server = createMemberServer(app, credentials, { isRevoked: revocations.isRevoked, logger: log });
  return {
    ctx,
    app,
    server,
    close: async () => {
      client.close();
      await sequelize.close();
    },
  };
}
