import { Router } from 'express';
import type { Sequelize } from 'sequelize';
import { parseInput } from '../../../shared/platform/validation.ts';
import type { CentralModels } from './model.ts';
import { centralQuerySchema } from './schemas.ts';
import { retrieveHistories } from './service.ts';

export function centralRoutes(sequelize: Sequelize, models: CentralModels): Router {
  const router = Router();
  router.post('/histories', async (req, res) => {
    const input = parseInput(centralQuerySchema, req.body);
    const results = await retrieveHistories(sequelize, models, input);
    res.json({ results: results.map((r) => ({ ref: r.ref, status: r.status, recordCount: r.recordCount, imported: r.imported })) });
  });
  return router;
}
