import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';
import { csvHeader, entryCsvRow } from '../../../shared/audit-query.ts';
import { parseInput } from '../../../shared/validation.ts';
import { addresseeNumberSchema } from '../residents/schemas.ts';
import { actorOf, authenticate, requireRole } from '../auth/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { disclosureHtml, disclosureReport } from './disclosure.ts';
import { accessFilterSchema, reconcileSchema, requestIdParamSchema, seqParamSchema } from './schemas.ts';
import {
  exportEntries, makeCheckpoint, readEntries, readEntry, reconcileWithGateway, traceRequest, verifyLog, type AuditHooks,
} from './service.ts';
import { listCheckpoints } from '../../../shared/audit-verify.ts';
import { z } from 'zod';

/** The privacy officer's console: static files, no build step, same origin as the API. */
export const CONSOLE_DIR = fileURLToPath(new URL('./console/', import.meta.url));

const addresseeParam = z.object({ addresseeNumber: addresseeNumberSchema });

/**
 * The access log for privacy officers (DESIGN.md §5, §6): only the `privacy_officer` role reads,
 * verifies, exports and checkpoints the log, as a clerk reads records and not logs.
 */
export function auditRoutes(ctx: MunicipalityContext, hooks: AuditHooks = {}): Router {
  const router = Router();
  router.use('/console', express.static(CONSOLE_DIR, { index: 'index.html', dotfiles: 'ignore' }));

  router.use('/audit', authenticate(ctx), requireRole('privacy_officer'));

  router.get('/audit/entries', async (req, res) => {
    const filter = parseInput(accessFilterSchema, req.query, 'query');
    res.json(await readEntries(ctx, actorOf(req), filter));
  });

  router.get('/audit/entries/:seq', async (req, res) => {
    const { seq } = parseInput(seqParamSchema, req.params, 'seq');
    res.json(await readEntry(ctx, actorOf(req), seq));
  });

  router.get('/audit/trace/:requestId', async (req, res) => {
    const { requestId } = parseInput(requestIdParamSchema, req.params, 'requestId');
    res.json({ requestId, hops: [{ member: ctx.config.MUNICIPALITY_CODE, entries: await traceRequest(ctx, actorOf(req), requestId) }] });
  });

  router.post('/audit/verify', async (req, res) => {
    res.json(await verifyLog(ctx, actorOf(req), hooks));
  });

  router.get('/audit/export.csv', async (req, res) => {
    const { limit: _ignored, ...query } = req.query as Record<string, unknown>;
    const filter = parseInput(accessFilterSchema, query, 'query');
    const entries = await exportEntries(ctx, actorOf(req), filter);
    const day = new Date().toISOString().slice(0, 10);
    res.status(200).type('text/csv; charset=utf-8').attachment(`access-log-${ctx.config.MUNICIPALITY_CODE}-${day}.csv`);
    // A BOM lets spreadsheet software read the UTF-8 (Japanese) text correctly.
    res.write(`\uFEFF${csvHeader()}`);
    try {
      for await (const entry of entries) {
        if (!res.write(entryCsvRow(entry))) await once(res, 'drain');
      }
      res.end();
    } catch (err) {
      ctx.logger.error({ err }, 'CSV export failed mid-stream');
      res.destroy(err as Error);
    }
  });

  router.get('/audit/checkpoints', async (_req, res) => {
    const held = await listCheckpoints(ctx.models.Checkpoint);
    res.json({ checkpoints: held.map((c) => ({ id: c.id, member: c.member, seq: c.seq, hash: c.hash, at: c.at, witnessedBy: c.witnessedBy, jws: c.jws, countersignature: c.countersignature })) });
  });

  router.post('/audit/checkpoints', async (req, res) => {
    const { checkpoint, witnessed } = await makeCheckpoint(ctx, actorOf(req), hooks);
    res.status(201).json({
      checkpoint: { member: checkpoint.member, seq: checkpoint.seq, hash: checkpoint.hash, at: checkpoint.at, jws: checkpoint.jws },
      witnessedBy: witnessed?.witnessedBy ?? null,
    });
  });

  router.post('/audit/reconcile', async (req, res) => {
    const range = parseInput(reconcileSchema, req.body ?? {});
    res.json(await reconcileWithGateway(ctx, actorOf(req), range, hooks));
  });

  /*
   * The disclosure report shows one resident who accessed their data. A privacy officer produces
   * it for written requests and investigations; a clerk produces it at the counter when the
   * resident asks in person (identity checked there, as for any certificate). It holds access
   * metadata only, never records, so it does not breach the rule that a privacy officer reads no
   * records; and a clerk sees one resident's report, not the log.
   */
  const disclosureGuard = [authenticate(ctx), requireRole('privacy_officer', 'clerk')];

  router.get('/residents/:addresseeNumber/disclosure', ...disclosureGuard, async (req, res) => {
    const { addresseeNumber } = parseInput(addresseeParam, req.params, 'addresseeNumber');
    res.json(await disclosureReport(ctx, actorOf(req), addresseeNumber));
  });

  router.get('/residents/:addresseeNumber/disclosure.html', ...disclosureGuard, async (req, res) => {
    const { addresseeNumber } = parseInput(addresseeParam, req.params, 'addresseeNumber');
    const report = await disclosureReport(ctx, actorOf(req), addresseeNumber);
    res.type('text/html; charset=utf-8').send(disclosureHtml(report));
  });

  return router;
}
