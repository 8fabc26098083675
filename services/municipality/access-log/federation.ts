import { createPublicKey } from 'node:crypto';
import {
  fetchGatewayCheckpoints, fetchGatewayEntries, gatewayHeldCheckpoints, gatewayWitness, keepPeerCheckpoints, type GatewayLink,
} from '../../../shared/access-log/witness.ts';
import { listCheckpoints } from '../../../shared/access-log/verify.ts';
import { GATEWAY_ID } from '../../../shared/federation/protocol.ts';
import { federationHeadHolders, fetchHeldHeads } from '../../../shared/access-log/heads.ts';
import type { MunicipalityContext } from '../context.ts';
import type { FederationRuntime } from '../federation/connect.ts';
import type { AuditHooks } from './service.ts';

/**
 * The audit capability's use of the federation, all over this municipality's mTLS client:
 * checkpoints signed with the member signing key and countersigned at the gateway's POST
 * /checkpoints; the gateway's copies of ours and its own checkpoints from GET /checkpoints; its
 * entries about our exchanges from GET /audit/entries.
 */
export function federationAuditHooks(ctx: MunicipalityContext, runtime: FederationRuntime | undefined): AuditHooks {
  if (!runtime) return {};
  const { link } = runtime;
  const gateway: GatewayLink = {
    client: runtime.client, gatewayUrl: link.gatewayUrl, timeoutMs: link.timeoutMs,
    gatewayKey: async () => (await link.peers.signingKey(GATEWAY_ID)).key,
  };
  const ownKey = createPublicKey(link.signer.key);
  return {
    signer: link.signer,
    witness: gatewayWitness(gateway),
    gatewayCheckpoints: () => gatewayHeldCheckpoints(gateway, link.signer, ownKey),
    async keepGatewayCheckpoints() {
      const held = (await listCheckpoints(ctx.models.Checkpoint, GATEWAY_ID)).filter((c) => c.witnessedBy === link.self);
      // From our newest copy on: the gateway re-signing that seq with another hash is caught here too.
      const fromSeq = held.reduce((max, c) => Math.max(max, c.seq), 0);
      const published = await fetchGatewayCheckpoints(gateway, GATEWAY_ID, fromSeq);
      return keepPeerCheckpoints({ Checkpoints: ctx.models.Checkpoint, self: link.signer, peer: GATEWAY_ID, peerKey: await gateway.gatewayKey(), published, logger: ctx.logger });
    },
    gatewayEntries: (q) => fetchGatewayEntries(gateway, link.self, q),
    // The gateway saw our queries and answers; each peer saw our answers (and queries forwarded to it).
    async witnessedHeads() {
      return fetchHeldHeads(runtime.client, link.self, await federationHeadHolders(runtime.directory, link.self, link.gatewayUrl), {
        // A peer that does not answer soon is reported as unavailable; the others still count.
        timeoutMs: Math.min(link.timeoutMs, 5000),
      });
    },
  };
}
