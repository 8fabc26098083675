/**
 * Anomaly detection over this municipality's own access log (issue 9). Asking side: a staff
 * member sending far more queries than their peers; life-protection queries sent above a
 * threshold. Answering side: one resident asked about by several municipalities; repeated
 * identity mismatches, or life-protection queries, from one requester. Alerts are stored
 * append-only (shared/alerts.ts) and each one raised is logged.
 */
import { appendAccess } from '../../../shared/access-log/chain.ts';
import {
  countingFindings, entriesInWindow, evidenceOf, groupBy, isLifeProtection, listAlerts, median, storeFindings, windowEnding,
  type AlertConsole, type AlertFinding, type AlertView, type WindowEntry,
} from '../../../shared/access-log/alerts.ts';
import { runEvery, type PeriodicTask } from '../../../shared/access-log/witness.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import { Actions } from '../access-log/actions.ts';
import { logStaffAccess } from '../access-log/service.ts';
import type { MunicipalityContext } from '../context.ts';
import { activeStaffIds } from '../staff/model.ts';
import { residentsByCodes } from '../residents/model.ts';

export const ALERT_ACTOR = 'system:alerts';
/** Roles that send queries, and so are each other's peers. */
const QUERYING_ROLES = ['clerk', 'operator'];

const isMismatch = (e: WindowEntry): boolean => e.details.status === 'identity_mismatch' || e.flags.includes('identity_mismatch');
/** The requesting municipality of an answered query (a refused envelope names only the gateway). */
const requesterOf = (e: WindowEntry): string | null => (isValidMunicipalityCode(e.actorId) ? e.actorId : null);

async function staffVolume(ctx: MunicipalityContext, sent: WindowEntry[]): Promise<AlertFinding[]> {
  const { ALERT_STAFF_QUERY_MIN: min, ALERT_STAFF_QUERY_FACTOR: factor } = ctx.config;
  const bySender = groupBy(sent, (e) => e.actorId);
  const everyone = new Set([...await activeStaffIds(ctx.models.Staff, QUERYING_ROLES), ...bySender.keys()]);
  const found: AlertFinding[] = [];
  for (const [staffId, entries] of bySender) {
    if (entries.length < min) continue;
    const peers = [...everyone].filter((id) => id !== staffId).map((id) => bySender.get(id)?.length ?? 0);
    const peerMedian = median(peers);
    // With no peers querying at all, the bar is `factor` queries: the minimum decides.
    const bar = factor * Math.max(peerMedian, 1);
    if (entries.length < bar) continue;
    found.push({
      kind: 'staff_query_volume', key: `staff:${staffId}`, subject: staffId, count: entries.length, threshold: Math.max(min, bar),
      details: { staff: staffId, peers: peers.length, peerMedian, factor, minimum: min }, evidence: evidenceOf(entries),
    });
  }
  return found;
}

async function multiRequester(ctx: MunicipalityContext, answered: WindowEntry[]): Promise<AlertFinding[]> {
  const threshold = ctx.config.ALERT_MULTI_REQUESTER_THRESHOLD;
  // A subject refused before the resident was matched is logged by our code for them: one person, one key.
  const codes = [...new Set(answered.flatMap((e) => (e.subject ? [e.subject] : [])))];
  const residents = codes.length
    ? await residentsByCodes(ctx.models.Resident, codes)
    : [];
  const addresseeOf = new Map(residents.map((r) => [r.code!, r.addresseeNumber]));
  const found: AlertFinding[] = [];
  for (const [subject, entries] of groupBy(answered, (e) => (e.subject ? addresseeOf.get(e.subject) ?? e.subject : null))) {
    const requesters = [...new Set(entries.map((e) => e.actorId))].sort();
    if (requesters.length < threshold) continue;
    found.push({
      kind: 'resident_multi_requester', key: `resident:${subject}`, subject, count: requesters.length, threshold,
      details: { requesters, queries: entries.length }, evidence: evidenceOf(entries),
    });
  }
  return found;
}

/** Runs every detector over the window ending at `now`; nothing is stored. */
export async function detectAlerts(ctx: MunicipalityContext, now = new Date()): Promise<{ window: { from: string; to: string }; findings: AlertFinding[] }> {
  const c = ctx.config;
  const window = windowEnding(now, c.ALERT_WINDOW_SECONDS);
  const entries = await entriesInWindow(ctx.models.AccessLog, [Actions.QUERY_SEND, Actions.QUERY_ANSWER], window);
  const sent = entries.filter((e) => e.action === Actions.QUERY_SEND && e.actorType === 'staff');
  const answered = entries.filter((e) => e.action === Actions.QUERY_ANSWER && requesterOf(e) !== null);
  const findings = [
    ...await staffVolume(ctx, sent),
    ...await multiRequester(ctx, answered),
    ...countingFindings(groupBy(answered.filter(isMismatch), requesterOf), c.ALERT_IDENTITY_MISMATCH_THRESHOLD, (requester) => ({
      kind: 'identity_mismatch_requester', key: `requester:${requester}`, subject: null, details: { requester },
    })),
    ...countingFindings(groupBy(answered.filter(isLifeProtection), requesterOf), c.ALERT_LIFE_PROTECTION_THRESHOLD, (requester) => ({
      kind: 'life_protection_volume', key: `requester:${requester}`, subject: null, details: { requester, direction: 'received' },
    })),
    ...countingFindings(groupBy(sent.filter(isLifeProtection), () => 'sent'), c.ALERT_LIFE_PROTECTION_THRESHOLD, (_key, lp) => ({
      kind: 'life_protection_volume', key: 'sent', subject: null,
      details: { direction: 'sent', staff: [...new Set(lp.map((e) => e.actorId))].sort() },
    })),
  ];
  return { window, findings };
}

/** Detects and stores; each alert raised is logged in the transaction that stores it. */
export async function runAlerts(ctx: MunicipalityContext, now = new Date()): Promise<AlertView[]> {
  const { window, findings } = await detectAlerts(ctx, now);
  return storeFindings(findings, {
    sequelize: ctx.sequelize, Alerts: ctx.models.Alert, windowSeconds: ctx.config.ALERT_WINDOW_SECONDS, window, now,
    logRaised: (t, alert) => appendAccess(ctx.models.AccessLog, t, {
      actorType: 'system', actorId: ALERT_ACTOR, actingMunicipality: ctx.config.MUNICIPALITY_CODE, action: Actions.ALERT_RAISE, outcome: 'allowed',
      details: { alertId: alert.id, kind: alert.kind, key: alert.key, count: alert.count, threshold: alert.threshold },
    }),
  });
}

/** The privacy officer's view: list (logged) and run on demand (logged). */
export function municipalityAlerts(ctx: MunicipalityContext): AlertConsole {
  return {
    list: (actor, filter) => inTransaction(ctx.sequelize, async (t) => {
      const alerts = await listAlerts(ctx.models.Alert, filter, t);
      await logStaffAccess(ctx, t, actor, { action: Actions.ALERT_READ, outcome: 'allowed', details: { kind: filter.kind ?? null, from: filter.from ?? null, returned: alerts.length } });
      return alerts;
    }),
    async run(actor) {
      const raised = await runAlerts(ctx);
      await inTransaction(ctx.sequelize, (t) => logStaffAccess(ctx, t, actor, { action: Actions.ALERT_RUN, outcome: 'allowed', details: { raised: raised.length } }));
      return raised;
    },
  };
}

/** Runs the detectors every ALERT_INTERVAL_SECONDS (0 = on demand only). */
export function startAlertSchedule(ctx: MunicipalityContext): PeriodicTask {
  return runEvery(ctx.config.ALERT_INTERVAL_SECONDS, async () => {
    const raised = await runAlerts(ctx);
    if (raised.length) ctx.logger.warn({ alerts: raised.map((a) => ({ id: a.id, kind: a.kind, key: a.key })) }, 'anomaly alerts raised');
  }, ctx.logger, 'anomaly detection');
}
