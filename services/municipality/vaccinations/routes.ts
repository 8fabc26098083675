/**
 * Vaccination records, tickets and the ticket review queue. Clerks alone read and write them:
 * an operator sees residents but not their doses; a privacy officer or admin sees neither.
 * Record writes require an Idempotency-Key.
 */
import { Router } from 'express';
import { inTransaction } from '../../../shared/platform/db.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { Actions } from '../access-log/actions.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { sendIdempotent } from '../idempotency/routes.ts';
import { addresseeParam } from '../residents/routes.ts';
import { requireResident } from '../residents/service.ts';
import { allProducts, productView } from './catalogue.ts';
import {
  approveReviewSchema, correctionSchema, fromTicketSchema, issueTicketSchema, listReviewsSchema, recordIdSchema, recordInputSchema,
  rejectReviewSchema, reviewIdSchema, voidSchema,
} from './schemas.ts';
import {
  approveReview, correctRecord, createRecord, issueTicket, listReviews, readImmunizations, readRecord, readRecords, readReview,
  readTickets, recordHistory, registerFromTicket, rejectReview, voidRecord, type RecordChanged,
} from './service.ts';

/** Records, tickets and reviews; `recordChanged` runs in the transaction of every correction and void. */
export function vaccinationRoutes(ctx: MunicipalityContext, recordChanged: RecordChanged): Router {
  const router = Router();
  const clerk = [authenticate(ctx), requireRole('clerk')];
  const recordParam = (value: unknown) => parseInput(recordIdSchema, value, 'recordId');

  // The catalogue holds no personal data: any signed-in staff member may read it.
  router.get('/vaccines', authenticate(ctx), (_req, res) => {
    res.json({ vaccines: allProducts().map(productView) });
  });

  router.get('/residents/:addresseeNumber/vaccinations', ...clerk, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const records = await inTransaction(ctx.sequelize, async (t) => readRecords(ctx, t, await requireResident(ctx, addresseeNumber, t), actorOf(req)));
    res.json({ addresseeNumber, records });
  });

  router.post('/residents/:addresseeNumber/vaccinations', ...clerk, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const input = parseInput(recordInputSchema, req.body);
    await sendIdempotent(ctx, req, res, { required: true }, async (t) => ({
      status: 201, subject: addresseeNumber, action: Actions.RECORD_CREATE,
      body: await createRecord(ctx, t, await requireResident(ctx, addresseeNumber, t), input, actorOf(req)),
    }));
  });

  router.get('/residents/:addresseeNumber/vaccinations/:recordId', ...clerk, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const recordId = recordParam(req.params.recordId);
    res.json(await inTransaction(ctx.sequelize, async (t) => readRecord(ctx, t, await requireResident(ctx, addresseeNumber, t), recordId, actorOf(req))));
  });

  router.get('/residents/:addresseeNumber/vaccinations/:recordId/history', ...clerk, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const recordId = recordParam(req.params.recordId);
    const versions = await inTransaction(ctx.sequelize, async (t) => recordHistory(ctx, t, await requireResident(ctx, addresseeNumber, t), recordId, actorOf(req)));
    res.json({ recordId, versions });
  });

  router.post('/residents/:addresseeNumber/vaccinations/:recordId/corrections', ...clerk, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const recordId = recordParam(req.params.recordId);
    const input = parseInput(correctionSchema, req.body);
    await sendIdempotent(ctx, req, res, { required: true }, async (t) => ({
      status: 201, subject: addresseeNumber, action: Actions.RECORD_CORRECT,
      body: await correctRecord(ctx, t, await requireResident(ctx, addresseeNumber, t), recordId, input, actorOf(req), recordChanged),
    }));
  });

  router.post('/residents/:addresseeNumber/vaccinations/:recordId/void', ...clerk, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const recordId = recordParam(req.params.recordId);
    const { reason } = parseInput(voidSchema, req.body);
    await sendIdempotent(ctx, req, res, { required: true }, async (t) => ({
      status: 201, subject: addresseeNumber, action: Actions.RECORD_VOID,
      body: await voidRecord(ctx, t, await requireResident(ctx, addresseeNumber, t), recordId, reason, actorOf(req), recordChanged),
    }));
  });

  router.get('/residents/:addresseeNumber/immunizations', ...clerk, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const bundle = await inTransaction(ctx.sequelize, async (t) => readImmunizations(ctx, t, await requireResident(ctx, addresseeNumber, t), actorOf(req)));
    res.type('application/fhir+json').send(JSON.stringify(bundle));
  });

  router.get('/residents/:addresseeNumber/tickets', ...clerk, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const tickets = await inTransaction(ctx.sequelize, async (t) => readTickets(ctx, t, await requireResident(ctx, addresseeNumber, t), actorOf(req)));
    res.json({ addresseeNumber, tickets });
  });

  router.post('/residents/:addresseeNumber/tickets', ...clerk, async (req, res) => {
    const addresseeNumber = addresseeParam(req.params.addresseeNumber);
    const input = parseInput(issueTicketSchema, req.body);
    await sendIdempotent(ctx, req, res, { required: false }, async (t) => ({
      status: 201, subject: addresseeNumber, action: Actions.TICKET_ISSUE,
      body: await issueTicket(ctx, t, await requireResident(ctx, addresseeNumber, t), input, actorOf(req)),
    }));
  });

  router.post('/vaccinations/from-ticket', ...clerk, async (req, res) => {
    const input = parseInput(fromTicketSchema, req.body);
    await sendIdempotent<object>(ctx, req, res, { required: true }, async (t) => {
      const result = await registerFromTicket(ctx, t, input, actorOf(req));
      // 202: accepted into the review queue, not onto any record.
      return result.outcome === 'registered'
        ? { status: 201, body: { outcome: result.outcome, addresseeNumber: result.addresseeNumber, record: result.record }, subject: result.subject, action: Actions.TICKET_REGISTER }
        : { status: 202, body: { outcome: result.outcome, review: result.review }, subject: result.subject, action: Actions.TICKET_REVIEW };
    });
  });

  router.get('/ticket-reviews', ...clerk, async (req, res) => {
    const query = parseInput(listReviewsSchema, req.query, 'query');
    res.json(await inTransaction(ctx.sequelize, (t) => listReviews(ctx, t, query, actorOf(req))));
  });

  router.get('/ticket-reviews/:reviewId', ...clerk, async (req, res) => {
    const id = parseInput(reviewIdSchema, req.params.reviewId, 'reviewId');
    res.json(await inTransaction(ctx.sequelize, (t) => readReview(ctx, t, id, actorOf(req))));
  });

  router.post('/ticket-reviews/:reviewId/approve', ...clerk, async (req, res) => {
    const id = parseInput(reviewIdSchema, req.params.reviewId, 'reviewId');
    const input = parseInput(approveReviewSchema, req.body);
    await sendIdempotent(ctx, req, res, { required: true }, async (t) => ({
      status: 200, subject: input.addresseeNumber, action: Actions.TICKET_REVIEW_RESOLVE,
      body: await approveReview(ctx, t, id, input, actorOf(req)),
    }));
  });

  router.post('/ticket-reviews/:reviewId/reject', ...clerk, async (req, res) => {
    const id = parseInput(reviewIdSchema, req.params.reviewId, 'reviewId');
    const { reason } = parseInput(rejectReviewSchema, req.body);
    await sendIdempotent(ctx, req, res, { required: false }, async (t) => ({
      status: 200, subject: null, action: Actions.TICKET_REVIEW_RESOLVE,
      body: await rejectReview(ctx, t, id, reason, actorOf(req)),
    }));
  });

  return router;
}
