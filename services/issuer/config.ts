import { z } from 'zod';
import { host, loadConfig, logLevel, port, secretKey } from '../../shared/platform/config.ts';
import { evaluateRateConfigShape, oprfKey } from '../../shared/federation/oprf-key.ts';
import { checkpointIntervalSeconds } from '../../shared/access-log/witness.ts';
import { revocationConfigShape } from '../../shared/federation/revocation.ts';

/** Configuration of the issuer. The four keys are secrets: no defaults, and the three HMAC keys must differ. */
export const issuerConfigSchema = z.object({
  HOST: host,
  PORT: port,
  /** This member's own PKI folder (ca.pem, tls.pem/key, enc.pem/key). */
  CERT_DIR: z.string().min(1),
  /** The gateway's federation (mTLS) base URL, where correspondences are registered. */
  GATEWAY_URL: z.url(),
  GATEWAY_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
  /** The issuer's share k_I of the code derivation's OPRF key (docs/DESIGN.md §3.4); the gateway holds k_G. */
  OPRF_KEY: oprfKey('OPRF_KEY'),
  /** linkId = HMAC-SHA256(LINK_KEY, seed), seed = the OPRF output the municipality finalized. */
  LINK_KEY: secretKey('LINK_KEY'),
  /** code = base32(HMAC-SHA256(CODE_KEY, municipality ‖ linkId)). */
  CODE_KEY: secretKey('CODE_KEY'),
  /** link in attestations = HMAC-SHA256(ATTESTATION_KEY, linkId). */
  ATTESTATION_KEY: secretKey('ATTESTATION_KEY'),
  /** Blinded-point evaluations (POST /codes/evaluate) one municipality may ask per window; above it, 429. */
  ...evaluateRateConfigShape,
  /** The issuer's own access log (it stores nothing else). */
  DATABASE_PATH: z.string().min(1).optional(),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  /* The CA-signed revocation list comes from the gateway (GET /revocations), like every member's. */
  ...revocationConfigShape,
  LOG_LEVEL: logLevel,
  /** Seconds between checkpoints of the issuer's log sent to the gateway for witnessing; 0 = off. */
  CHECKPOINT_INTERVAL_SECONDS: checkpointIntervalSeconds,
})
  .refine((c) => c.DATABASE_PATH || c.DATABASE_URL, { message: 'DATABASE_PATH or DATABASE_URL is required', path: ['DATABASE_PATH'] })
  .refine((c) => !c.LINK_KEY.equals(c.CODE_KEY) && !c.LINK_KEY.equals(c.ATTESTATION_KEY) && !c.CODE_KEY.equals(c.ATTESTATION_KEY), {
    message: 'LINK_KEY, CODE_KEY and ATTESTATION_KEY must be three different keys', path: ['CODE_KEY'],
  });

export type IssuerConfig = z.infer<typeof issuerConfigSchema>;

export const loadIssuerConfig = (env: Record<string, string | undefined> = process.env): IssuerConfig =>
  loadConfig(issuerConfigSchema, env, 'issuer');
