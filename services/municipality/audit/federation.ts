import { GATEWAY_ID } from '../../../shared/protocol.ts';
import type { FederationLink } from '../exchange/federation.ts';
import type { AuditHooks } from './service.ts';

/**
 * The audit capability's use of the federation: checkpoints are signed with the member signing
 * key and sent to the gateway's POST /checkpoints (mTLS) for countersigning.
 */
export function federationAuditHooks(link: FederationLink | undefined): AuditHooks {
  if (!link) return {};
  return {
    signer: link.signer,
    async witness(jws) {
      const res = await link.http.postJson(`${link.gatewayUrl}/checkpoints`, { jws }, { timeoutMs: link.timeoutMs });
      if (res.status !== 200 && res.status !== 201) throw new Error(`gateway refused the checkpoint: ${res.status} ${res.body?.type ?? ''}`);
      const { key } = await link.peers.signingKey(GATEWAY_ID);
      return { countersignature: String(res.body.countersignature), witnessId: GATEWAY_ID, witnessKey: key };
    },
  };
}
