import { Router } from 'express';
import { auditConsoleRoutes } from '../../../shared/access-log/console.ts';
import { authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { municipalityConsole, type AuditHooks } from './service.ts';

/**
 * The access log for privacy officers (DESIGN.md §5, §6): only the `privacy_officer` role reads,
 * verifies, exports, checkpoints and reconciles the log, as a clerk reads records and not logs.
 */
export function auditRoutes(ctx: MunicipalityContext, hooks: AuditHooks = {}): Router {
  const router = Router();
  router.use(auditConsoleRoutes(municipalityConsole(ctx, hooks), [authenticate(ctx), requireRole('privacy_officer')]));
  return router;
}
