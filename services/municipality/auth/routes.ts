import { Router } from 'express';
import { parseInput } from '../../../shared/validation.ts';
import type { MunicipalityContext } from '../context.ts';
import { actorOf, authenticate, requireRole, SESSION_COOKIE } from './middleware.ts';
import { findStaffById, listStaff } from './model.ts';
import { createStaffSchema, loginSchema } from './schemas.ts';
import { createStaff, login } from './service.ts';
import { notFound } from '../../../shared/errors.ts';

export function authRoutes(ctx: MunicipalityContext): Router {
  const router = Router();

  router.post('/auth/login', async (req, res) => {
    const { username, password } = parseInput(loginSchema, req.body);
    const session = await login(ctx, username, password);
    res.cookie(SESSION_COOKIE, session.token, {
      httpOnly: true, sameSite: 'strict', path: '/', maxAge: session.expiresIn * 1000, secure: req.secure,
    });
    res.json(session);
  });

  router.post('/auth/logout', (_req, res) => {
    res.clearCookie(SESSION_COOKIE, { path: '/' });
    res.status(204).end();
  });

  router.get('/auth/me', authenticate(ctx), async (req, res) => {
    const staff = await findStaffById(ctx.models.Staff, actorOf(req).staffId);
    if (!staff) throw notFound('Staff member');
    res.json({ ...staff, municipality: ctx.config.MUNICIPALITY_CODE });
  });

  router.get('/staff', authenticate(ctx), requireRole('admin'), async (_req, res) => {
    res.json({ staff: await listStaff(ctx.models.Staff) });
  });

  router.post('/staff', authenticate(ctx), requireRole('admin'), async (req, res) => {
    const staff = await createStaff(ctx, parseInput(createStaffSchema, req.body));
    res.status(201).json(staff);
  });

  return router;
}
