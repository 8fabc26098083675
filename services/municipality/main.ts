/** Entry point of one municipality process: config from the environment, its own database. */
import { closeServer, listen, onShutdown } from '../../shared/server.ts';
import { createMunicipality } from './app.ts';
import { loadMunicipalityConfig } from './config.ts';

const config = loadMunicipalityConfig();
const municipality = await createMunicipality(config);
const { server, url } = await listen(municipality.staffApp, config.PORT, config.HOST);
municipality.ctx.logger.info({ url, code: config.MUNICIPALITY_CODE }, `${config.MUNICIPALITY_NAME} staff API listening`);

onShutdown(async () => {
  await closeServer(server);
  await municipality.close();
});
