import { z } from 'zod';
import { codeSchema, evaluateBatchSchema, municipalityCodeSchema, signedHeadField } from '../../shared/federation/protocol.ts';

const linkId = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url HMAC-SHA256 (43 characters)');
const compactJws = z.string().max(10_000).regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'must be a compact JWS');

/** POST /codes/evaluate, from a municipality only (docs/DESIGN.md §4.2): blinded points times k_G. */
export const gatewayEvaluateSchema = evaluateBatchSchema.extend({ head: signedHeadField }).strict();

/** POST /correspondence, from the issuer only. linkId is an HMAC (base64url of 32 bytes), never a My Number. */
export const correspondenceSchema = z.object({
  linkId,
  municipality: municipalityCodeSchema,
  code: codeSchema,
  attestation: compactJws,
}).strict();

export type CorrespondenceInput = z.infer<typeof correspondenceSchema>;

/**
 * Registrations per batch: the issuer's own batch limit. About 0.8 kB each, so a full batch stays
 * well inside the gateway's body limit (MAX_BATCH × 4 kB + 64 kB) for any MAX_BATCH ≥ 100.
 */
export const MAX_REGISTRATIONS_PER_BATCH = 500;

/** POST /correspondence/batch, from the issuer only: one call for a municipality's batch of codes. */
export const correspondenceBatchSchema = z.object({
  registrations: z.array(correspondenceSchema, { error: 'must be a list of registrations' })
    .min(1, 'must hold at least one registration')
    .max(MAX_REGISTRATIONS_PER_BATCH, `must hold at most ${MAX_REGISTRATIONS_PER_BATCH} registrations`),
  /** The issuer's signed log head (docs/PROTOCOL.md §3.0), kept by the gateway. */
  head: signedHeadField,
}).strict();

/** What became of one registration: recorded now, already recorded (same triple), or refused. */
export type CorrespondenceOutcome = 'created' | 'unchanged' | 'code_taken' | 'link_has_other_code';

/** One item of the batch answer, in request order. `reason` only with `refused`. */
export interface CorrespondenceResult {
  municipality: string;
  code: string;
  status: 'created' | 'unchanged' | 'refused';
  reason?: 'code_taken' | 'link_has_other_code';
}

/** POST /correspondence/rekey, from the issuer only: move the link of (municipality, code) to `linkId`. */
export const rekeyBatchSchema = z.object({
  rekeys: z.array(z.object({ municipality: municipalityCodeSchema, code: codeSchema, linkId }).strict(), { error: 'must be a list of rekeys' })
    .min(1, 'must hold at least one rekey')
    .max(MAX_REGISTRATIONS_PER_BATCH, `must hold at most ${MAX_REGISTRATIONS_PER_BATCH} rekeys`),
  head: signedHeadField,
}).strict();

export type RekeyInput = z.infer<typeof rekeyBatchSchema>['rekeys'][number];

/** What became of one rekey, with every (municipality, code) on the new link when not refused. */
export type RekeyResult =
  | { code: string; status: 'moved' | 'unchanged'; codes: { municipality: string; code: string }[] }
  | { code: string; status: 'refused'; reason: 'unknown_code' | 'link_has_other_code' };

/** POST /correspondence/attestations, from the issuer only: new attestations of existing rows (after a rekey). */
export const attestationsBatchSchema = z.object({
  attestations: z.array(compactJws, { error: 'must be a list of attestations' })
    .min(1, 'must hold at least one attestation')
    .max(4 * MAX_REGISTRATIONS_PER_BATCH, `must hold at most ${4 * MAX_REGISTRATIONS_PER_BATCH} attestations`),
  head: signedHeadField,
}).strict();
