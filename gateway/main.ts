/** Entry point of the gateway process: config from the environment, mTLS only. */
import { closeMemberServer, listenMember } from '../shared/member-http.ts';
import { onShutdown } from '../shared/server.ts';
import { createGateway } from './app.ts';
import { loadGatewayConfig } from './config.ts';

const config = loadGatewayConfig();
const gateway = await createGateway(config);
const url = await listenMember(gateway.server, config.PORT, config.HOST);
gateway.ctx.logger.info({ url, transport: 'mTLS', members: (await gateway.ctx.currentDirectory()).length }, 'ready');

onShutdown(async () => {
  await closeMemberServer(gateway.server);
  await gateway.close();
});
