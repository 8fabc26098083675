import { z } from 'zod';
import { isValidMunicipalityCode } from '../../shared/identifiers.ts';
import { codeSchema } from '../../shared/protocol.ts';

/** POST /correspondence, from the issuer only. linkId is an HMAC (base64url of 32 bytes), never a My Number. */
export const correspondenceSchema = z.object({
  linkId: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url HMAC-SHA256 (43 characters)'),
  municipality: z.string().refine(isValidMunicipalityCode, 'must be a municipality code with a valid check digit'),
  code: codeSchema,
  attestation: z.string().max(10_000).regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'must be a compact JWS'),
}).strict();

export type CorrespondenceInput = z.infer<typeof correspondenceSchema>;
