import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { AccessLogModel } from '../../shared/access-log/chain.ts';
import type { WitnessedHeadModel } from '../../shared/access-log/heads.ts';
import type { MemberClient } from '../../shared/federation/member-http.ts';
import type { MemberCredentials, RevocationList } from '../../shared/federation/pki.ts';
import type { IssuerConfig } from './config.ts';

/** Everything one issuer instance needs, built by `createIssuer` and passed down (no module state). */
export interface IssuerContext {
  config: IssuerConfig;
  logger: Logger;
  sequelize: Sequelize;
  models: { AccessLog: AccessLogModel; WitnessedHead: WitnessedHeadModel };
  credentials: MemberCredentials;
  client: MemberClient;
  revocations: RevocationList;
}
