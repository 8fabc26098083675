import { createDirectoryClient, type Directory } from '../../../shared/federation/directory.ts';
import { createMemberClient, type MemberClient } from '../../../shared/federation/member-http.ts';
import { loadMemberCredentials, type MemberCredentials } from '../../../shared/federation/pki.ts';
import type { MunicipalityContext } from '../context.ts';
import type { FederationLink } from './link.ts';

export interface FederationRuntime {
  link: FederationLink;
  credentials: MemberCredentials;
  directory: Directory;
  client: MemberClient;
}

/** Loads this municipality's credentials and connects to the gateway's directory (verified locally). */
export function connectFederation(ctx: MunicipalityContext, sharedDirectory?: Directory): FederationRuntime | undefined {
  const { CERT_DIR, GATEWAY_URL, ISSUER_URL, MUNICIPALITY_CODE } = ctx.config;
  if (!CERT_DIR || !GATEWAY_URL || !ISSUER_URL) return undefined;
  const credentials = loadMemberCredentials(CERT_DIR);
  if (credentials.id !== MUNICIPALITY_CODE || credentials.kind !== 'municipality') {
    throw new Error(`CERT_DIR holds the certificate of ${credentials.id} (${credentials.kind}), not of municipality ${MUNICIPALITY_CODE}`);
  }
  const client = createMemberClient(credentials);
  const directory = sharedDirectory ?? createDirectoryClient(client, GATEWAY_URL, credentials.ca);
  return {
    credentials, directory, client,
    link: {
      self: MUNICIPALITY_CODE,
      signer: credentials.signer,
      decryptionKey: credentials.decryption.key,
      http: client,
      peers: directory,
      gatewayUrl: GATEWAY_URL.replace(/\/+$/, ''),
      issuerUrl: ISSUER_URL.replace(/\/+$/, ''),
      timeoutMs: 30_000,
      trust: { ca: credentials.ca, isRevoked: (serial) => directory.isRevoked(serial) },
    },
  };
}
