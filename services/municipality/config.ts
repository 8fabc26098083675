import { z } from 'zod';
import { loadConfig, host, port, municipalityCode, secretKey, logLevel } from '../../shared/platform/config.ts';
import { rateLimitCount, rateWindowSeconds } from '../../shared/platform/rate-limit.ts';
import { checkpointIntervalSeconds } from '../../shared/access-log/witness.ts';
import { revocationConfigShape } from '../../shared/federation/revocation.ts';
import { alertConfigShape } from '../../shared/access-log/alerts.ts';
import { signInConfigShape } from '../../shared/staff/sign-in.ts';
import { parseHealthCardKey } from '../../shared/crypto.ts';

/** How notices of cross-municipality access reach residents: by post, or in the resident portal. */
export const NOTICE_CHANNELS = ['mail', 'portal'] as const;

/**
 * The key that signs this municipality's vaccination certificates (SMART Health Cards, docs/DESIGN.md
 * §4.11), read like DATA_KEY: text in the environment, a key object after parsing. An EC P-256
 * private key as PKCS#8 PEM or a private JWK; the refusal names the setting, never the value.
 */
const healthCardKey = (name: string) => z.string().transform((text, ctx) => {
  try {
    return parseHealthCardKey(text, name);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

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
  /**
   * The SMART Health Card signing key (ES256). Optional, with no default: without it the
   * certificate routes and the JWKS answer 503 naming this setting, and the rest works as before.
   */
  SHC_SIGNING_KEY: healthCardKey('SHC_SIGNING_KEY').optional(),
  /**
   * The public base URL where this municipality serves its JWKS (`<url>/.well-known/jwks.json`):
   * the `iss` of its cards. Unset, a card names the origin the clerk's request reached.
   */
  SHC_ISSUER_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .refine((url) => !url.endsWith('/'), 'must not end with a slash (the JWKS is at <url>/.well-known/jwks.json)')
    .refine((url) => !/[?#]/.test(url), 'must have no query or fragment')
    .optional(),
  /** A session's lifetime; tokens claiming a longer one are refused (at most 12 hours). */
  SESSION_TTL_SECONDS: z.coerce.number().int().min(60).max(12 * 3600).default(900),
  /* Sign-in throttling and lockout (shared/staff/sign-in.ts). */
  ...signInConfigShape,
  LOG_LEVEL: logLevel,
  /* Federation (docs/DESIGN.md §2.2): optional so that a municipality can run alone. */
  FEDERATION_PORT: port.optional(),
  CERT_DIR: z.string().min(1).optional(),
  GATEWAY_URL: z.url().optional(),
  ISSUER_URL: z.url().optional(),
  /* The CA-signed revocation list, from the gateway (GET /revocations), held in this database. */
  ...revocationConfigShape,
  /** Seconds between signed checkpoints of the log head sent to the gateway (federated only); 0 = off. */
  CHECKPOINT_INTERVAL_SECONDS: checkpointIntervalSeconds,
  /* Bulk move-in queries (docs/DESIGN.md §4.8): subjects per signed query, retry backoff, pacing. */
  BULK_CHUNK_SIZE: z.coerce.number().int().min(1).max(1000).default(200),
  /** Longest wait before retrying a `source_unavailable` subject (caps the backoff and retry-after). */
  BULK_RETRY_MAX_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
  /** Automatic attempts per subject before it stays `source_unavailable` (an on-demand retry reopens it). */
  BULK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(1000).default(20),
  /** Pause between chunks, to spare the source municipalities during office hours. */
  BULK_CHUNK_PAUSE_MS: z.coerce.number().int().min(0).max(600_000).default(0),
  /** Days after a move-in during which the new municipality may ask earlier ones (the move-in capability, docs/DESIGN.md §4.6); 0 = never. */
  MOVE_IN_QUERY_WINDOW_DAYS: z.coerce.number().int().min(0).max(3650).default(90),
  /** Query requests (single and bulk) one staff account may send per window; above it, 429 with Retry-After. */
  STAFF_QUERY_LIMIT: rateLimitCount(300),
  STAFF_QUERY_WINDOW_SECONDS: rateWindowSeconds(60),
  /** Resident sign-in (challenges and sign-ins) per client address: a signature is cheap to check, not free. */
  RESIDENT_SIGNIN_ADDRESS_LIMIT: rateLimitCount(30),
  RESIDENT_SIGNIN_ADDRESS_WINDOW_SECONDS: rateWindowSeconds(60),
  /*
   * Thresholds of the anomaly detectors: the shared ones, plus the staff-volume rule — a staff
   * member is flagged when they sent at least ALERT_STAFF_QUERY_MIN query subjects in the window
   * AND at least ALERT_STAFF_QUERY_FACTOR times the median of their peers (the other clerks and
   * operators, counting those who sent none).
   */
  ...alertConfigShape,
  ALERT_STAFF_QUERY_MIN: z.coerce.number().int().min(1).max(1_000_000).default(20),
  ALERT_STAFF_QUERY_FACTOR: z.coerce.number().min(1).max(1000).default(3),
  /** How notices of cross-municipality access reach residents. */
  NOTICE_CHANNEL: z.enum(NOTICE_CHANNELS).default('mail'),
  /** Seconds between rounds of the notice worker (new notices from the log, then delivery); 0 = on demand only. */
  NOTICE_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(86_400).default(30),
  /*
   * Retention by the national rule (docs/DESIGN.md §4.13), per record kind: how many years after
   * the resident's death (the date the death took effect, in Japan's calendar) the records are
   * kept. Records made here, and imported copies from other municipalities; the resident's
   * personal data goes when every kind's period has passed.
   */
  RETENTION_VACCINATION_YEARS_AFTER_DEATH: z.coerce.number().int().min(1).max(150).default(5),
  RETENTION_IMPORTED_YEARS_AFTER_DEATH: z.coerce.number().int().min(1).max(150).default(5),
  /** Seconds between runs of the retention job (default daily); 0 = only when a privacy officer runs it. */
  RETENTION_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(31 * 86_400).default(86_400),
}).refine((c) => c.DATABASE_PATH || c.DATABASE_URL, { message: 'DATABASE_PATH or DATABASE_URL is required', path: ['DATABASE_PATH'] });

export type MunicipalityConfig = z.infer<typeof municipalityConfigSchema>;

export const loadMunicipalityConfig = (env: Record<string, string | undefined> = process.env): MunicipalityConfig =>
  loadConfig(municipalityConfigSchema, env, 'municipality');
