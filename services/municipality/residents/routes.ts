/**
 * Resident routes. Roles (docs/DESIGN.md §6.4, separation of duties):
 * - clerk: registers, reads, searches and changes residents;
 * - operator: may search and read residents (to prepare move-in work and bulk queries), never write;
 * - privacy_officer and admin: no resident data at all (403) — they read logs and manage staff.
 */
import { Router } from 'express';
import { inTransaction } from '../../../shared/platform/db.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { Actions } from '../access-log/actions.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { Role } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { sendIdempotent } from '../idempotency/routes.ts';
import { addresseeNumberSchema, createResidentSchema, searchResidentsSchema, updateResidentSchema } from './schemas.ts';
import { createResident, readResident, residentHistory, searchResidents, updateResident } from './service.ts';

export const RESIDENT_READERS: Role[] = ['clerk', 'operator'];
export const RESIDENT_WRITERS: Role[] = ['clerk'];

export const addresseeParam = (value: unknown): string => parseInput(addresseeNumberSchema, value, 'addresseeNumber');

export function residentRoutes(ctx: MunicipalityContext): Router {
  const router = Router();
  const readers = [authenticate(ctx), requireRole(...RESIDENT_READERS)];
  const writers = [authenticate(ctx), requireRole(...RESIDENT_WRITERS)];

  router.post('/residents', ...writers, async (req, res) => {
    const input = parseInput(createResidentSchema, req.body);
    // The key is optional here: a retry without one is still refused as a duplicate My Number (409).
    await sendIdempotent(ctx, req, res, { required: false }, async (t) => {
      const { id: _internal, ...view } = await createResident(ctx, t, input, actorOf(req));
      return { status: 201, body: view, subject: view.addresseeNumber, action: Actions.RESIDENT_CREATE };
    });
  });

  router.get('/residents', ...readers, async (req, res) => {
    const search = parseInput(searchResidentsSchema, req.query, 'query');
    res.json(await inTransaction(ctx.sequelize, (t) => searchResidents(ctx, t, search, actorOf(req))));
  });

  router.get('/residents/:addresseeNumber', ...readers, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    res.json(await inTransaction(ctx.sequelize, (t) => readResident(ctx, t, addresseeNumber, actorOf(req))));
  });

  router.patch('/residents/:addresseeNumber', ...writers, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const input = parseInput(updateResidentSchema, req.body);
    await sendIdempotent(ctx, req, res, { required: false }, async (t) => ({
      status: 200, body: await updateResident(ctx, t, addresseeNumber, input, actorOf(req)), subject: addresseeNumber, action: Actions.RESIDENT_UPDATE,
    }));
  });

  router.get('/residents/:addresseeNumber/history', ...readers, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const history = await inTransaction(ctx.sequelize, (t) => residentHistory(ctx, t, addresseeNumber, actorOf(req)));
    res.json({ addresseeNumber, history });
  });

  return router;
}
