import type { KeyObject } from 'node:crypto';
import { AppError } from '../../../shared/platform/errors.ts';
import type { Signer } from '../../../shared/federation/messages.ts';

/** What the exchange needs of the mTLS client: JSON over a keep-alive agent with our certificate. */
export interface MemberHttp {
  postJson(url: string, body: unknown, options?: { timeoutMs?: number; requestId?: string; expectPeer?: string }): Promise<{ status: number; body: any }>;
}

/** Peers' public keys, each taken from a certificate this municipality verified against the CA itself. */
export interface PeerKeys {
  signingKey(id: string): Promise<{ key: KeyObject; kid: string }>;
  encryptionKey(id: string): Promise<{ key: KeyObject; kid: string }>;
}

/** This municipality's place in the federation: its own keys, its client, and where the others are. */
export interface FederationLink {
  self: string;
  signer: Signer;
  /** Private key of our encryption certificate: opens sealed identity checks and released records. */
  decryptionKey: KeyObject;
  http: MemberHttp;
  peers: PeerKeys;
  gatewayUrl: string;
  issuerUrl: string;
  /** Per-call timeout towards the gateway and issuer. */
  timeoutMs: number;
  /** The federation CA and its revocation list: the trust anchor for residents' personal certificates. */
  trust: { ca: string; isRevoked(serial: string): boolean };
}

/**
 * The link, or a 503 when this municipality is not connected to the federation: local work goes
 * on, and every route that needs a peer answers the same way.
 */
export function requireLink(fed: FederationLink | undefined): FederationLink {
  if (!fed) throw new AppError(503, 'federation-unavailable', 'This municipality is not connected to the federation');
  return fed;
}
