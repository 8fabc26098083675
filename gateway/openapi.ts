/**
 * The gateway's OpenAPI 3.1 documents (docs/PROTOCOL.md §2): its member (mTLS) API, for members
 * only, and its privacy officers' staff port. Request bodies and query strings are the zod
 * schemas each folder's routes parse with (`schemas.ts`, shared/federation/protocol.ts); the
 * answers' shapes are listed here as the routes send them.
 */
import { gatewayTrailRequestBodySchema, gatewayTrailResponseSchema, trailRequestBodySchema, trailResponseSchema } from './trail/schemas.ts';
import { GATEWAY_TRAIL_PATH, TRAIL_REQUESTS_PATH } from '../shared/federation/protocol.ts';
import { z } from 'zod';
import { buildOpenApiDocument, openApiOperation, readyReportSchema, type OpenApiDocument, type OperationSpec } from '../shared/platform/openapi.ts';
import { codeSchema, CONSENT_REVOCATIONS_GATEWAY_PATH, directoryEntrySchema, GATEWAY_ID, ISSUER_ID, signedHeadField, SUBJECT_STATUSES } from '../shared/federation/protocol.ts';
import { HEADS_PATH } from '../shared/access-log/heads.ts';
import { accessLogComponents, alertOperations, auditConsoleOperations, witnessedHeadsOperation } from '../shared/access-log/openapi.ts';
import { staffAuthOperations, staffComponents } from '../shared/staff/openapi.ts';
import { listCheckpointsQuery, memberEntriesQuery, submitCheckpointSchema } from './access-log/schemas.ts';
import { attestationsBatchSchema, correspondenceBatchSchema, correspondenceSchema, gatewayEvaluateSchema, rekeyBatchSchema } from './codes/schemas.ts';
import { relayRequestSchema } from './notifications/schemas.ts';
import { RELAY_STATUSES } from './notifications/model.ts';
import { consentRevocationRequestSchema } from './consent-revocations/schemas.ts';
import { queryRequestSchema } from './routing/schemas.ts';

/** Version of the documents (the member and staff APIs as this tree serves them). */
export const API_VERSION = '0.1.0';

const hash = z.string().regex(/^[0-9a-f]{64}$/);
const nullableString = z.string().nullable();

/** One gateway entry about the asking municipality's exchanges: metadata only (shared/access-log/witness.ts). */
const gatewayEntryView = z.object({
  seq: z.number().int(),
  at: z.string(),
  requestId: z.string(),
  action: z.string(),
  actor: z.string(),
  actingMunicipality: nullableString,
  role: z.enum(['requester', 'source']),
  counterpart: z.enum(['received', 'forwarded']).nullable(),
  wholeRequest: z.boolean(),
  source: nullableString,
  ref: nullableString,
  status: nullableString,
  purpose: nullableString,
  legalBasis: nullableString,
  outcome: z.string(),
  reason: nullableString,
  flags: z.array(z.string()),
});

/** What the gateway returns to B for a query (`QueryResponse`, shared/federation/protocol.ts). */
const queryResponse = z.object({
  requestId: z.string(),
  results: z.array(z.object({
    ref: z.string(), source: z.string(), status: z.enum(SUBJECT_STATUSES), reason: z.string().optional(), retryAfter: z.number().int().optional(),
  })),
  answers: z.array(z.object({
    answer: z.string().describe('A\'s signed answer (compact JWS), verified by B'),
    records: z.string().optional().describe('The records envelope the answer names by digest (JWE for B)'),
  })),
});

const issuerOnly = { members: [ISSUER_ID] } as const;
const municipalities = { members: ['municipality'] } as const;

function memberOperations(): OperationSpec[] {
  return [
    openApiOperation({ members: 'any' }),
    {
      method: 'get', path: '/health', summary: 'Liveness', tags: ['health'], access: { members: 'any' },
      responses: { 200: { description: 'The process answers', body: z.object({ status: z.literal('ok'), member: z.literal(GATEWAY_ID), members: z.number().int() }) } },
    },
    {
      method: 'get', path: '/ready', summary: 'Readiness: own database; the municipalities it routes to are reported', tags: ['health'], access: { members: 'any' },
      responses: { 200: { description: 'Ready (503 problem not-ready otherwise)', body: readyReportSchema } },
    },
    {
      method: 'get', path: '/directory', summary: 'The directory: members, endpoints and certificates (verified by each member against the CA)', tags: ['directory'],
      access: { members: 'any' },
      responses: { 200: { description: 'Directory entries', body: z.array(directoryEntrySchema) } },
    },
    {
      method: 'get', path: '/revocations', summary: 'The CA-signed revocation list, relayed unchanged', tags: ['directory'], access: { members: 'any' },
      responses: { 200: { description: 'The list (compact JWS); 404 when the gateway holds none', body: z.object({ revocations: z.string() }) } },
    },
    {
      method: 'post', path: '/codes/evaluate', summary: 'Blind code derivation: a municipality\'s points times the gateway\'s key share k_G', tags: ['codes'],
      access: { members: ['municipality'] },
      description: 'docs/DESIGN.md §4.2: the points the issuer evaluated (k_I·r·H(My Number)), in order. Municipalities only: the issuer, which holds k_I, '
        + 'may not ask. Every point must be a compressed P-256 point on the curve (400 naming `blinded.N`).',
      body: gatewayEvaluateSchema,
      responses: { 200: { description: 'One point per point sent, in order, and the gateway\'s signed log head (docs/PROTOCOL.md §3.0)', body: z.object({ evaluated: z.array(z.string()), head: signedHeadField }) } },
    },
    {
      method: 'post', path: '/correspondence/rekey', summary: 'The issuer moves a person\'s rows to the link of the blind derivation, codes kept', tags: ['codes'], access: issuerOnly,
      description: 'Migration of codes of the old derivation (docs/DESIGN.md §4.2): every row of the link of (municipality, code) moves to `linkId`.',
      body: rekeyBatchSchema,
      responses: {
        200: {
          description: 'One result per rekey, in order: every (municipality, code) now on the new link, or why not',
          body: z.object({
            results: z.array(z.object({
              code: codeSchema, status: z.enum(['moved', 'unchanged', 'refused']),
              codes: z.array(z.object({ municipality: z.string(), code: codeSchema })).optional(),
              reason: z.enum(['unknown_code', 'link_has_other_code']).optional(),
            })),
            head: signedHeadField,
          }),
        },
      },
    },
    {
      method: 'post', path: '/correspondence/attestations', summary: 'The issuer replaces the attestations of rows after a rekey', tags: ['codes'], access: issuerOnly,
      body: attestationsBatchSchema,
      responses: {
        200: {
          description: 'One result per attestation, in order',
          body: z.object({ results: z.array(z.object({ municipality: z.string(), code: codeSchema, status: z.enum(['replaced', 'unknown']) })), head: signedHeadField }),
        },
      },
    },
    {
      method: 'post', path: '/correspondence', summary: 'The issuer records that a municipality\'s code belongs to a link', tags: ['codes'], access: issuerOnly,
      body: correspondenceSchema,
      responses: {
        200: { description: 'Already recorded (same triple)', body: z.object({ municipality: z.string(), code: codeSchema, created: z.literal(false) }) },
        201: { description: 'Recorded', body: z.object({ municipality: z.string(), code: codeSchema, created: z.literal(true) }) },
      },
    },
    {
      method: 'post', path: '/correspondence/batch', summary: 'A batch of the issuer\'s registrations: one result per item, in order', tags: ['codes'], access: issuerOnly,
      body: correspondenceBatchSchema,
      responses: {
        200: {
          description: 'Results in request order, and the gateway\'s signed log head (docs/PROTOCOL.md §3.0)',
          body: z.object({
            results: z.array(z.object({
              municipality: z.string(), code: z.string(), status: z.enum(['created', 'unchanged', 'refused']),
              reason: z.enum(['code_taken', 'link_has_other_code']).optional(),
            })),
            head: signedHeadField,
          }),
        },
      },
    },
    {
      method: 'post', path: '/queries', summary: 'B\'s signed query: routed to each source, A\'s signed answers returned', tags: ['routing'], access: municipalities,
      description: 'docs/PROTOCOL.md §3 (QueryClaims). Rate-limited per member (429 with Retry-After).',
      body: queryRequestSchema,
      responses: { 200: { description: 'A status per subject and the sources\' answers', body: queryResponse, headers: { 'X-Request-Id': 'The query\'s own trace id, shared by the three logs' } } },
    },
    {
      method: 'post', path: TRAIL_REQUESTS_PATH, summary: 'B\'s signed trail request for a resident signed in at B: routed to the municipality they lived in', tags: ['routing'],
      access: municipalities,
      description: 'docs/PROTOCOL.md §3.10 (TrailRequestClaims). Checked and translated like a query subject; the resident\'s proof is sealed for the source and '
        + 'its entries for B, so the gateway reads neither. Rate-limited per member (429 with Retry-After).',
      body: trailRequestBodySchema,
      responses: { 200: { description: 'The source\'s signed answer unchanged, or the gateway\'s status when none came', body: trailResponseSchema, headers: { 'X-Request-Id': 'The request\'s own trace id' } } },
    },
    {
      method: 'post', path: GATEWAY_TRAIL_PATH, summary: 'B\'s signed request for the gateway\'s own entries about a resident of B', tags: ['routing'],
      access: municipalities,
      description: 'docs/PROTOCOL.md §3.10 (GatewayTrailRequestClaims). Names B\'s code only; answered on B\'s word. The entries (no codes, no staff ids) are signed '
        + 'by the gateway and sealed for B; `denied`/`code_not_yours` when the code is not B\'s. 409 `replayed`. Rate-limited per member (429 with Retry-After).',
      body: gatewayTrailRequestBodySchema,
      responses: { 200: { description: 'The gateway\'s signed answer', body: gatewayTrailResponseSchema } },
    },
    {
      method: 'post', path: '/corrections', summary: 'A source\'s signed correction notice, relayed to its recipient', tags: ['corrections'], access: municipalities,
      body: relayRequestSchema,
      responses: { 202: { description: 'Accepted for relay', body: z.object({ id: z.string(), status: z.enum(['queued', ...RELAY_STATUSES.filter((s) => s !== 'pending')]) }) } },
    },
    {
      method: 'post', path: CONSENT_REVOCATIONS_GATEWAY_PATH, summary: 'A requester\'s signed consent revocation: recorded, then relayed to each source', tags: ['consents'],
      description: 'docs/PROTOCOL.md §3.9 (ConsentRevocationClaims). Idempotent: the same consent revoked again answers 200 and is recorded once.',
      access: municipalities, body: consentRevocationRequestSchema,
      responses: Object.fromEntries(([[200, 'Already recorded'], [201, 'Recorded and queued for each source']] as const).map(([status, description]) => [status, {
        description, body: z.object({ consentId: z.string(), status: z.enum(['recorded', 'already_recorded']) }),
      }])),
    },
    {
      method: 'post', path: '/checkpoints', summary: 'A member\'s signed checkpoint of its own head: the gateway countersigns', tags: ['checkpoints'],
      access: { members: ['municipality', 'issuer'] }, body: submitCheckpointSchema,
      responses: Object.fromEntries(([[200, 'Already held (idempotent on resend)'], [201, 'Witnessed']] as const).map(([status, description]) => [status, {
        description, body: z.object({ member: z.string(), seq: z.number().int(), hash, countersignature: z.string() }),
      }])),
    },
    {
      method: 'get', path: '/checkpoints', summary: 'Checkpoints the gateway holds about a member: hashes and sequence numbers only', tags: ['checkpoints'],
      access: { members: ['municipality', 'issuer'] }, query: listCheckpointsQuery,
      responses: {
        200: {
          description: 'Checkpoints',
          body: z.object({
            checkpoints: z.array(z.object({
              member: z.string(), seq: z.number().int(), hash, at: z.string(), jws: z.string(), witnessedBy: nullableString, countersignature: nullableString,
            })),
          }),
        },
      },
    },
    witnessedHeadsOperation(HEADS_PATH, ['municipality', 'issuer']),
    {
      method: 'get', path: '/audit/entries', summary: 'The gateway\'s entries about the asking municipality\'s exchanges (its own code only)', tags: ['access log'],
      access: municipalities, query: memberEntriesQuery,
      responses: { 200: { description: 'One page, oldest first', body: z.object({ entries: z.array(gatewayEntryView), nextAfter: z.number().int().nullable() }) } },
    },
  ];
}

/** The member (mTLS) API's document: for members only, behind the member identity check. */
export function gatewayMemberDocument(): OpenApiDocument {
  return buildOpenApiDocument({
    title: 'hikitsugi gateway: member API',
    version: API_VERSION,
    port: 'member',
    description: 'The gateway\'s mTLS API (docs/PROTOCOL.md §2): directory, code correspondence, query routing, correction relay, consent revocations, checkpoints '
      + 'and the gateway\'s entries about a member. Errors are application/problem+json (RFC 9457); every 4xx is logged as refused.',
    operations: memberOperations(),
  });
}

/** The privacy officers' staff port: its document is public (no personal data in it). */
export function gatewayStaffDocument(): OpenApiDocument {
  return buildOpenApiDocument({
    title: 'hikitsugi gateway: staff API',
    version: API_VERSION,
    port: 'staff',
    description: 'The gateway\'s staff port (plain HTTP, 127.0.0.1): its privacy officers read, verify and export the gateway\'s access log; '
      + 'its administrators hold accounts. Errors are application/problem+json (RFC 9457). The console page is served under /console/.',
    components: { ...staffComponents, ...accessLogComponents },
    operations: [
      openApiOperation({ public: true }),
      {
        method: 'get', path: '/health', summary: 'Liveness', tags: ['health'], access: { public: true },
        responses: { 200: { description: 'The process answers', body: z.object({ status: z.literal('ok'), member: z.literal(GATEWAY_ID), staff: z.literal(true) }) } },
      },
      ...staffAuthOperations({
        adminRoles: ['admin'],
        me: {
          reconcile: z.boolean().describe('Whether this console offers reconciliation (never at the gateway)'),
          subjects: z.string().describe('What the console\'s subject filter takes here (codes)'),
          residentSearch: z.boolean().describe('Whether the console can find residents by name (never at the gateway)'),
        },
      }),
      ...auditConsoleOperations(['privacy_officer']),
      ...alertOperations(['privacy_officer']),
    ],
  });
}
