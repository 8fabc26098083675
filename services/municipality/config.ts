import { z } from 'zod';
import { loadConfig, host, port, municipalityCode, secretKey, logLevel } from '../../shared/config.ts';

/** Configuration of one municipality instance. Secrets have no defaults. */
export const municipalityConfigSchema = z.object({
  MUNICIPALITY_CODE: municipalityCode,
  MUNICIPALITY_NAME: z.string().min(1).max(100),
  HOST: host,
  PORT: port,
  /** SQLite file of this municipality alone. */
  DATABASE_PATH: z.string().min(1).optional(),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  /** AES-256-GCM key for My Numbers at rest (32 bytes, hex or base64). */
  DATA_KEY: secretKey('DATA_KEY'),
  /** HMAC key for staff session tokens (32 bytes, hex or base64). */
  SESSION_SECRET: secretKey('SESSION_SECRET'),
  SESSION_TTL_SECONDS: z.coerce.number().int().min(60).max(12 * 3600).default(900),
  LOG_LEVEL: logLevel,
  /* Federation (issue 3 onwards): optional so that a municipality can run alone. */
  FEDERATION_PORT: port.optional(),
  CERT_DIR: z.string().min(1).optional(),
  GATEWAY_URL: z.url().optional(),
  ISSUER_URL: z.url().optional(),
}).refine((c) => c.DATABASE_PATH || c.DATABASE_URL, { message: 'DATABASE_PATH or DATABASE_URL is required', path: ['DATABASE_PATH'] });

export type MunicipalityConfig = z.infer<typeof municipalityConfigSchema>;

export const loadMunicipalityConfig = (env: Record<string, string | undefined> = process.env): MunicipalityConfig =>
  loadConfig(municipalityConfigSchema, env, 'municipality');
