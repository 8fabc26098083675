import type { Express } from 'express';
import type { Server } from 'node:https';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { createMemberServer, logRefusals, memberIdentity, memberOf, requireMember } from '../../shared/federation/member-http.ts';
import type { MunicipalityContext } from './context.ts';
import type { FederationRuntime } from './federation/connect.ts';
import { recordRequestRoutes } from './answering/routes.ts';
import { correctionFederationRoutes } from './corrections/routes.ts';

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
  app.use(requireMember(['gateway']));
  app.use(recordRequestRoutes(ctx, runtime.link, (req) => memberOf(req).id));
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
