/** Entry point of the gateway process: config from the environment, mTLS only. */
import { announceReady } from '../shared/platform/log.ts';
import { closeMemberServer, listenMember } from '../shared/federation/member-http.ts';
import { closeServer, listen, onShutdown, memberProcessStackTraces } from '../shared/platform/server.ts';
import { createGateway } from './app.ts';
import { loadGatewayConfig } from './config.ts';

memberProcessStackTraces();

const config = loadGatewayConfig();
const gateway = await createGateway(config);
const url = await listenMember(gateway.server, config.PORT, config.HOST);
// The privacy officers' console is plain HTTP, so it is bound to loopback whatever HOST says.
const staff = gateway.staffApp && config.STAFF_PORT !== undefined ? await listen(gateway.staffApp, config.STAFF_PORT, '127.0.0.1') : undefined;
announceReady(gateway.ctx.logger, { url, staffUrl: staff?.url, transport: 'mTLS', members: (await gateway.ctx.currentDirectory()).length });

onShutdown(async () => {
  if (staff) await closeServer(staff.server);
  await closeMemberServer(gateway.server);
  await gateway.close();
});
