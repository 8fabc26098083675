import type { Express } from 'express';
import type { Server } from 'node:https';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { serveOpenApi } from '../../shared/platform/openapi.ts';
import { createMemberServer, logRefusals, memberIdentity, memberOf, requireMember } from '../../shared/federation/member-http.ts';
import type { MunicipalityContext } from './context.ts';
import type { FederationRuntime } from './federation/connect.ts';
import { recordRequestRoutes } from './answering/routes.ts';
import { correctionFederationRoutes } from './corrections/routes.ts';
import { trailFederationRoutes } from './trail/routes.ts';
import { consentFederationRoutes } from './consents/routes.ts';
import { MEMBER_HEADS_PATH, headsForAsker } from '../../shared/access-log/heads.ts';
import { municipalityFederationDocument } from './openapi.ts';

/** The federation (mTLS) app: only members with a CA certificate reach it; only the gateway may ask. */
export function createFederationApp(ctx: MunicipalityContext, runtime: FederationRuntime): Express {
  const app = createBaseApp(ctx.logger, { bodyLimit: '8mb' });
  const identity = memberIdentity({ directory: runtime.directory, logger: ctx.logger });
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
  // This port's OpenAPI document, for members only like every route here (docs/PROTOCOL.md §2).
  app.get('/openapi.json', serveOpenApi(municipalityFederationDocument));
  // Any member may ask which heads of its own log we saw in its messages (to verify that log).
  app.get(MEMBER_HEADS_PATH, requireMember(['municipality', 'gateway', 'issuer']), async (req, res) => {
    res.json(await headsForAsker(ctx.models.WitnessedHead, memberOf(req).id, req.query));
  });
  app.use(requireMember(['gateway']));
  app.use(recordRequestRoutes(ctx, runtime.link, (req) => memberOf(req).id));
  app.use(correctionFederationRoutes(ctx, runtime.link, (req) => memberOf(req).id));
  app.use(trailFederationRoutes(ctx, runtime.link, (req) => memberOf(req).id));
  app.use(consentFederationRoutes(ctx, runtime.link, (req) => memberOf(req).id));
  app.use(notFoundHandler);
  app.use(logRefusals(ctx.logger));
  app.use(errorHandler(ctx.logger));
  return app;
}

export function createFederationServer(ctx: MunicipalityContext, runtime: FederationRuntime): Server {
  return createMemberServer(createFederationApp(ctx, runtime), runtime.credentials, { logger: ctx.logger });
}
