/**
 * Container health check for members whose only port is mTLS: asks GET <url> with the member's
 * own certificate. Exit 0 when it answers 200.
 *   node --import tsx scripts/healthcheck.ts https://127.0.0.1:8443/health /pki/self
 */
import { createMemberClient } from '../shared/federation/member-http.ts';
import { loadMemberCredentials } from '../shared/federation/pki.ts';

const [url, certDir] = process.argv.slice(2);
if (!url || !certDir) {
  console.error('usage: healthcheck.ts <url> <cert dir>');
  process.exit(2);
}
const client = createMemberClient(loadMemberCredentials(certDir));
try {
  const res = await client.getJson(url, { timeoutMs: 3000 });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
} finally {
  client.close();
}
