/** Entry point of the centralized baseline process (benchmark only): config from the environment. */
import { openDatabase } from '../../../shared/platform/db.ts';
import { announceReady, createLogger } from '../../../shared/platform/log.ts';
import { closeServer, listen, onShutdown, memberProcessStackTraces } from '../../../shared/platform/server.ts';
import { createCentralApp, loadCentralConfig, prepareCentralSchema } from './app.ts';

memberProcessStackTraces();

const config = loadCentralConfig();
const logger = createLogger({ name: 'centralized', level: config.LOG_LEVEL });
const sequelize = await openDatabase({ storage: config.DATABASE_PATH });
const models = await prepareCentralSchema(sequelize);
const { server, url } = await listen(createCentralApp(sequelize, models, logger), config.PORT, config.HOST);
// The launcher waits for this line.
announceReady(logger, { url });

onShutdown(async () => {
  await closeServer(server);
  await sequelize.close();
});
