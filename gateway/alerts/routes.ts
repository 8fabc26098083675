import type { Router } from 'express';
import { alertRoutes } from '../../shared/access-log/alerts.ts';
import { authenticateSession, requireRole, type StaffSessions } from '../../shared/staff/auth.ts';
import type { GatewayContext } from '../context.ts';
import { gatewayAlerts } from './service.ts';

/** GET /alerts and POST /alerts/run on the gateway's staff port: its privacy officers only. */
export const gatewayAlertRoutes = (ctx: GatewayContext, sessions: StaffSessions): Router =>
  alertRoutes(gatewayAlerts(ctx), [authenticateSession(sessions), requireRole('privacy_officer')]);
