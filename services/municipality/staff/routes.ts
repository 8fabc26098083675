import { Router } from 'express';
import { listStaff, lockOf, staffAdminRoutes, staffAuthRoutes } from '../../../shared/staff/auth.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import type { MunicipalityContext } from '../context.ts';
import { authenticate, requireRole } from './middleware.ts';
import { createStaffSchema } from './schemas.ts';
import { createStaff, staffSessions } from './service.ts';

export function authRoutes(ctx: MunicipalityContext): Router {
  const router = Router();
  const sessions = staffSessions(ctx);
  // The console's subject filter takes addressee numbers here, and residents are found by name.
  router.use(staffAuthRoutes(sessions, () => ({ subjects: 'addressee', residentSearch: true })));

  router.get('/staff', authenticate(ctx), requireRole('admin'), async (_req, res) => {
    const staff = await listStaff(ctx.models.Staff);
    res.json({ staff: await Promise.all(staff.map(async (s) => ({ ...s, signIn: await lockOf(sessions, s.username) }))) });
  });

  router.post('/staff', authenticate(ctx), requireRole('admin'), async (req, res) => {
    const staff = await createStaff(ctx, parseInput(createStaffSchema, req.body));
    res.status(201).json(staff);
  });

  router.use(staffAdminRoutes(sessions, [authenticate(ctx), requireRole('admin')]));

  return router;
}
