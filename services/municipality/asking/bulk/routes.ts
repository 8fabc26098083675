/**
 * Bulk move-in queries for clerks and operators: submit (202 + job id), watch progress, list the
 * subjects' outcomes, retry the unavailable ones now. Without a federation link they answer 503.
 */
import { Router } from 'express';
import { inTransaction } from '../../../../shared/platform/db.ts';
import { parseInput } from '../../../../shared/platform/validation.ts';
import { Actions } from '../../access-log/actions.ts';
import { actorOf, authenticate, requireRole } from '../../staff/middleware.ts';
import type { MunicipalityContext } from '../../context.ts';
import { sendIdempotent } from '../../idempotency/routes.ts';
import { requireLink, type FederationLink } from '../../federation/link.ts';
import { bulkQuerySchema, jobIdSchema, listSubjectsSchema } from './schemas.ts';
import { bulkJobProgress, createBulkJob, readJobSubjects, recentBulkJobs, retryBulkJob } from './service.ts';
import { requireKnownSources } from '../service.ts';

export const BULK_PATH = '/exchange/bulk-queries';

/** `onWork` wakes the runner (a new job, a retry) instead of waiting for its next tick. */
export function bulkQueryRoutes(ctx: MunicipalityContext, fed: FederationLink | undefined, onWork: () => void): Router {
  const router = Router();
  const staff = [authenticate(ctx), requireRole('clerk', 'operator')];
  const jobId = (value: unknown): string => parseInput(jobIdSchema, value, 'id');

  router.post(BULK_PATH, ...staff, async (req, res) => {
    const input = parseInput(bulkQuerySchema, req.body);
    await requireKnownSources(requireLink(fed), input.subjects ?? []);
    // A client that retries the POST with the same Idempotency-Key gets the same job, not a second one.
    await sendIdempotent(ctx, req, res, { required: false }, async (t) => {
      const job = await createBulkJob(ctx, t, input, actorOf(req));
      res.setHeader('Location', `${BULK_PATH}/${job.id}`);
      return { status: 202, body: job, subject: null, action: Actions.BULK_CREATE };
    });
    onWork();
  });

  router.get(BULK_PATH, ...staff, async (_req, res) => {
    res.json({ jobs: await recentBulkJobs(ctx) });
  });

  router.get(`${BULK_PATH}/:id`, ...staff, async (req, res) => {
    res.json(await bulkJobProgress(ctx, jobId(req.params.id)));
  });

  router.get(`${BULK_PATH}/:id/subjects`, ...staff, async (req, res) => {
    const id = jobId(req.params.id);
    const query = parseInput(listSubjectsSchema, req.query, 'query');
    res.json(await inTransaction(ctx.sequelize, (t) => readJobSubjects(ctx, t, id, query, actorOf(req))));
  });

  router.post(`${BULK_PATH}/:id/retry`, ...staff, async (req, res) => {
    const id = jobId(req.params.id);
    requireLink(fed);
    const result = await inTransaction(ctx.sequelize, (t) => retryBulkJob(ctx, t, id, actorOf(req)));
    onWork();
    res.status(202).json(result);
  });

  return router;
}
