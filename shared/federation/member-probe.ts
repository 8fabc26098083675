import { PROBE_TIMEOUT_MS, type PeerCheck } from '../platform/health.ts';
import type { MemberClient } from './member-http.ts';

/** A member peer is up when its /health answers 200 over mTLS with the certificate we expect. */
export function memberProbe(client: MemberClient, id: string, baseUrl: string, timeoutMs = PROBE_TIMEOUT_MS): PeerCheck {
  return {
    name: id,
    probe: async () => {
      const res = await client.getJson(`${baseUrl.replace(/\/+$/, '')}/health`, { expectPeer: id, timeoutMs });
      if (res.status !== 200) throw Object.assign(new Error(`status ${res.status}`), { code: `status_${res.status}` });
    },
  };
}
