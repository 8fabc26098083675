import { z } from 'zod';
import { codeSchema, evaluateBatchSchema, seedSchema, signedHeadField } from '../../shared/federation/protocol.ts';

/*
 * The issuer never receives a My Number (docs/DESIGN.md §4.2): blinded points to evaluate, then
 * the seeds the municipality finalized. A rule never quotes a value, and unknown keys are dropped
 * rather than named.
 */

/** POST /codes/evaluate: a batch of blinded elements, multiplied by the issuer's key share k_I. */
export const evaluateSchema = evaluateBatchSchema.extend({ head: signedHeadField });

/** POST /codes: one seed. */
export const issueCodeSchema = z.object({ seed: seedSchema, head: signedHeadField });

/** Seeds per POST /codes/batch (the body limit is sized for it). */
export const MAX_CODES_PER_BATCH = 500;

/**
 * POST /codes/batch: a field at fault is named by its index (`seeds.3`), never by its value;
 * one bad seed refuses the batch, and nothing is issued.
 */
export const issueCodesSchema = z.object({
  seeds: z.array(seedSchema, { error: 'must be a list of seeds' })
    .min(1, 'must hold at least one seed')
    .max(MAX_CODES_PER_BATCH, `must hold at most ${MAX_CODES_PER_BATCH} seeds`),
  /** The sender's signed log head (docs/PROTOCOL.md §3.0), kept by the issuer. */
  head: signedHeadField,
});

/** POST /codes/rekey (docs/DESIGN.md §4.2, migration): codes issued under the old derivation, each with its resident's seed. */
export const rekeyCodesSchema = z.object({
  rekeys: z.array(z.object({ code: codeSchema, seed: seedSchema }), { error: 'must be a list of { code, seed }' })
    .min(1, 'must hold at least one item')
    .max(MAX_CODES_PER_BATCH, `must hold at most ${MAX_CODES_PER_BATCH} items`),
  head: signedHeadField,
});

/** The gateway's answer to POST /correspondence/batch, checked before any code is handed out. */
export const correspondenceBatchAnswerSchema = z.object({
  results: z.array(z.discriminatedUnion('status', [
    z.object({ municipality: z.string(), code: codeSchema, status: z.enum(['created', 'unchanged']) }),
    z.object({ municipality: z.string(), code: codeSchema, status: z.literal('refused'), reason: z.enum(['code_taken', 'link_has_other_code']) }),
  ])),
  /** The gateway's signed log head (docs/PROTOCOL.md §3.0), verified before anything is kept. */
  head: z.unknown(),
});

/** The gateway's answer to POST /correspondence/rekey: per item, every (municipality, code) now on the new link. */
export const rekeyAnswerSchema = z.object({
  results: z.array(z.discriminatedUnion('status', [
    z.object({ code: codeSchema, status: z.enum(['moved', 'unchanged']), codes: z.array(z.object({ municipality: z.string(), code: codeSchema })).min(1) }),
    z.object({ code: codeSchema, status: z.literal('refused'), reason: z.enum(['unknown_code', 'link_has_other_code']) }),
  ])),
  /** The gateway's signed log head (docs/PROTOCOL.md §3.0), verified before anything is kept. */
  head: z.unknown(),
});

/** The gateway's answer to POST /correspondence/attestations: one result per attestation, in order. */
export const attestationsAnswerSchema = z.object({
  results: z.array(z.object({ municipality: z.string(), code: codeSchema, status: z.enum(['replaced', 'unknown']) })),
  /** The gateway's signed log head (docs/PROTOCOL.md §3.0), verified before anything is kept. */
  head: z.unknown(),
});
