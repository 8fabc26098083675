import { z } from 'zod';
import { host, loadConfig, logLevel, port } from '../shared/config.ts';

/** Configuration of the gateway. It holds no secret key of its own beyond its PKI folder. */
export const gatewayConfigSchema = z.object({
  HOST: host,
  PORT: port,
  /** This member's own PKI folder (ca.pem, tls.pem/key, enc.pem/key). */
  CERT_DIR: z.string().min(1),
  /** directory.json with every member's certificates and endpoints, served to members as is. */
  DIRECTORY_FILE: z.string().min(1),
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
  /** The CA-signed revocation list (ca/revocations.jws), relayed to members at GET /revocations. */
  REVOCATION_FILE: z.string().min(1).optional(),
}).refine((c) => c.DATABASE_PATH || c.DATABASE_URL, { message: 'DATABASE_PATH or DATABASE_URL is required', path: ['DATABASE_PATH'] });

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const loadGatewayConfig = (env: Record<string, string | undefined> = process.env): GatewayConfig =>
  loadConfig(gatewayConfigSchema, env, 'gateway');
