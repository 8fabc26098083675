/**
 * Registration of residents' codes (flow 1): the only place a My Number leaves this municipality,
 * once, to the issuer. Every resident with codeStatus `pending` is due (the residents table is the
 * outbox), so a resident is saved even when the issuer or gateway is down, and gets its code when
 * they return. Failures back off per resident.
 */
import { QueryTypes } from 'sequelize';
import { mapWithLimit } from '../../../shared/concurrency.ts';
import { codeSchema } from '../../../shared/protocol.ts';
import type { MunicipalityContext } from '../context.ts';
import { readMyNumber } from '../residents/service.ts';
import type { FederationLink } from './federation.ts';

import { backoffSeconds } from '../../../shared/backoff.ts';

export interface RegistrationRun {
  issued: number;
  failed: number;
  pending: number;
}

/** Residents still waiting for a code, and how many of them have failed at least once. */
export async function registrationBacklog(ctx: MunicipalityContext): Promise<{ pending: number; retrying: number }> {
  const [row] = await ctx.sequelize.query<{ pending: number; retrying: number }>(
    `SELECT COUNT(*) AS pending, COUNT(a."residentId") AS retrying
       FROM residents r LEFT JOIN registration_attempts a ON a."residentId" = r.id
      WHERE r."codeStatus" = 'pending'`, { type: QueryTypes.SELECT });
  return { pending: Number(row?.pending ?? 0), retrying: Number(row?.retrying ?? 0) };
}

/** Sends due registrations to the issuer; stores each code as it comes back. */
export async function processRegistrations(ctx: MunicipalityContext, fed: FederationLink, options: { limit?: number; now?: Date; concurrency?: number } = {}): Promise<RegistrationRun> {
  const now = options.now ?? new Date();
  const due = await ctx.sequelize.query<{ id: string; attempts: number | null }>(
    `SELECT r.id AS id, a.attempts AS attempts
       FROM residents r LEFT JOIN registration_attempts a ON a."residentId" = r.id
      WHERE r."codeStatus" = 'pending' AND (a."nextAttemptAt" IS NULL OR a."nextAttemptAt" <= :now)
      ORDER BY a."nextAttemptAt" ASC NULLS FIRST LIMIT :limit`,
    { type: QueryTypes.SELECT, replacements: { now: now.toISOString(), limit: options.limit ?? 500 } },
  );
  const outcomes = await mapWithLimit(due, options.concurrency ?? 8, (item) => registerOne(ctx, fed, item.id, item.attempts ?? 0));
  const issued = outcomes.filter(Boolean).length;
  return { issued, failed: outcomes.length - issued, pending: (await registrationBacklog(ctx)).pending };
}

async function registerOne(ctx: MunicipalityContext, fed: FederationLink, residentId: string, attempts: number): Promise<boolean> {
  const resident = await ctx.models.Resident.findByPk(residentId, { raw: true });
  if (!resident) return false;
  let outcome: { code: string } | { error: string };
  try {
    const myNumber = readMyNumber(ctx, resident);
    const res = await fed.http.postJson(`${fed.issuerUrl}/codes`, { myNumber }, { timeoutMs: fed.timeoutMs });
    const code = codeSchema.safeParse(res.body?.code);
    // Only the status is kept: an issuer's error body is not ours to repeat.
    outcome = res.status < 300 && code.success ? { code: code.data } : { error: `issuer answered ${res.status}` };
  } catch (err) {
    outcome = { error: `issuer unreachable: ${(err as { code?: string }).code ?? 'error'}` };
  }
  const at = new Date();
  if ('code' in outcome) {
    await ctx.models.Resident.update({ code: outcome.code, codeStatus: 'issued' }, { where: { id: residentId } });
    return true;
  }
  await ctx.models.RegistrationAttempt.upsert({
    residentId, attempts: attempts + 1, lastError: outcome.error.slice(0, 200),
    nextAttemptAt: new Date(at.getTime() + backoffSeconds(attempts + 1) * 1000).toISOString(),
  });
  ctx.logger.warn({ residentId, attempts: attempts + 1, error: outcome.error }, 'code registration deferred');
  return false;
}

/**
 * Runs registrations in the background until stopped; `kick()` runs a round now (after a new
 * resident) instead of waiting for the next tick. One round at a time.
 */
export function startRegistrationWorker(ctx: MunicipalityContext, fed: FederationLink, intervalMs = 2000) {
  let running: Promise<unknown> | undefined;
  let again = false;
  let stopped = false;
  const round = (): void => {
    if (stopped) return;
    if (running) { again = true; return; }
    running = processRegistrations(ctx, fed)
      .catch((err) => ctx.logger.error({ err }, 'registration round failed'))
      .finally(() => {
        running = undefined;
        if (again) { again = false; round(); }
      });
  };
  const timer = setInterval(round, intervalMs);
  timer.unref();
  return {
    kick: round,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
