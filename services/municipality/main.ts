/** Entry point of one municipality process: config from the environment, its own database. */
import { announceReady } from '../../shared/platform/log.ts';
import { closeServer, listen, onShutdown, memberProcessStackTraces } from '../../shared/platform/server.ts';
import { closeMemberServer, listenMember } from '../../shared/federation/member-http.ts';
import { createMunicipality } from './app.ts';
import { loadMunicipalityConfig } from './config.ts';

memberProcessStackTraces();

const config = loadMunicipalityConfig();
const municipality = await createMunicipality(config);
const { server, url } = await listen(municipality.staffApp, config.PORT, config.HOST);
const federationUrl = municipality.federationServer && config.FEDERATION_PORT !== undefined
  ? await listenMember(municipality.federationServer, config.FEDERATION_PORT, config.HOST)
  : undefined;
// Launchers wait for this line.
announceReady(municipality.ctx.logger, { url, federationUrl, code: config.MUNICIPALITY_CODE, name: config.MUNICIPALITY_NAME });

onShutdown(async () => {
  await closeServer(server);
  if (municipality.federationServer) await closeMemberServer(municipality.federationServer);
  await municipality.close();
});
