import type { Express } from 'express';
import type { Logger } from 'pino';
import { errorHandler, notFoundHandler } from '../../shared/errors.ts';
import { createBaseApp } from '../../shared/http.ts';
import { openDatabase } from '../../shared/db.ts';
import { createLogger } from '../../shared/log.ts';
import type { MunicipalityConfig } from './config.ts';
import type { MunicipalityContext } from './context.ts';
import { defineModels, prepareSchema } from './models.ts';
import { authRoutes } from './auth/routes.ts';
import { residentRoutes } from './residents/routes.ts';
import { vaccinationRoutes } from './vaccinations/routes.ts';

/** The staff-facing HTTP API of one municipality. */
export function createStaffApp(ctx: MunicipalityContext): Express {
  const app = createBaseApp(ctx.logger);
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', municipality: ctx.config.MUNICIPALITY_CODE, name: ctx.config.MUNICIPALITY_NAME });
  });
  app.use(authRoutes(ctx));
  app.use(residentRoutes(ctx));
  app.use(vaccinationRoutes(ctx));
  app.use(notFoundHandler);
  app.use(errorHandler(ctx.logger));
  return app;
}

export interface Municipality {
  ctx: MunicipalityContext;
  staffApp: Express;
  close(): Promise<void>;
}

/** Opens this municipality's own database and builds its apps. `main.ts` alone listens. */
export async function createMunicipality(config: MunicipalityConfig, logger?: Logger): Promise<Municipality> {
  const log = logger ?? createLogger({ name: `municipality-${config.MUNICIPALITY_CODE}`, level: config.LOG_LEVEL });
  const sequelize = await openDatabase({ storage: config.DATABASE_PATH, url: config.DATABASE_URL });
  const models = defineModels(sequelize);
  await prepareSchema(sequelize);
  const ctx: MunicipalityContext = { config, sequelize, models, logger: log };
  return {
    ctx,
    staffApp: createStaffApp(ctx),
    close: () => sequelize.close(),
  };
}
