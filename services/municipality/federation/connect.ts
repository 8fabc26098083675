import type { Express } from 'express';
import type { Server } from 'node:https';
import { createDirectoryClient, type Directory } from '../../../shared/federation/directory.ts';
import { errorHandler, notFoundHandler } from '../../../shared/platform/errors.ts';
import { createBaseApp } from '../../../shared/platform/http.ts';
import { createMemberClient, createMemberServer, logRefusals, memberIdentity, memberOf, requireMember, type MemberClient } from '../../../shared/federation/member-http.ts';
import { loadMemberCredentials, type MemberCredentials } from '../../../shared/federation/pki.ts';
import type { MunicipalityContext } from '../context.ts';
import type { FederationLink } from './link.ts';
import { federationRoutes } from '../asking/routes.ts';
import { correctionFederationRoutes } from '../corrections/routes.ts';
import { MEMBER_HEADS_PATH, headsForAsker } from '../../../shared/access-log/heads.ts';

export interface FederationRuntime {
  link: FederationLink;
  credentials: MemberCredentials;
  directory: Directory;
  client: MemberClient;
}

/** Loads this municipality's credentials and connects to the gateway's directory (verified locally). */
export function connectFederation(ctx: MunicipalityContext, sharedDirectory?: Directory): FederationRuntime | undefined {
  const { CERT_DIR, GATEWAY_URL, ISSUER_URL, MUNICIPALITY_CODE } = ctx.config;
  if (!CERT_DIR || !GATEWAY_URL || !ISSUER_URL) return undefined;
  const credentials = loadMemberCredentials(CERT_DIR);
  if (credentials.id !== MUNICIPALITY_CODE || credentials.kind !== 'municipality') {
    throw new Error(`CERT_DIR holds the certificate of ${credentials.id} (${credentials.kind}), not of municipality ${MUNICIPALITY_CODE}`);
  }
  const client = createMemberClient(credentials);
  const directory = sharedDirectory ?? createDirectoryClient(client, GATEWAY_URL, credentials.ca);
  return {
    credentials, directory, client,
    link: {
      self: MUNICIPALITY_CODE,
      signer: credentials.signer,
      decryptionKey: credentials.decryption.key,
      http: client,
      peers: directory,
      gatewayUrl: GATEWAY_URL.replace(/\/+$/, ''),
      issuerUrl: ISSUER_URL.replace(/\/+$/, ''),
      timeoutMs: 30_000,
      trust: { ca: credentials.ca, isRevoked: (serial) => directory.isRevoked(serial) },
    },
  };
}

/** The federation (mTLS) app: only members with a CA certificate reach it; only the gateway may ask. */
export function createFederationApp(ctx: MunicipalityContext, runtime: FederationRuntime): Express {
  const app = createBaseApp(ctx.logger, { bodyLimit: '8mb' });
  const identity = memberIdentity({ isRevoked: (serial) => runtime.directory.isRevoked(serial), logger: ctx.logger });
  // The revocation list comes with the directory: load it before judging any certificate, or a
  // freshly started member would accept a revoked peer until its first lookup.
  app.use(async (_req, _res, next) => {
    await runtime.directory.entries();
    next();
  });
  app.use(identity);
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', member: ctx.config.MUNICIPALITY_CODE });
  });
  // Any member may ask which heads of its own log we saw in its messages (to verify that log).
  app.get(MEMBER_HEADS_PATH, requireMember(['municipality', 'gateway', 'issuer']), async (req, res) => {
    res.json(await headsForAsker(ctx.models.WitnessedHead, memberOf(req).id, req.query));
  });
  app.use(requireMember(['gateway']));
  app.use(federationRoutes(ctx, runtime.link, (req) => memberOf(req).id));
  app.use(correctionFederationRoutes(ctx, runtime.link, (req) => memberOf(req).id));
  app.use(notFoundHandler);
  app.use(logRefusals(ctx.logger));
  app.use(errorHandler(ctx.logger));
  return app;
}

export function createFederationServer(ctx: MunicipalityContext, runtime: FederationRuntime): Server {
  return createMemberServer(createFederationApp(ctx, runtime), runtime.credentials, {
    isRevoked: (serial) => runtime.directory.isRevoked(serial), logger: ctx.logger,
  });
}
