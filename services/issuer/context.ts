import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import type { AccessLogModel } from '../../shared/access-log/chain.ts';
import type { WitnessedHeadModel } from '../../shared/access-log/heads.ts';
import type { MemberClient } from '../../shared/federation/member-http.ts';
import type { MemberCredentials } from '../../shared/federation/pki.ts';
import type { RevocationGuard } from '../../shared/federation/revocation.ts';
import type { IssuerConfig } from './config.ts';
import type { OprfKeyShare } from '../../shared/crypto.ts';
import type { SigningKeyOf } from '../../shared/federation/messages.ts';

/** Everything one issuer instance needs, built by `createIssuer` and passed down (no module state). */
export interface IssuerContext {
  config: IssuerConfig;
  logger: Logger;
  sequelize: Sequelize;
  models: { AccessLog: AccessLogModel; WitnessedHead: WitnessedHeadModel };
  credentials: MemberCredentials;
  client: MemberClient;
  /** The CA-signed revocation list, from the gateway, kept in the issuer's database. */
  revocations: RevocationGuard;
  /** The issuer's share k_I of the code derivation's OPRF key, from OPRF_KEY (docs/DESIGN.md §3.4). */
  oprf: OprfKeyShare;
  /** A member's verified signing key, from the directory: how the issuer reads the heads members sign (docs/PROTOCOL.md §3.0). */
  memberKey: SigningKeyOf;
}
