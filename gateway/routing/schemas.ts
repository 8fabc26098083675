import { z } from 'zod';

const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const compactJwe = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * POST /queries: B's signed query, as a compact JWS, and beside it the identity checks sealed for
 * the source, which the query names by digest (docs/PROTOCOL.md §3.11). Lengths are bounded by the body limit.
 */
export const queryRequestSchema = z.object({
  query: z.string().min(1).regex(compactJws, 'must be a compact JWS'),
  sealed: z.string().min(1).regex(compactJwe, 'must be a compact JWE'),
}).strict();

/** What A sends back for a forward: its signed answer and, beside it, the records envelope the answer names. */
export const answerResponseSchema = z.object({
  answer: z.string().min(1).regex(compactJws, 'must be a compact JWS'),
  records: z.string().min(1).regex(compactJwe, 'must be a compact JWE').optional(),
}).strict();

/** Bytes a query may take per subject (sealed identity check, consent terms, base64url overhead). */
export const BYTES_PER_SUBJECT = 4096;

/** The body limit that lets a batch of `maxBatch` subjects through, and nothing much larger. */
export const queryBodyLimit = (maxBatch: number): number => maxBatch * BYTES_PER_SUBJECT + 64 * 1024;
