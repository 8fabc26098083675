import type { Express } from 'express';
import type { Server } from 'node:https';
import type { Logger } from 'pino';
import { errorHandler, notFoundHandler } from '../../shared/platform/errors.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { openDatabase } from '../../shared/platform/db.ts';
import { createLogger } from '../../shared/platform/log.ts';
import { serveOpenApi } from '../../shared/platform/openapi.ts';
import type { Directory } from '../../shared/federation/directory.ts';
import { databaseKeeper } from '../../shared/federation/revocation.ts';
import type { MunicipalityConfig } from './config.ts';
import type { MunicipalityContext } from './context.ts';
import { defineModels, prepareSchema } from './models.ts';
import { authRoutes } from './staff/routes.ts';
import { auditRoutes } from './access-log/routes.ts';
import { disclosureRoutes } from './disclosure/routes.ts';
import { certificateRoutes } from './certificates/routes.ts';
import { federationAuditHooks } from './access-log/federation.ts';
import { startCheckpointSchedule } from './access-log/service.ts';
import { residentRoutes } from './residents/routes.ts';
import { residentSubjectsNamed } from './residents/service.ts';
import { vaccinationRoutes } from './vaccinations/routes.ts';
import { consentRoutes } from './consents/routes.ts';
import { startRevocationOutbox } from './consents/revocations.ts';
import { queryRoutes } from './asking/routes.ts';
import { moveRoutes } from './moves/routes.ts';
import { exceptionRoutes } from './exceptions/routes.ts';
import { registrationRoutes } from './codes/routes.ts';
import { connectFederation, type FederationRuntime } from './federation/connect.ts';
import { createFederationServer } from './federation-app.ts';
import { startRegistrationWorker } from './codes/service.ts';
import { bulkQueryRoutes } from './asking/bulk/routes.ts';
import { startBulkRunner } from './asking/bulk/runner.ts';
import { settleInterruptedQueries } from './asking/interrupted.ts';
import { healthRoutes } from './health/routes.ts';
import { correctionRoutes } from './corrections/routes.ts';
import { enqueueCorrectionNotices, startCorrectionOutbox } from './corrections/outbox.ts';
import { municipalityAlertRoutes } from './alerts/routes.ts';
import { startAlertSchedule } from './alerts/service.ts';
import { noticeRoutes } from './notices/routes.ts';
import { retentionRoutes } from './retention/routes.ts';
import { residentPageRoutes } from './resident-page/routes.ts';
import { startRetentionSchedule } from './retention/service.ts';
import { logNoticeSender, startNoticeWorker, type NoticeSender } from './notices/service.ts';
import { FHIR_BASE, fhirRoutes } from './fhir/routes.ts';
import { fhirErrorHandler } from './fhir/outcomes.ts';
import { startExportRunner, type ExportRunner } from './fhir/export/service.ts';
import { municipalityStaffDocument } from './openapi.ts';

/** The staff-facing HTTP API of one municipality. */
export function createStaffApp(
  ctx: MunicipalityContext, federation?: FederationRuntime, onResidentCreated: () => void = () => {}, onBulkWork: () => void = () => {},
  noticeSender: NoticeSender = logNoticeSender(ctx.logger), exports: ExportRunner = startExportRunner(ctx),
): Express {
  // The staff port is plain HTTP behind the municipality's own network (docker-compose.yml).
  const app = createBaseApp(ctx.logger, { transport: 'plain-http' });
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', municipality: ctx.config.MUNICIPALITY_CODE, name: ctx.config.MUNICIPALITY_NAME, federation: Boolean(federation) });
  });
  app.use(healthRoutes(ctx, federation));
  // The staff API's OpenAPI document names no person: public, like /health (docs/PROTOCOL.md §2).
  app.get('/openapi.json', serveOpenApi(municipalityStaffDocument));
  // The FHIR API before the staff routers: under its base every answer is FHIR, and every error an
  // OperationOutcome (FHIR R4 http.html#errors) wherever it was raised: the common front's errors
  // (bad target, compressed or non-JSON body, malformed JSON) skip the router but meet this handler.
  app.use(FHIR_BASE, fhirRoutes(ctx, exports), fhirErrorHandler(ctx.logger));
  app.use(authRoutes(ctx));
  app.use(auditRoutes(ctx, { ...federationAuditHooks(ctx, federation), residentSubjects: (text, t) => residentSubjectsNamed(ctx, text, t) }));
  app.use(disclosureRoutes(ctx));
  app.use(residentRoutes(ctx));
  app.use(vaccinationRoutes(ctx, enqueueCorrectionNotices));
  app.use(certificateRoutes(ctx));
  app.use(consentRoutes(ctx, federation?.link));
  app.use(moveRoutes(ctx, federation?.link, onResidentCreated));
  app.use(queryRoutes(ctx, federation?.link));
  app.use(exceptionRoutes(ctx));
  app.use(registrationRoutes(ctx, federation?.link));
  app.use(bulkQueryRoutes(ctx, federation?.link, onBulkWork));
  app.use(correctionRoutes(ctx, federation?.link));
  app.use(municipalityAlertRoutes(ctx));
  app.use(noticeRoutes(ctx, noticeSender));
  app.use(retentionRoutes(ctx));
  // Municipalities by name for the resident page, from the verified directory (codes alone without a federation).
  const municipalityNames = async () => Object.fromEntries((await federation?.directory.entries() ?? [])
    .filter((e) => e.kind === 'municipality').map((e) => [e.id, e.name]));
  app.use(residentPageRoutes(ctx, federation?.link, municipalityNames));
  app.use(notFoundHandler);
  app.use(errorHandler(ctx.logger));
  return app;
}

export interface Municipality {
  ctx: MunicipalityContext;
  staffApp: Express;
  /** The mTLS server for the gateway's record requests; absent when not federated. */
  federationServer?: Server;
  federation?: FederationRuntime;
  close(): Promise<void>;
}

/** Opens this municipality's own database and builds its apps. `main.ts` alone listens. */
export async function createMunicipality(
  config: MunicipalityConfig, logger?: Logger,
  // Host mode (many instances in one process) verifies the directory once for all of them, and may
  // poll the outboxes less often: new work still kicks them at once; the tick only finds retries.
  options: { directory?: Directory; noticeSender?: NoticeSender; outboxPollSeconds?: number; registrationConcurrency?: number } = {},
): Promise<Municipality> {
  const log = logger ?? createLogger({ name: `municipality-${config.MUNICIPALITY_CODE}`, level: config.LOG_LEVEL });
  const sequelize = await openDatabase({ storage: config.DATABASE_PATH, url: config.DATABASE_URL });
  const models = defineModels(sequelize);
  await prepareSchema(sequelize);
  const ctx: MunicipalityContext = { config, sequelize, models, logger: log };
  // Before any worker starts: no clerk waits on a query the last stop left half done.
  await settleInterruptedQueries(ctx);
  const federation = connectFederation(ctx, options.directory);
  const revocations = federation?.directory.revocations;
  if (revocations) {
    // The newest list this municipality accepted survives a restart (an older one is then refused).
    await revocations.attach(databaseKeeper(sequelize));
    if (federation.ownsDirectory) {
      await revocations.refresh().catch((err: Error) => log.warn({ err: err.message, list: revocations.status() }, 'revocation list not loaded at start'));
      revocations.start();
    }
  }
  const poll = options.outboxPollSeconds;
  const registrations = federation ? startRegistrationWorker(ctx, federation.link, poll ? poll * 1000 : undefined, options.registrationConcurrency) : undefined;
  const checkpoints = startCheckpointSchedule(ctx, federationAuditHooks(ctx, federation), config.CHECKPOINT_INTERVAL_SECONDS);
  const bulk = federation ? startBulkRunner(ctx, federation.link, poll ? poll * 1000 : undefined) : undefined;
  const corrections = federation ? startCorrectionOutbox(ctx, federation.link, poll) : undefined;
  const revocationOutbox = federation ? startRevocationOutbox(ctx, federation.link, poll) : undefined;
  // A revocation committed by any path (clerk, resident) wakes its outbox at once (docs/DESIGN.md §4.4).
  if (revocationOutbox) ctx.wake = { ...ctx.wake, consentRevocations: () => void revocationOutbox.runNow() };
  const alerts = startAlertSchedule(ctx);
  const noticeSender = options.noticeSender ?? logNoticeSender(log);
  const notices = startNoticeWorker(ctx, noticeSender);
  const exports = startExportRunner(ctx);
  const retention = startRetentionSchedule(ctx);
  return {
    ctx,
    federation,
    staffApp: createStaffApp(ctx, federation, () => registrations?.kick(), () => bulk?.kick(), noticeSender, exports),
    federationServer: federation ? createFederationServer(ctx, federation) : undefined,
    async close() {
      if (federation?.ownsDirectory) await revocations?.stop();
      await checkpoints?.stop();
      await bulk?.stop();
      await corrections?.stop();
      await revocationOutbox?.stop();
      await alerts.stop();
      await notices.stop();
      await exports.stop();
      await retention.stop();
      await registrations?.stop();
      federation?.client.close();
      await sequelize.close();
    },
  };
}
