/**
 * What a member's mTLS client offers (shared/federation/member-http.ts makes one): the interface
 * alone, so the directory and revocation clients that call the gateway with it need not import
 * the transport (docs/PROTOCOL.md §1).
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface MemberResponse<T = unknown> {
  status: number;
  headers: IncomingHttpHeaders;
  /** Parsed JSON when the peer sent JSON, else the raw text. */
  body: T;
}

export interface RequestOptions {
  timeoutMs?: number;
  /** Trace id; defaults to the current request's. */
  requestId?: string;
  /** The member id the server certificate must name (CN); refuses any other peer. */
  expectPeer?: string;
  /** Largest response accepted, in bytes. */
  maxResponseBytes?: number;
}

export interface MemberClient {
  postJson<T = unknown>(url: string, body: unknown, options?: RequestOptions): Promise<MemberResponse<T>>;
  getJson<T = unknown>(url: string, options?: RequestOptions): Promise<MemberResponse<T>>;
  close(): void;
}
