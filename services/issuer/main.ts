/** Entry point of the issuer process: config from the environment, mTLS only. */
import { announceReady } from '../../shared/platform/log.ts';
import { closeMemberServer, listenMember } from '../../shared/federation/member-http.ts';
import { onShutdown, memberProcessStackTraces } from '../../shared/platform/server.ts';
import { createIssuer } from './app.ts';
import { loadIssuerConfig } from './config.ts';

memberProcessStackTraces();

const config = loadIssuerConfig();
const issuer = await createIssuer(config);
const url = await listenMember(issuer.server, config.PORT, config.HOST);
announceReady(issuer.ctx.logger, { url, transport: 'mTLS' });

onShutdown(async () => {
  await closeMemberServer(issuer.server);
  await issuer.close();
});
