import { Router } from 'express';
import { listStaff, staffAuthRoutes } from '../../../shared/staff/auth.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import type { MunicipalityContext } from '../context.ts';
import { authenticate, requireRole } from './middleware.ts';
import { createStaffSchema } from './schemas.ts';
import { createStaff, staffSessions } from './service.ts';

export function authRoutes(ctx: MunicipalityContext): Router {
  const router = Router();
  router.use(staffAuthRoutes(staffSessions(ctx)));

  router.get('/staff', authenticate(ctx), requireRole('admin'), async (_req, res) => {
    res.json({ staff: await listStaff(ctx.models.Staff) });
  });

  router.post('/staff', authenticate(ctx), requireRole('admin'), async (req, res) => {
    const staff = await createStaff(ctx, parseInput(createStaffSchema, req.body));
    res.status(201).json(staff);
  });

  return router;
}
