/**
 * The issuer's OpenAPI 3.1 document (docs/PROTOCOL.md §2): its mTLS API, for members only.
 * Request bodies are the zod schemas its routes parse with (./schemas.ts); no route takes a My
 * Number (docs/DESIGN.md §4.2), and a refusal never echoes a value.
 */
import { z } from 'zod';
import { buildOpenApiDocument, openApiOperation, type OpenApiDocument } from '../../shared/platform/openapi.ts';
import { codeSchema, ISSUER_ID, signedHeadField } from '../../shared/federation/protocol.ts';
import { HEADS_PATH } from '../../shared/access-log/heads.ts';
import { witnessedHeadsOperation } from '../../shared/access-log/openapi.ts';
import { evaluateSchema, issueCodeSchema, issueCodesSchema, rekeyCodesSchema } from './schemas.ts';

/** Version of the document (the issuer's API as this tree serves it). */
export const API_VERSION = '0.1.0';

const issued = z.object({ code: codeSchema, attestation: z.string().describe('The issuer\'s attestation (compact JWS) that the code belongs to a link') });

/** The issuer's document: for members only, behind the member identity check. */
export function issuerDocument(): OpenApiDocument {
  return buildOpenApiDocument({
    title: 'hikitsugi issuer: member API',
    version: API_VERSION,
    port: 'member',
    description: 'The issuer evaluates blinded points with its share of the OPRF key and derives each municipality\'s code (符号) from the seed '
      + 'the municipality finalized, then registers the correspondence with the gateway (docs/DESIGN.md §3.4, §4.2); it never receives a My Number '
      + 'and stores nothing but its access log. A refusal names the field (`seed`, `seeds.N`, `blinded.N`), never its value. '
      + 'Errors are application/problem+json (RFC 9457); a gateway that cannot be reached is 503 with retryAfter.',
    operations: [
      openApiOperation({ members: 'any' }),
      {
        method: 'get', path: '/health', summary: 'Liveness', tags: ['health'], access: { members: 'any' },
        responses: { 200: { description: 'The process answers', body: z.object({ status: z.literal('ok'), member: z.literal(ISSUER_ID) }) } },
      },
      {
        method: 'get', path: '/ready', summary: 'Readiness: own database; the gateway reported', tags: ['health'], access: { members: 'any' },
        responses: {
          200: {
            description: 'Ready (503 problem not-ready otherwise)',
            body: z.looseObject({ status: z.literal('ready'), ready: z.literal(true), member: z.string(), degraded: z.boolean() }),
          },
        },
      },
      {
        method: 'post', path: '/codes/evaluate', summary: 'Blind code derivation: a municipality\'s blinded points times the issuer\'s key share k_I', tags: ['codes'],
        access: { members: ['municipality'] },
        description: 'docs/DESIGN.md §4.2: B = r·H(My Number) in, k_I·B out, in order; the gateway applies k_G next. Every point must be a compressed '
          + 'P-256 point on the curve (400 naming `blinded.N`).',
        body: evaluateSchema,
        responses: { 200: { description: 'One point per point sent, in order, and the issuer\'s signed log head (docs/PROTOCOL.md §3.0)', body: z.object({ evaluated: z.array(z.string()), head: signedHeadField }) } },
      },
      {
        method: 'post', path: '/codes/rekey', summary: 'Codes of the old derivation moved to their seeds\' links, codes kept', tags: ['codes'], access: { members: ['municipality'] },
        description: 'Migration (docs/DESIGN.md §4.2): the gateway moves every row of each code\'s person to HMAC(LINK_KEY, seed); the issuer attests them anew.',
        body: rekeyCodesSchema,
        responses: {
          200: {
            description: 'One result per item, in order',
            body: z.object({
              results: z.array(z.union([
                z.object({ code: codeSchema, status: z.enum(['moved', 'unchanged']) }),
                z.object({ code: codeSchema, error: z.literal('rekey-refused'), reason: z.enum(['unknown_code', 'link_has_other_code']) }),
              ])),
              head: signedHeadField,
            }),
          },
        },
      },
      {
        method: 'post', path: '/codes', summary: 'The asking municipality\'s code for one seed', tags: ['codes'], access: { members: ['municipality'] },
        description: 'The municipality is the certificate\'s CN, never a body field.',
        body: issueCodeSchema,
        responses: { 200: { description: 'The code with its attestation, and the issuer\'s signed log head (docs/PROTOCOL.md §3.0)', body: issued.extend({ head: signedHeadField }) } },
      },
      {
        method: 'post', path: '/codes/batch', summary: 'Codes for a batch of seeds, in request order', tags: ['codes'], access: { members: ['municipality'] },
        body: issueCodesSchema,
        responses: {
          200: {
            description: 'One item per seed: a code, or the reason the gateway refused it',
            body: z.object({
              codes: z.array(z.union([issued, z.object({ error: z.literal('correspondence-conflict'), reason: z.enum(['code_taken', 'link_has_other_code']) })])),
              head: signedHeadField,
            }),
          },
        },
      },
      witnessedHeadsOperation(HEADS_PATH, ['municipality', 'gateway']),
    ],
  });
}
