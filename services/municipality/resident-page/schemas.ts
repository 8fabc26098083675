import { z } from 'zod';
import { freeText } from '../../../shared/platform/validation.ts';

/** What the resident page's routes accept (docs/DESIGN.md §4.14). */
const certificatePem = z.string().min(1, 'is required').max(10_000, 'must be at most 10000 characters').includes('BEGIN CERTIFICATE', { message: 'must be a PEM certificate' });
export const enrolSchema = z.object({ certificate: certificatePem }).strict();
export const signInSchema = z.object({
  certificate: certificatePem,
  signature: z.string().min(1, 'is required').max(4_000, 'must be at most 4000 characters').regex(/^[\w-]+\.[\w-]+\.[\w-]+$/, 'must be a compact JWS'),
}).strict();
export const residentRevokeSchema = z.object({ reason: freeText({ max: 200 }).optional() }).strict();
