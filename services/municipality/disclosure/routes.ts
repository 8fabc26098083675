import { Router } from 'express';
import { z } from 'zod';
import { parseInput } from '../../../shared/platform/validation.ts';
import { addresseeNumberSchema } from '../residents/schemas.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import type { MunicipalityContext } from '../context.ts';
import { disclosureHtml, disclosureReport } from './report.ts';

const addresseeParam = z.object({ addresseeNumber: addresseeNumberSchema });

/** The resident's disclosure report (情報提供等記録, DESIGN.md flow 8), as JSON and as a printable page. */
export function disclosureRoutes(ctx: MunicipalityContext): Router {
  const router = Router();
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
