import { Router } from 'express';
import type { PeriodicTask } from '../../shared/access-log/witness.ts';
import { memberOf, requireMember } from '../../shared/federation/member-http.ts';
import { CONSENT_REVOCATIONS_GATEWAY_PATH } from '../../shared/federation/protocol.ts';
import { parseInput } from '../../shared/platform/validation.ts';
import type { GatewayContext } from '../context.ts';
import { consentRevocationRequestSchema } from './schemas.ts';
import { acceptConsentRevocation } from './service.ts';

/** POST /consent-revocations: a requester's signed revocation, recorded here and relayed to each source (docs/PROTOCOL.md §3.9). */
export function consentRevocationRoutes(ctx: GatewayContext, relay: Pick<PeriodicTask, 'runNow'>): Router {
  const router = Router();
  router.post(CONSENT_REVOCATIONS_GATEWAY_PATH, requireMember(['municipality']), async (req, res) => {
    const { revocation } = parseInput(consentRevocationRequestSchema, req.body);
    const recorded = await acceptConsentRevocation(ctx, memberOf(req), revocation);
    // Relayed at once; a source that is down gets it later from the queue.
    if (recorded.created) void relay.runNow();
    res.status(recorded.created ? 201 : 200).json({ consentId: recorded.consentId, status: recorded.created ? 'recorded' : 'already_recorded' });
  });
  return router;
}
