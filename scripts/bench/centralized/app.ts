/**
 * The centralized baseline as one Express app on the same stack as the members (createBaseApp:
 * helmet, request context, bounded JSON; problem+json errors; Sequelize on SQLite). Plain HTTP,
 * no staff session, no mTLS: the design it stands for trusts its network and its centre.
 */
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import { z } from 'zod';
import { host, loadConfig, logLevel, port } from '../../../shared/platform/config.ts';
import { errorHandler, notFoundHandler } from '../../../shared/platform/errors.ts';
import { createBaseApp } from '../../../shared/platform/http.ts';
import { defineCentralModels, type CentralModels } from './model.ts';
import { centralRoutes } from './routes.ts';

export const centralConfigSchema = z.object({
  HOST: host,
  PORT: port,
  DATABASE_PATH: z.string().min(1),
  LOG_LEVEL: logLevel,
});
export type CentralConfig = z.infer<typeof centralConfigSchema>;
export const loadCentralConfig = (env: Record<string, string | undefined> = process.env): CentralConfig => loadConfig(centralConfigSchema, env, 'centralized');

export async function prepareCentralSchema(sequelize: Sequelize): Promise<CentralModels> {
  const models = defineCentralModels(sequelize);
  await sequelize.sync();
  return models;
}

export function createCentralApp(sequelize: Sequelize, models: CentralModels, logger: Logger): Express {
  const app = createBaseApp(logger, { bodyLimit: '1mb' });
  app.get('/health', (_req, res) => { res.json({ status: 'ok', member: 'centralized' }); });
  app.use(centralRoutes(sequelize, models));
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
