/**
 * Readiness of one municipality (GET /ready, no login: it says nothing about anyone). Ready means
 * its own database answers; the gateway and the issuer are reported, not required, because a
 * municipality works alone when they are down, and says how much outgoing work it has queued.
 */
import { Router } from 'express';
import { GATEWAY_ID, ISSUER_ID } from '../../../shared/federation/protocol.ts';
import { readiness } from '../../../shared/platform/health.ts';
import { memberProbe } from '../../../shared/federation/member-probe.ts';
import type { MemberClient } from '../../../shared/federation/member-http.ts';
import type { MunicipalityContext } from '../context.ts';
import { registrationBacklog } from '../codes/service.ts';
import { bulkBacklog } from '../asking/bulk/service.ts';

const PROBE_TIMEOUT_MS = 2000;

export function healthRoutes(ctx: MunicipalityContext, federation?: { client: MemberClient }): Router {
  const router = Router();
  const { GATEWAY_URL, ISSUER_URL } = ctx.config;
  const peers = federation && GATEWAY_URL && ISSUER_URL
    ? [memberProbe(federation.client, GATEWAY_ID, GATEWAY_URL, PROBE_TIMEOUT_MS), memberProbe(federation.client, ISSUER_ID, ISSUER_URL, PROBE_TIMEOUT_MS)]
    : [];
  router.get('/ready', readiness({
    member: ctx.config.MUNICIPALITY_CODE,
    sequelize: ctx.sequelize,
    peers,
    timeoutMs: PROBE_TIMEOUT_MS,
    // Work waiting for the gateway or the issuer: counts only.
    details: async () => ({ queued: { registrations: (await registrationBacklog(ctx)).pending, bulk: await bulkBacklog(ctx) } }),
  }));
  return router;
}
