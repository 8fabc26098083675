/**
 * Anomaly detection over the gateway's own log (docs/DESIGN.md §4.12): the gateway is the one member that sees
 * every municipality's queries, so it flags what no single municipality can see — one resident
 * asked about by several municipalities (the same source code, reached through different
 * requesters' codes via the correspondence table), repeated identity mismatches in one
 * requester's queries, and life-protection queries from one requester above a threshold.
 * Metadata only: alerts name codes and municipalities, never a person.
 */
import { appendAccess } from '../../shared/access-log/chain.ts';
import {
  countingFindings, entriesInWindow, evidenceOf, groupBy, isLifeProtection, listAlerts, signInFailureFindings, storeFindings, windowEnding,
  type AlertConsole, type AlertFinding, type AlertView, type WindowEntry,
} from '../../shared/access-log/alerts.ts';
import { runEvery, type PeriodicTask } from '../../shared/access-log/witness.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { GATEWAY_ID } from '../../shared/federation/protocol.ts';
import { GatewayActions } from '../access-log/actions.ts';
import { logGatewayStaffAccess } from '../access-log/service.ts';
import { findByCodes, findByLinks } from '../codes/model.ts';
import type { GatewayContext } from '../context.ts';

const isMismatch = (e: WindowEntry): boolean => e.details.status === 'identity_mismatch' || e.flags.includes('identity_mismatch');
const sourceOf = (e: WindowEntry): string | null => (typeof e.details.source === 'string' ? e.details.source : null);

/**
 * Each routed subject names the requester's code; the source's code for the same link says
 * whether two requesters asked about one person at one source.
 */
async function multiRequester(ctx: GatewayContext, routed: WindowEntry[]): Promise<AlertFinding[]> {
  const threshold = ctx.config.ALERT_MULTI_REQUESTER_THRESHOLD;
  const linkOf = new Map<string, string>();
  for (const [requester, entries] of groupBy(routed, (e) => e.actingMunicipality)) {
    const own = await findByCodes(ctx.models.Correspondence, requester, entries.flatMap((e) => (e.subject ? [e.subject] : [])));
    for (const [code, c] of own) linkOf.set(`${requester}|${code}`, c.linkId);
  }
  const links = await findByLinks(ctx.models.Correspondence, [...new Set(linkOf.values())]);
  const sourceCodeOf = (e: WindowEntry): string | null => {
    const link = linkOf.get(`${e.actingMunicipality}|${e.subject}`);
    const source = sourceOf(e);
    const theirs = link && source ? links.get(`${link}|${source}`) : undefined;
    return theirs ? `${source}|${theirs.code}` : null;
  };
  const found: AlertFinding[] = [];
  for (const [key, entries] of groupBy(routed, sourceCodeOf)) {
    const requesters = [...new Set(entries.map((e) => e.actingMunicipality!))].sort();
    if (requesters.length < threshold) continue;
    const [source, code] = key.split('|') as [string, string];
    found.push({
      kind: 'resident_multi_requester', key: `resident:${source}:${code}`, subject: code, count: requesters.length, threshold,
      details: { source, requesters, queries: entries.length }, evidence: evidenceOf(entries),
    });
  }
  return found;
}

export async function detectGatewayAlerts(ctx: GatewayContext, now = new Date()): Promise<{ window: { from: string; to: string }; findings: AlertFinding[] }> {
  const c = ctx.config;
  const window = windowEnding(now, c.ALERT_WINDOW_SECONDS);
  const entries = await entriesInWindow(ctx.models.AccessLog, [GatewayActions.QUERY_ROUTE, GatewayActions.QUERY_ANSWER], window);
  const routed = entries.filter((e) => e.action === GatewayActions.QUERY_ROUTE && e.actingMunicipality && e.subject);
  const answered = entries.filter((e) => e.action === GatewayActions.QUERY_ANSWER && e.actingMunicipality);
  const byRequester = (e: WindowEntry) => e.actingMunicipality;
  const findings = [
    ...await multiRequester(ctx, routed),
    ...countingFindings(groupBy(answered.filter(isMismatch), byRequester), c.ALERT_IDENTITY_MISMATCH_THRESHOLD, (requester) => ({
      kind: 'identity_mismatch_requester', key: `requester:${requester}`, subject: null, details: { requester },
    })),
    ...countingFindings(groupBy(routed.filter(isLifeProtection), byRequester), c.ALERT_LIFE_PROTECTION_THRESHOLD, (requester) => ({
      kind: 'life_protection_volume', key: `requester:${requester}`, subject: null, details: { requester },
    })),
    // Its staff port: a burst of refused sign-ins from one address.
    ...signInFailureFindings(
      await entriesInWindow(ctx.models.AccessLog, [GatewayActions.STAFF_SIGN_IN, GatewayActions.STAFF_LOCKOUT, GatewayActions.STAFF_PASSWORD_CHANGE], windowEnding(now, c.ALERT_SIGNIN_WINDOW_SECONDS)),
      c.ALERT_SIGNIN_FAILURE_THRESHOLD,
    ),
  ];
  return { window, findings };
}

export async function runGatewayAlerts(ctx: GatewayContext, now = new Date()): Promise<AlertView[]> {
  const { window, findings } = await detectGatewayAlerts(ctx, now);
  return storeFindings(findings, {
    sequelize: ctx.sequelize, Alerts: ctx.models.Alert, windowSeconds: ctx.config.ALERT_WINDOW_SECONDS, window, now,
    logRaised: (t, alert) => appendAccess(ctx.models.AccessLog, t, {
      actorType: 'system', actorId: GATEWAY_ID, actorRole: 'alerts', actingMunicipality: GATEWAY_ID, action: GatewayActions.ALERT_RAISE, outcome: 'allowed',
      details: { alertId: alert.id, kind: alert.kind, key: alert.key, count: alert.count, threshold: alert.threshold },
    }),
  });
}

/** The gateway privacy officer's view: list (logged) and run on demand (logged). */
export function gatewayAlerts(ctx: GatewayContext): AlertConsole {
  return {
    list: (actor, filter) => inTransaction(ctx.sequelize, async (t) => {
      const alerts = await listAlerts(ctx.models.Alert, filter, t);
      await logGatewayStaffAccess(ctx.models.AccessLog, t, actor, { action: GatewayActions.ALERT_READ, outcome: 'allowed', details: { kind: filter.kind ?? null, returned: alerts.length } });
      return alerts;
    }),
    async run(actor) {
      const raised = await runGatewayAlerts(ctx);
      await inTransaction(ctx.sequelize, (t) => logGatewayStaffAccess(ctx.models.AccessLog, t, actor, { action: GatewayActions.ALERT_RUN, outcome: 'allowed', details: { raised: raised.length } }));
      return raised;
    },
  };
}

export function startGatewayAlertSchedule(ctx: GatewayContext): PeriodicTask {
  return runEvery(ctx.config.ALERT_INTERVAL_SECONDS, async () => {
    const raised = await runGatewayAlerts(ctx);
    if (raised.length) ctx.logger.warn({ alerts: raised.map((a) => ({ id: a.id, kind: a.kind, key: a.key })) }, 'anomaly alerts raised');
  }, ctx.logger, 'anomaly detection');
}
