import type { Router } from 'express';
import { alertRoutes } from '../../../shared/access-log/alerts.ts';
import { authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { municipalityAlerts } from './service.ts';

/** GET /alerts and POST /alerts/run: privacy officers only (a clerk reads records, not logs). */
export const municipalityAlertRoutes = (ctx: MunicipalityContext): Router =>
  alertRoutes(municipalityAlerts(ctx), [authenticate(ctx), requireRole('privacy_officer')]);
