import { z } from 'zod';
import { host, loadConfig, logLevel, port, secretKey } from '../shared/platform/config.ts';
import { checkpointIntervalSeconds } from '../shared/access-log/witness.ts';
import { rateLimitCount, rateWindowSeconds } from '../shared/platform/rate-limit.ts';
import { alertConfigShape } from '../shared/access-log/alerts.ts';
import { signInConfigShape } from '../shared/staff/sign-in.ts';
import { revocationConfigShape } from '../shared/federation/revocation.ts';
import { evaluateRateConfigShape, oprfKey } from '../shared/federation/oprf-key.ts';

/** Configuration of the gateway. Its secrets: its PKI folder, its share of the code derivation's OPRF key, the staff session key. */
export const gatewayConfigSchema = z.object({
  HOST: host,
  PORT: port,
  /** This member's own PKI folder (ca.pem, tls.pem/key, enc.pem/key). */
  CERT_DIR: z.string().min(1),
  /** directory.json with every member's certificates and endpoints, served to members as is. */
  DIRECTORY_FILE: z.string().min(1),
  /** The gateway's share k_G of the code derivation's OPRF key (docs/DESIGN.md §3.4); the issuer holds k_I. */
  OPRF_KEY: oprfKey('OPRF_KEY'),
  DATABASE_PATH: z.string().min(1).optional(),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  LOG_LEVEL: logLevel,
  /** Most subjects in one query (bulk move-in season). */
  MAX_BATCH: z.coerce.number().int().min(1).max(5000).default(1000),
  /** Most forwards in flight to one source municipality at a time. */
  SOURCE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  SOURCE_TIMEOUT_MS: z.coerce.number().int().min(50).max(120_000).default(10_000),
  /** Seconds a member should wait before retrying a `source_unavailable` subject. */
  RETRY_AFTER_SECONDS: z.coerce.number().int().min(1).max(86_400).default(30),
  /**
   * The CA-signed revocation list (public/revocations.jws), re-read when it changes and relayed to
   * members at GET /revocations. Required: without a list no member can be trusted (fail closed).
   */
  REVOCATION_FILE: z.string({ error: 'REVOCATION_FILE is required (the CA-signed revocation list)' }).min(1),
  ...revocationConfigShape,
  /** Queries one member (certificate CN) may send per window; above it, 429 with Retry-After. */
  MEMBER_QUERY_LIMIT: rateLimitCount(3000),
  MEMBER_QUERY_WINDOW_SECONDS: rateWindowSeconds(60),
  /** Blinded-point evaluations (POST /codes/evaluate) one municipality may ask per window; above it, 429. */
  ...evaluateRateConfigShape,
  /**
   * Audit and leak-scan aid, off by default: when set, every message body the gateway receives
   * or sends is appended to files in this folder (SECURITY.md). It holds what the gateway sees
   * anyway — which is exactly what a leak scan must be able to read.
   */
  CAPTURE_DIR: z.string().min(1).optional(),
  /** Seconds between checkpoints of the gateway's own log head (members fetch and keep them); 0 = off. */
  CHECKPOINT_INTERVAL_SECONDS: checkpointIntervalSeconds,
  /** The privacy officers' console: plain HTTP on 127.0.0.1 only; absent = no staff port. */
  STAFF_PORT: port.optional(),
  /** HMAC key for gateway staff sessions (32 bytes, hex or base64); required with STAFF_PORT. */
  SESSION_SECRET: secretKey('SESSION_SECRET').optional(),
  SESSION_TTL_SECONDS: z.coerce.number().int().min(60).max(12 * 3600).default(900),
  ...signInConfigShape,
  /** Correction relay: longest wait between delivery attempts to a recipient that is down (backoff 2, 4, 8 … seconds up to this). */
  CORRECTION_RETRY_MAX_SECONDS: z.coerce.number().int().min(1).max(86_400).default(600),
  /** Seconds between rounds of the relay's delivery worker (a notice just accepted is tried at once as well). */
  CORRECTION_DELIVERY_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),
  /* Anomaly alerts. */
  ...alertConfigShape,
})
  .refine((c) => c.DATABASE_PATH || c.DATABASE_URL, { message: 'DATABASE_PATH or DATABASE_URL is required', path: ['DATABASE_PATH'] })
  .refine((c) => c.STAFF_PORT === undefined || c.SESSION_SECRET, { message: 'SESSION_SECRET is required when STAFF_PORT is set (no default for secrets)', path: ['SESSION_SECRET'] });

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const loadGatewayConfig = (env: Record<string, string | undefined> = process.env): GatewayConfig =>
  loadConfig(gatewayConfigSchema, env, 'gateway');
