/**
 * The OpenAPI 3.1 documents of one municipality (docs/PROTOCOL.md §2): its staff API (plain HTTP,
 * public document: it holds no personal data) and its federation (mTLS) API, for members only.
 * Request bodies, query strings and path parameters are the zod schemas each folder's routes
 * parse with (`schemas.ts`); the answers' shapes are listed here, field by field, as the routes
 * send them. The FHIR R4 API under /fhir/R4 is described by its own CapabilityStatement
 * (GET /fhir/R4/metadata), not here.
 */
import { z } from 'zod';
import { buildOpenApiDocument, openApiOperation, readyReportSchema, type OpenApiDocument, type OperationSpec } from '../../shared/platform/openapi.ts';
import {
  CONSENT_REVOCATIONS_PATH, CORRECTION_NOTICES_PATH, FEDERATION_TRAIL_PATH, municipalityCodeSchema, SUBJECT_STATUSES, TRAIL_STATUSES, trailItemSchema, gatewayTrailItemSchema,
} from '../../shared/federation/protocol.ts';
import { MEMBER_HEADS_PATH } from '../../shared/access-log/heads.ts';
import { listRemovalsSchema, removalView, runReportView } from './retention/schemas.ts';
import { accessLogComponents, alertOperations, auditConsoleOperations, witnessedHeadsOperation } from '../../shared/access-log/openapi.ts';
import { signInLockView, staffAccountView, staffAuthOperations, staffComponents } from '../../shared/staff/openapi.ts';
import { createStaffSchema } from './staff/schemas.ts';
import { IDEMPOTENCY_HEADER, idempotencyKeySchema } from './idempotency/schemas.ts';
import {
  addresseeNumberSchema, createResidentSchema, RESIDENT_STATUSES, searchResidentsSchema, SEXES, updateResidentSchema,
} from './residents/schemas.ts';
import {
  approveReviewSchema, correctionSchema, fromTicketSchema, issueTicketSchema, listReviewsSchema, recordIdSchema, recordInputSchema,
  rejectReviewSchema, reviewIdSchema, voidSchema,
} from './vaccinations/schemas.ts';
import { RECORD_STATUSES, REVIEW_STATUSES } from './vaccinations/model.ts';
import { consentInputSchema, relayedRevocationSchema, residentSignedConsentSchema, revocationOutboxQuerySchema, revokeSchema } from './consents/schemas.ts';
import { REVOCATION_OUTBOX_STATUSES } from './consents/model.ts';
import { NOTICE_KINDS, DELIVERY_STATUSES } from './notices/model.ts';
import { exceptionRequestSchema, exceptionStatusSchema } from './exceptions/schemas.ts';
import { EXCEPTION_STATUSES } from './exceptions/model.ts';
import { moveInSchema, moveOutSchema } from './moves/schemas.ts';
import { OUTBOX_STATUSES, NOTICE_OUTCOMES } from './corrections/model.ts';
import { outboxQuerySchema, relayedNoticeSchema } from './corrections/schemas.ts';
import { querySchema } from './asking/schemas.ts';
import { bulkQuerySchema, jobIdSchema, listSubjectsSchema, SUBJECT_STATES } from './asking/bulk/schemas.ts';
import { BULK_PATH } from './asking/bulk/routes.ts';
import { ROLES } from './staff/roles.ts';
import { JWKS_PATH } from './certificates/routes.ts';
import { HEALTH_CARD_MEDIA_TYPE, MAX_SINGLE_QR_JWS } from './certificates/shc.ts';
import { recordRequestSchema } from './answering/schemas.ts';
import { CREDENTIAL_KINDS } from './resident-page/model.ts';
import { trailForwardBodySchema } from './trail/routes.ts';
import { enrolSchema, residentRevokeSchema, signInSchema } from './resident-page/schemas.ts';

/** Version of the documents (the staff and federation APIs as this tree serves them). */
export const API_VERSION = '0.1.0';

const nullable = <T extends z.ZodType>(schema: T) => schema.nullable();
const count = z.number().int().min(0);
const subjectStatus = z.enum(SUBJECT_STATUSES);

/* ---------- answers' shapes ---------- */

/** What staff see of a resident: the My Number masked, no internal id. */
const residentView = z.object({
  addresseeNumber: z.string(),
  name: z.string(),
  kana: z.string(),
  birthDate: z.string(),
  sex: z.enum(SEXES),
  address: z.string(),
  status: z.enum(RESIDENT_STATUSES),
  myNumberMasked: z.string().describe('The My Number with all but its last four digits masked'),
  codeStatus: z.enum(['pending', 'issued']),
  previousMunicipality: nullable(z.string()),
  movedInAt: nullable(z.string()),
  movedOutAt: nullable(z.string()),
  moveOutDestination: nullable(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), page: z.number().int(), pageSize: z.number().int(), total: count });

/** One version of a vaccination record (append-only: corrections and voids are new versions). */
const recordView = z.object({
  recordId: z.uuid(),
  version: z.number().int().min(1),
  versionId: z.string(),
  supersedes: nullable(z.string()),
  occurrenceDate: z.string(),
  vaccineCode: z.string(),
  vaccineDisplay: z.string(),
  lotNumber: nullable(z.string()).describe('Null on an imported copy whose purpose did not release it'),
  doseNumber: z.number().int(),
  ticketNumber: nullable(z.string()),
  place: nullable(z.string()),
  status: z.enum(RECORD_STATUSES),
  current: z.boolean(),
  reason: nullable(z.string()),
  recordedBy: z.string(),
  recordedAt: z.string(),
  provenance: nullable(z.object({
    sourceMunicipality: z.string(), sourceRecordId: nullable(z.string()), sourceVersion: nullable(z.number().int()),
    importRequestId: nullable(z.string()), retrievedAt: nullable(z.string()), purpose: nullable(z.string()),
  })),
});

const ticketView = z.object({
  ticketNumber: z.string(), type: z.number().int(), doseNumber: z.number().int(), issuedAt: z.string(), used: z.boolean(),
  ocrLine: z.string().describe('The 18-digit OCR line printed on the ticket'),
});

const reviewView = z.object({
  id: z.uuid(),
  status: z.enum(REVIEW_STATUSES),
  reasons: z.array(z.string()),
  submitted: z.object({
    ocrLine: z.string(),
    ticket: z.object({ type: z.number().int(), doseNumber: z.number().int(), municipalityCode: z.string(), ticketNumber: z.string() }),
    birthDate: z.string(), occurrenceDate: z.string(), vaccineCode: z.string(), lotNumber: z.string(), place: z.string(),
  }),
  ticketHolder: nullable(z.string()),
  submittedBy: z.string(),
  submittedAt: z.string(),
  resolvedBy: nullable(z.string()),
  resolvedAt: nullable(z.string()),
  resolutionReason: nullable(z.string()),
  resident: nullable(z.string()),
  recordId: nullable(z.string()),
});

/** A consent, field by field, without the internal resident id. */
const consentView = z.object({
  id: z.string(),
  scope: z.string(),
  purpose: z.string(),
  sources: z.array(z.string()),
  givenAt: z.string(),
  expiresAt: z.string(),
  method: z.string(),
  recordedBy: z.string(),
  residentSignature: nullable(z.string()),
  residentCertificate: nullable(z.string()),
  revokedAt: nullable(z.string()),
  revokedBy: nullable(z.string()),
  revocationReason: nullable(z.string()),
});

const exceptionView = z.object({
  id: z.uuid(), residentId: z.string(), source: z.string(), purpose: z.string(), justification: z.string(), requestedBy: z.string(),
  approvedBy: nullable(z.string()), approvedAt: nullable(z.string()), status: z.enum(EXCEPTION_STATUSES),
});

const jobProgress = z.object({
  id: z.uuid(),
  purpose: z.string(),
  status: z.enum(['running', 'completed']),
  selection: z.record(z.string(), z.unknown()),
  total: count,
  done: count,
  pending: count,
  pendingRetries: count,
  nextRetryAt: nullable(z.string()),
  byStatus: z.record(z.string(), count),
  imported: count,
  created: count,
  createdAt: z.string(),
  completedAt: nullable(z.string()),
});

const copyFields = z.object({
  recordId: z.string(), version: z.number().int(), occurrenceDate: z.string(), vaccineCode: z.string(), lotNumber: nullable(z.string()),
  doseNumber: z.number().int(), place: nullable(z.string()), status: z.string(), sourceVersion: nullable(z.number().int()),
});

const residentNoticeView = z.object({
  id: z.string(),
  reference: z.number().int().describe('The access-log entry the notice reports'),
  at: z.string(),
  kind: z.enum(NOTICE_KINDS),
  otherMunicipality: nullable(z.string()),
  purpose: nullable(z.string()),
  legalBasis: nullable(z.string()),
  outcome: z.string(),
  requestId: z.string(),
  recordCount: count,
  delivery: nullable(z.object({ channel: z.string(), status: z.enum(DELIVERY_STATUSES), deliveredAt: nullable(z.string()), attempts: count })),
});

const disclosureReport = z.object({
  municipality: z.object({ code: z.string(), name: z.string() }),
  addresseeNumber: z.string(),
  generatedAt: z.string(),
  items: z.array(z.object({
    reference: z.number().int(),
    at: z.string(),
    requestId: z.string(),
    who: z.object({ type: z.enum(['staff', 'member', 'system', 'resident']), role: nullable(z.string()), municipality: nullable(z.string()) }),
    crossMunicipality: z.boolean(),
    otherMunicipality: nullable(z.string()),
    direction: nullable(z.enum(['asked-here', 'asked-elsewhere'])),
    action: z.string(),
    purpose: nullable(z.string()),
    legalBasis: nullable(z.string()),
    outcome: z.string(),
    reason: nullable(z.string()),
    flags: z.array(z.string()),
  })),
  truncated: z.boolean(),
  notices: z.array(residentNoticeView),
});

/** The keys that verify this municipality's SMART Health Cards: public members only (docs/DESIGN.md §4.11). */
const healthCardJwks = z.object({
  keys: z.array(z.object({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: z.string(),
    y: z.string(),
    kid: z.string().describe('The key\'s RFC 7638 JWK thumbprint (SHA-256, base64url), as the cards\' JWS header names it'),
    use: z.literal('sig'),
    alg: z.literal('ES256'),
  }).strict()),
});

/* The resident's own page (docs/DESIGN.md §4.14). */
const credentialView = z.object({
  id: z.string(), kind: z.enum(CREDENTIAL_KINDS), certificateSerial: z.string(), notAfter: z.string(), enrolledAt: z.string(), revokedAt: nullable(z.string()),
});
const residentSession = z.object({ token: z.string().describe('A resident session token (typ resident-session+jwt); also set as the httpOnly cookie hikitsugi_resident'), expiresIn: count });
const residentOwnPage = z.object({
  municipality: z.object({ code: z.string(), name: z.string() }),
  municipalityNames: z.record(z.string(), z.string()).describe('Names of the federation\'s municipalities by code, from the verified directory'),
  resident: z.object({ name: z.string(), kana: z.string(), birthDate: z.string(), addresseeNumber: z.string(), status: z.enum(RESIDENT_STATUSES) }),
  records: z.array(z.object({
    recordId: z.string(), occurrenceDate: z.string(), vaccine: z.object({ code: z.string(), display: z.string(), series: nullable(z.string()) }),
    doseNumber: z.number().int(), lotNumber: nullable(z.string()), place: nullable(z.string()), status: z.enum(RECORD_STATUSES),
    source: nullable(z.object({ municipality: z.string(), retrievedAt: nullable(z.string()) })),
  })),
  consents: z.array(z.object({
    id: z.string(), purpose: z.string(), sources: z.array(z.string()), givenAt: z.string(), expiresAt: z.string(), method: z.string(), revokedAt: nullable(z.string()),
  })),
  trail: disclosureReport.shape.items,
  truncated: z.boolean(),
  notices: z.array(residentNoticeView),
  elsewhere: z.array(z.object({
    municipality: z.string(), status: z.enum(TRAIL_STATUSES), reason: nullable(z.string()), items: z.array(trailItemSchema), truncated: z.boolean(),
  })).describe('The entries about the resident in the logs of the municipalities they lived in, each asked through the gateway (docs/PROTOCOL.md §3.10)'),
  gateway: nullable(z.object({
    status: z.enum(['ok', 'denied', 'unavailable']), reason: nullable(z.string()), items: z.array(gatewayTrailItemSchema), truncated: z.boolean(),
  })).describe('The gateway\'s own entries about the resident (no codes, no staff ids), asked on this municipality\'s word (docs/PROTOCOL.md §3.10); null without a federation link'),
});

/* ---------- operations ---------- */

const addressee = { addresseeNumber: addresseeNumberSchema };
const idempotencyKey = (required: boolean) => ({
  [IDEMPOTENCY_HEADER]: {
    required, schema: idempotencyKeySchema,
    description: required
      ? 'Required: a unique value per intended write; a retry with the same key gets the first answer (Idempotent-Replayed: true)'
      : 'Optional: a retry with the same key gets the first answer (Idempotent-Replayed: true)',
  },
});
const replayed = { 'Idempotent-Replayed': '`true` when this is the stored answer of an earlier request with the same key' };

const clerk = { staff: ['clerk'] } as const;
const readers = { staff: ['clerk', 'operator'] } as const;
const operator = { staff: ['operator'] } as const;

function staffOperations(): OperationSpec[] {
  return [
    openApiOperation({ public: true }),
    {
      method: 'get', path: '/health', summary: 'Liveness', tags: ['health'], access: { public: true },
      responses: { 200: { description: 'The process answers', body: z.object({ status: z.literal('ok'), municipality: z.string(), name: z.string(), federation: z.boolean() }) } },
    },
    {
      method: 'get', path: '/ready', summary: 'Readiness: own database and revocation list; the gateway and issuer reported', tags: ['health'], access: { public: true },
      responses: { 200: { description: 'Ready (503 problem not-ready otherwise)', body: readyReportSchema } },
    },
    ...staffAuthOperations({
      adminRoles: ['admin'],
      me: {
        subjects: z.string().describe('What the console\'s subject filter takes here (addressee numbers)'),
        residentSearch: z.boolean().describe('Whether the console can find residents by name'),
      },
    }),
    {
      method: 'get', path: '/staff', summary: 'Staff accounts with their sign-in locks', tags: ['staff accounts'], access: { staff: ['admin'] },
      responses: { 200: { description: 'Accounts', body: z.object({ staff: z.array(staffAccountView.extend({ signIn: signInLockView })) }) } },
    },
    {
      method: 'post', path: '/staff', summary: 'Create a staff account', tags: ['staff accounts'], access: { staff: ['admin'] },
      description: `Roles: ${ROLES.join(', ')}.`, body: createStaffSchema,
      responses: { 201: { description: 'Created', body: staffAccountView } },
    },
    ...auditConsoleOperations(['privacy_officer']),
    ...alertOperations(['privacy_officer']),
    // Retention by the national rule (docs/DESIGN.md §4.13)
    {
      method: 'post', path: '/retention/run', summary: 'Run the retention job now', tags: ['retention'], access: { staff: ['privacy_officer'] },
      description: 'Removes the records of deceased residents whose period after death has passed, per record kind, and their personal data once every '
        + 'period has passed; one transaction and one `retention.remove` access-log entry (the tombstone) per resident.',
      responses: { 200: { description: 'What this run removed, and any resident left whole because the removal failed', body: runReportView } },
    },
    {
      method: 'get', path: '/retention/removals', summary: 'Every removal by the retention rule, newest first', tags: ['retention'],
      access: { staff: ['privacy_officer'] }, query: listRemovalsSchema,
      responses: { 200: { description: 'Removals read from their tombstones', body: z.object({ removals: z.array(removalView), nextCursor: z.number().int().nullable() }) } },
    },

    // Residents (docs/DESIGN.md §4.1)
    {
      method: 'post', path: '/residents', summary: 'Register a resident', tags: ['residents'], access: { staff: ['clerk'] },
      headers: idempotencyKey(false), body: createResidentSchema,
      responses: { 201: { description: 'Registered', body: residentView, headers: replayed } },
    },
    {
      method: 'get', path: '/residents', summary: 'Search residents', tags: ['residents'], access: readers, query: searchResidentsSchema,
      responses: { 200: { description: 'One page of residents', body: page(residentView) } },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber', summary: 'One resident', tags: ['residents'], access: readers, params: addressee,
      responses: { 200: { description: 'The resident', body: residentView } },
    },
    {
      method: 'patch', path: '/residents/:addresseeNumber', summary: 'Change a resident\'s name, kana or address, with a reason', tags: ['residents'],
      access: { staff: ['clerk'] }, params: addressee, headers: idempotencyKey(false), body: updateResidentSchema,
      responses: { 200: { description: 'The resident as changed', body: residentView, headers: replayed } },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/history', summary: 'A resident\'s attribute changes', tags: ['residents'], access: readers, params: addressee,
      responses: {
        200: {
          description: 'Changes, oldest first',
          body: z.object({
            addresseeNumber: z.string(),
            history: z.array(z.object({
              at: z.string(), actorId: z.string(), reason: z.string(),
              changes: z.array(z.object({ field: z.string(), from: z.unknown().optional(), to: z.unknown().optional() })),
            })),
          }),
        },
      },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/disclosure', summary: 'The resident\'s disclosure report (情報提供等記録)', tags: ['disclosure'],
      access: { staff: ['privacy_officer', 'clerk'] }, params: addressee,
      responses: { 200: { description: 'Who accessed the resident\'s data, and the notices sent', body: disclosureReport } },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/disclosure.html', summary: 'The same report as a printable page', tags: ['disclosure'],
      access: { staff: ['privacy_officer', 'clerk'] }, params: addressee,
      responses: { 200: { description: 'HTML page', type: 'text/html', body: z.string() } },
    },

    // The vaccination certificate as a SMART Health Card (docs/DESIGN.md §4.11)
    {
      method: 'get', path: JWKS_PATH, summary: 'The public keys that verify this municipality\'s SMART Health Cards (JWKS)', tags: ['certificates'],
      access: { public: true },
      description: 'The `iss` of every card this municipality signs is the base URL of this document (SHC_ISSUER_URL, or the staff port\'s origin). '
        + 'Served with Access-Control-Allow-Origin: * for verifiers in a browser. 503 `certificate-signing-not-configured` when SHC_SIGNING_KEY is not set.',
      responses: { 200: { description: 'One ES256 (P-256) public key', body: healthCardJwks } },
    },
    {
      method: 'post', path: '/residents/:addresseeNumber/vaccination-certificate', summary: 'Issue the resident\'s vaccination certificate (接種証明書) as a SMART Health Card file',
      tags: ['certificates'], access: clerk, params: addressee,
      description: 'A `.smart-health-card` file holding one compact JWS (ES256, `zip: DEF`): the resident\'s name and birth date and every current, '
        + 'not voided dose (CVX, HOT9 and YJ codes, date, lot, place); no My Number, no addressee number. Each issuance is logged (`certificate.issue`). '
        + '422 `no-doses-to-certify` without a dose; 503 `certificate-signing-not-configured` without SHC_SIGNING_KEY.',
      responses: {
        200: {
          description: 'The card file, as an attachment', type: HEALTH_CARD_MEDIA_TYPE,
          body: z.object({ verifiableCredential: z.array(z.string().describe('A compact JWS')).length(1) }),
          headers: { 'Content-Disposition': 'attachment; filename="vaccination-certificate-<municipality>-<date>.smart-health-card"' },
        },
      },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/vaccination-certificate.png', summary: 'Issue the same certificate as one SMART Health Card QR code (PNG)',
      tags: ['certificates'], access: clerk, params: addressee,
      description: `One QR code, error correction L: \`shc:/\` in byte mode, then the JWS as digits in numeric mode. A card longer than ${MAX_SINGLE_QR_JWS} `
        + 'JWS characters does not fit one QR code and is refused with 422 `certificate-too-large-for-qr` (issue the file instead). Each issuance is logged.',
      responses: { 200: { description: 'The QR code', type: 'image/png', body: z.string().describe('PNG image (binary)') } },
    },

    // The resident's own page (docs/DESIGN.md §4.14): enrolment at the counter, then the resident's routes
    {
      method: 'post', path: '/residents/:addresseeNumber/resident-credentials', summary: 'Enrol a resident\'s personal certificate for the resident page', tags: ['resident-page'],
      access: clerk, params: addressee, body: enrolSchema,
      description: 'The resident present at the counter. The certificate must chain to the federation CA, be valid and not revoked, and name this resident '
        + '(kana, birth date, sex). 400 `invalid-certificate`; 409 `credential-already-enrolled`, `resident-not-active`; 422 `certificate-names-another-person`; '
        + '503 `federation-unavailable` without the federation\'s CA. Logged (`resident.credential.enroll`).',
      responses: { 201: { description: 'Enrolled', body: credentialView } },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/resident-credentials', summary: 'A resident\'s enrolled credentials', tags: ['resident-page'],
      access: clerk, params: addressee, responses: { 200: { description: 'In force and withdrawn', body: z.object({ credentials: z.array(credentialView) }) } },
    },
    {
      method: 'post', path: '/residents/:addresseeNumber/resident-credentials/:credentialId/withdraw', summary: 'Withdraw a credential (its sessions end)', tags: ['resident-page'],
      access: clerk, params: { ...addressee, credentialId: z.uuid() },
      description: '409 `credential-already-withdrawn`. Logged (`resident.credential.withdraw`).',
      responses: { 200: { description: 'Withdrawn', body: credentialView } },
    },
    {
      method: 'post', path: '/resident/sign-in/challenge', summary: 'A one-time challenge for the resident to sign', tags: ['resident-page'], access: { public: true },
      description: 'Valid five minutes, spent by one sign-in. Rate-limited per address (429 with Retry-After).',
      responses: { 201: { description: 'The challenge and the audience (this municipality\'s code) to sign', body: z.object({ challenge: z.string(), audience: z.string(), expiresAt: z.string() }) } },
    },
    {
      method: 'post', path: '/resident/sign-in', summary: 'Sign in with an enrolled personal certificate and a signed challenge', tags: ['resident-page'], access: { public: true },
      body: signInSchema,
      description: '`signature` is a compact JWS (ES256, header typ `resident-sign-in+jwt`) by the certificate\'s key over `{ aud: <municipality code>, nonce: <challenge>, iat }`. '
        + 'Refusals are 401 and logged as a denied `resident.sign_in`: `sign-in-certificate-invalid`, `sign-in-signature-invalid`, `sign-in-audience-mismatch`, '
        + '`sign-in-credential-unknown` (not enrolled here), `sign-in-challenge-invalid` (unknown, expired or used). No password, no My Number.',
      responses: { 200: { description: 'Signed in', body: residentSession } },
    },
    {
      method: 'post', path: '/resident/sign-out', summary: 'End the resident\'s session', tags: ['resident-page'], access: { resident: true },
      responses: { 204: { description: 'Signed out; the token is refused from now on (`session-logged-out`)' } },
    },
    {
      method: 'get', path: '/resident/me', summary: 'The resident\'s own records, consents, access trail and notices', tags: ['resident-page'], access: { resident: true },
      description: 'Takes no identifier: the session names its resident. Reading is itself logged (`resident.self.read` and `audit.disclosure` by the resident). '
        + 'A withdrawn credential ends the session (401 `session-credential-withdrawn`).',
      responses: { 200: { description: 'The resident\'s page', body: residentOwnPage } },
    },
    {
      method: 'post', path: '/resident/consents/:consentId/revoke', summary: 'The resident revokes one of their own consents', tags: ['resident-page'], access: { resident: true },
      params: { consentId: z.uuid() }, body: residentRevokeSchema, bodyOptional: true,
      description: 'The same revocation as a clerk\'s: queries carrying it are refused from then on. A consent of anyone else is 404 `not-found`; 409 `consent-already-revoked`.',
      responses: { 200: { description: 'Revoked', body: z.object({ id: z.string(), purpose: z.string(), sources: z.array(z.string()), revokedAt: nullable(z.string()) }) } },
    },
    {
      method: 'post', path: '/resident/vaccination-certificate', summary: 'The resident takes their vaccination certificate as a SMART Health Card file', tags: ['resident-page'],
      access: { resident: true }, description: 'As the clerk\'s route, for the signed-in resident; logged (`certificate.issue` by the resident).',
      responses: { 200: { description: 'The card file', type: HEALTH_CARD_MEDIA_TYPE, body: z.object({ verifiableCredential: z.array(z.string()).length(1) }) } },
    },
    {
      method: 'get', path: '/resident/vaccination-certificate.png', summary: 'The same certificate as one QR code (PNG)', tags: ['resident-page'], access: { resident: true },
      responses: { 200: { description: 'The QR code', type: 'image/png', body: z.string().describe('PNG image (binary)') } },
    },

    // Vaccination records, tickets and the review queue (docs/DESIGN.md §4.1)
    {
      method: 'get', path: '/vaccines', summary: 'The vaccine catalogue', tags: ['vaccinations'], access: { staff: 'any' },
      responses: {
        200: {
          description: 'Products',
          body: z.object({
            vaccines: z.array(z.object({
              code: z.string(), display: z.string(), manufacturer: z.string(), series: z.string(), seriesDisplay: z.string(), maxDoses: z.number().int(),
              seasonal: z.boolean(), lotPattern: z.string(), lotExample: z.string(), cvx: nullable(z.string()),
            })),
          }),
        },
      },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/vaccinations', summary: 'A resident\'s current records', tags: ['vaccinations'], access: clerk, params: addressee,
      responses: { 200: { description: 'Current versions', body: z.object({ addresseeNumber: z.string(), records: z.array(recordView) }) } },
    },
    {
      method: 'post', path: '/residents/:addresseeNumber/vaccinations', summary: 'Record a dose', tags: ['vaccinations'], access: clerk, params: addressee,
      headers: idempotencyKey(true), body: recordInputSchema,
      responses: { 201: { description: 'The record\'s first version', body: recordView, headers: replayed } },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/vaccinations/:recordId', summary: 'One record (its current version)', tags: ['vaccinations'], access: clerk,
      params: { ...addressee, recordId: recordIdSchema },
      responses: { 200: { description: 'The record', body: recordView } },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/vaccinations/:recordId/history', summary: 'Every version of a record', tags: ['vaccinations'], access: clerk,
      params: { ...addressee, recordId: recordIdSchema },
      responses: { 200: { description: 'Versions, oldest first', body: z.object({ recordId: z.string(), versions: z.array(recordView) }) } },
    },
    {
      method: 'post', path: '/residents/:addresseeNumber/vaccinations/:recordId/corrections', summary: 'Correct a record: a new version with a reason', tags: ['vaccinations'],
      access: clerk, params: { ...addressee, recordId: recordIdSchema }, headers: idempotencyKey(true), body: correctionSchema,
      responses: { 201: { description: 'The new version', body: recordView, headers: replayed } },
    },
    {
      method: 'post', path: '/residents/:addresseeNumber/vaccinations/:recordId/void', summary: 'Void a record (entered in error): a new version', tags: ['vaccinations'],
      access: clerk, params: { ...addressee, recordId: recordIdSchema }, headers: idempotencyKey(true), body: voidSchema,
      responses: { 201: { description: 'The voiding version', body: recordView, headers: replayed } },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/immunizations', summary: 'A resident\'s records as a FHIR R4 Bundle of JP Core Immunizations', tags: ['vaccinations'],
      access: clerk, params: addressee,
      responses: {
        200: {
          description: 'A FHIR collection Bundle (validated against FHIR R4 elsewhere)', type: 'application/fhir+json',
          body: z.looseObject({ resourceType: z.literal('Bundle'), type: z.string() }),
        },
      },
    },
    {
      method: 'get', path: '/residents/:addresseeNumber/tickets', summary: 'A resident\'s vaccination tickets (接種券)', tags: ['tickets'], access: clerk, params: addressee,
      responses: { 200: { description: 'Tickets', body: z.object({ addresseeNumber: z.string(), tickets: z.array(ticketView) }) } },
    },
    {
      method: 'post', path: '/residents/:addresseeNumber/tickets', summary: 'Issue a vaccination ticket', tags: ['tickets'], access: clerk, params: addressee,
      headers: idempotencyKey(false), body: issueTicketSchema,
      responses: { 201: { description: 'The ticket', body: ticketView, headers: replayed } },
    },
    {
      method: 'post', path: '/vaccinations/from-ticket', summary: 'Register a dose from a ticket\'s OCR line', tags: ['tickets'], access: clerk,
      description: 'When the ticket\'s municipality, dose or holder disagrees, nothing is recorded: the registration waits for a clerk (202).',
      headers: idempotencyKey(true), body: fromTicketSchema,
      responses: {
        201: { description: 'Recorded on the ticket holder', body: z.object({ outcome: z.literal('registered'), addresseeNumber: z.string(), record: recordView }), headers: replayed },
        202: { description: 'Queued for review', body: z.object({ outcome: z.literal('queued'), review: reviewView }), headers: replayed },
      },
    },
    {
      method: 'get', path: '/ticket-reviews', summary: 'The ticket review queue', tags: ['tickets'], access: clerk, query: listReviewsSchema,
      responses: { 200: { description: 'One page of reviews', body: page(reviewView) } },
    },
    {
      method: 'get', path: '/ticket-reviews/:reviewId', summary: 'One review', tags: ['tickets'], access: clerk, params: { reviewId: reviewIdSchema },
      responses: { 200: { description: 'The review', body: reviewView } },
    },
    {
      method: 'post', path: '/ticket-reviews/:reviewId/approve', summary: 'Approve a review: the dose goes onto the resident the clerk established', tags: ['tickets'],
      access: clerk, params: { reviewId: reviewIdSchema }, headers: idempotencyKey(true), body: approveReviewSchema,
      responses: { 200: { description: 'The review, resolved', body: reviewView, headers: replayed } },
    },
    {
      method: 'post', path: '/ticket-reviews/:reviewId/reject', summary: 'Reject a review: nothing is recorded', tags: ['tickets'],
      access: clerk, params: { reviewId: reviewIdSchema }, headers: idempotencyKey(false), body: rejectReviewSchema,
      responses: { 200: { description: 'The review, resolved', body: reviewView, headers: replayed } },
    },

    // Consents (docs/DESIGN.md §4.4)
    {
      method: 'get', path: '/residents/:addresseeNumber/consents', summary: 'A resident\'s consents', tags: ['consents'], access: readers, params: addressee,
      responses: { 200: { description: 'Consents', body: z.object({ consents: z.array(consentView) }) } },
    },
    {
      method: 'post', path: '/residents/:addresseeNumber/consents', summary: 'Record a consent given at the counter', tags: ['consents'], access: readers, params: addressee,
      body: consentInputSchema,
      bodyExample: { purpose: 'next-dose-scheduling', sources: ['293610'], expiresAt: '2027-03-31T23:59:59+09:00', method: 'written' },
      responses: { 201: { description: 'The consent', body: consentView } },
    },
    {
      method: 'post', path: '/residents/:addresseeNumber/consents/resident-signed', summary: 'Accept a consent the resident signed with their personal key', tags: ['consents'],
      access: readers, params: addressee, body: residentSignedConsentSchema,
      responses: { 201: { description: 'The consent', body: consentView } },
    },
    {
      method: 'post', path: '/residents/:addresseeNumber/consents/:consentId/revoke', summary: 'Revoke a consent', tags: ['consents'], access: readers,
      params: addressee, body: revokeSchema,
      responses: { 200: { description: 'The consent, revoked', body: consentView } },
    },

    // Moves (docs/DESIGN.md §4.3)
    {
      method: 'post', path: '/residents/:addresseeNumber/move-out', summary: 'Move a resident out: a signed move-out certificate (no My Number)', tags: ['moves'],
      access: readers, params: addressee, body: moveOutSchema,
      responses: { 201: { description: 'The certificate (compact JWS)', body: z.object({ certificate: z.string(), destination: z.string(), moveOutDate: z.string() }) } },
    },
    {
      method: 'post', path: '/move-ins', summary: 'Register a move-in from a move-out certificate', tags: ['moves'], access: readers, body: moveInSchema,
      responses: {
        201: {
          description: 'The resident created here, and the consent recorded with it',
          body: z.object({
            resident: z.object({ addresseeNumber: z.string(), name: z.string(), status: z.enum(RESIDENT_STATUSES) }),
            from: z.string(),
            consent: nullable(z.object({ id: z.string(), purpose: z.string(), sources: z.array(z.string()), expiresAt: z.string() })),
          }),
        },
      },
    },

    // Asking other municipalities (docs/DESIGN.md §4.5, §4.8)
    {
      method: 'post', path: '/exchange/queries', summary: 'Ask sources for residents\' prior records, and import them', tags: ['exchange'], access: readers, body: querySchema,
      bodyExample: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: '1000000016', source: '293610' }] },
      description: 'Rate-limited per staff account (429 with Retry-After).',
      responses: {
        200: {
          description: 'One status per subject',
          body: z.object({
            requestId: z.string(),
            results: z.array(z.object({
              ref: z.string(), addresseeNumber: z.string(), source: z.string(), status: subjectStatus, reason: z.string().optional(),
              retryAfter: z.number().int().optional(), recordCount: count, imported: count,
            })),
          }),
        },
      },
    },
    {
      method: 'get', path: '/exchange/queries/:queryJti', summary: 'The subjects of one query sent', tags: ['exchange'], access: readers,
      responses: {
        200: {
          description: 'Subjects with their outcome',
          body: z.object({
            queryJti: z.string(),
            subjects: z.array(z.object({
              ref: z.string(), source: z.string(), purpose: z.string(), legalBasis: z.string(), status: z.string(), reason: nullable(z.string()),
              recordCount: count, imported: count, retryAfter: nullable(z.number().int()),
            })),
          }),
        },
      },
    },
    {
      method: 'post', path: '/exchange/exception-requests', summary: 'Request the life-protection exception for one subject', tags: ['exchange'], access: clerk,
      body: exceptionRequestSchema,
      responses: { 201: { description: 'The request, pending a second clerk', body: exceptionView } },
    },
    {
      method: 'post', path: '/exchange/exception-requests/:id/approve', summary: 'Approve an exception request (a second clerk)', tags: ['exchange'], access: clerk,
      params: { id: z.uuid() },
      responses: { 200: { description: 'The request, approved', body: exceptionView } },
    },
    {
      method: 'get', path: '/exchange/exception-requests', summary: 'Exception requests', tags: ['exchange'], access: clerk,
      query: z.object({ status: exceptionStatusSchema }),
      responses: { 200: { description: 'Requests, newest first', body: z.object({ requests: z.array(exceptionView) }) } },
    },
    {
      method: 'get', path: '/exchange/registrations', summary: 'Residents waiting for their code (docs/DESIGN.md §4.2)', tags: ['exchange'], access: operator,
      responses: { 200: { description: 'Counts; rekeyPending = codes still of the old derivation, to be rekeyed', body: z.object({ pending: count, retrying: count, rekeyPending: count }) } },
    },
    {
      method: 'post', path: '/exchange/registrations/run', summary: 'Register due codes now, then rekey codes of the old derivation', tags: ['exchange'], access: operator,
      responses: { 200: { description: 'This round', body: z.object({ issued: count, failed: count, pending: count, rekeyed: count, rekeyPending: count }) } },
    },
    {
      method: 'post', path: BULK_PATH, summary: 'Start a bulk move-in query (転入者一斉照会)', tags: ['bulk queries'], access: readers,
      headers: idempotencyKey(false), body: bulkQuerySchema,
      responses: { 202: { description: 'The job, running', body: jobProgress, headers: { Location: 'The job\'s URL', ...replayed } } },
    },
    {
      method: 'get', path: BULK_PATH, summary: 'Recent bulk jobs', tags: ['bulk queries'], access: readers,
      responses: {
        200: {
          description: 'Jobs, newest first',
          body: z.object({ jobs: z.array(z.object({ id: z.uuid(), purpose: z.string(), status: z.enum(['running', 'completed']), total: count, createdAt: z.string(), completedAt: nullable(z.string()) })) }),
        },
      },
    },
    {
      method: 'get', path: `${BULK_PATH}/:id`, summary: 'A bulk job\'s progress', tags: ['bulk queries'], access: readers, params: { id: jobIdSchema },
      responses: { 200: { description: 'Progress', body: jobProgress } },
    },
    {
      method: 'get', path: `${BULK_PATH}/:id/subjects`, summary: 'A bulk job\'s subjects and their outcomes', tags: ['bulk queries'], access: readers,
      params: { id: jobIdSchema }, query: listSubjectsSchema,
      responses: {
        200: {
          description: 'One page of subjects',
          body: page(z.object({
            seq: z.number().int(), addresseeNumber: z.string(), source: z.string(), state: z.enum(SUBJECT_STATES), status: nullable(z.string()),
            reason: nullable(z.string()), attempts: count, nextAttemptAt: nullable(z.string()), retryAfter: nullable(z.number().int()),
            recordCount: count, imported: count, resolvedAt: nullable(z.string()), requestId: nullable(z.string()),
          })).extend({ id: z.uuid() }),
        },
      },
    },
    {
      method: 'post', path: `${BULK_PATH}/:id/retry`, summary: 'Retry a job\'s unavailable subjects now', tags: ['bulk queries'], access: readers, params: { id: jobIdSchema },
      responses: { 202: { description: 'The job, with how many subjects were put back', body: jobProgress.extend({ retried: count }) } },
    },

    // Corrections (docs/DESIGN.md §4.10)
    {
      method: 'get', path: '/residents/:addresseeNumber/correction-notices', summary: 'Correction notices received for a resident\'s imported records', tags: ['corrections'],
      access: clerk, params: addressee,
      responses: {
        200: {
          description: 'Notices, with what changed in the imported copy',
          body: z.object({
            addresseeNumber: z.string(),
            notices: z.array(z.object({
              id: z.string(), receivedAt: z.string(), source: z.string(), sourceRecordId: z.string(), sourceVersion: z.number().int(),
              change: z.enum(['corrected', 'voided']), purpose: z.string(), outcome: z.enum(NOTICE_OUTCOMES), recordId: z.string(),
              changes: z.array(z.object({ field: z.string(), before: z.unknown().optional(), after: z.unknown().optional() })),
              before: nullable(copyFields), after: copyFields,
            })),
          }),
        },
      },
    },
    {
      method: 'get', path: '/exchange/corrections/outbox', summary: 'Correction notices sent: delivery state (metadata only)', tags: ['corrections'], access: operator,
      query: outboxQuerySchema,
      responses: {
        200: {
          description: 'Counts by status, and the latest items',
          body: z.object({
            counts: z.record(z.string(), count),
            items: z.array(z.object({
              id: z.string(), recordId: z.string(), version: z.number().int(), recipient: z.string(), change: z.enum(['corrected', 'voided']), purpose: z.string(),
              status: z.enum(OUTBOX_STATUSES), attempts: count, nextAttemptAt: z.string(), lastError: nullable(z.string()), sentAt: nullable(z.string()), createdAt: z.string(),
            })),
          }),
        },
      },
    },
    {
      method: 'post', path: '/exchange/corrections/outbox/run', summary: 'Send the due correction notices now', tags: ['corrections'], access: operator,
      responses: { 200: { description: 'This round', body: z.object({ sent: count, refused: count, deferred: count }) } },
    },

    // Consent revocations on their way to the gateway and the sources (docs/DESIGN.md §4.4)
    {
      method: 'get', path: '/exchange/consent-revocations/outbox', summary: 'Consent revocations sent: delivery state (metadata only)', tags: ['consents'], access: operator,
      query: revocationOutboxQuerySchema,
      responses: {
        200: {
          description: 'Counts by status, and the latest items',
          body: z.object({
            counts: z.record(z.string(), count),
            items: z.array(z.object({
              id: z.string(), consentId: z.string(), sources: z.array(z.string()), revokedAt: z.string(), consentExpiresAt: z.string(),
              status: z.enum(REVOCATION_OUTBOX_STATUSES), attempts: count, nextAttemptAt: z.string(), lastError: nullable(z.string()), sentAt: nullable(z.string()), createdAt: z.string(),
            })),
          }),
        },
      },
    },
    {
      method: 'post', path: '/exchange/consent-revocations/outbox/run', summary: 'Send the due consent revocations now', tags: ['consents'], access: operator,
      responses: { 200: { description: 'This round', body: z.object({ sent: count, refused: count, deferred: count }) } },
    },

    // Resident notices (docs/DESIGN.md §4.11)
    {
      method: 'get', path: '/residents/:addresseeNumber/notices', summary: 'A resident\'s notices of cross-municipality access', tags: ['notices'],
      access: { staff: ['clerk', 'privacy_officer'] }, params: addressee,
      responses: { 200: { description: 'Notices with their delivery', body: z.object({ addresseeNumber: z.string(), notices: z.array(residentNoticeView) }) } },
    },
    {
      method: 'get', path: '/notices/outbox', summary: 'Notice deliveries by status', tags: ['notices'], access: operator,
      responses: { 200: { description: 'Counts', body: z.object({ counts: z.record(z.string(), count) }) } },
    },
    {
      method: 'post', path: '/notices/outbox/run', summary: 'Make and deliver due notices now', tags: ['notices'], access: operator,
      responses: { 200: { description: 'This round', body: z.object({ made: count, delivered: count, deferred: count }) } },
    },
  ];
}

/** The staff API's document: public, as it names no person. */
export function municipalityStaffDocument(): OpenApiDocument {
  return buildOpenApiDocument({
    title: 'hikitsugi municipality: staff API',
    version: API_VERSION,
    port: 'staff',
    description: 'The staff API of one municipality (docs/DESIGN.md §4), plain HTTP on the municipality\'s own network. '
      + 'Every error is application/problem+json (RFC 9457). The FHIR R4 API under /fhir/R4 is not described here: '
      + 'its CapabilityStatement (GET /fhir/R4/metadata) describes it, and its errors are OperationOutcomes. '
      + 'The privacy officers\' console page is served under /console/.',
    components: { ...staffComponents, ...accessLogComponents, Resident: residentView, VaccinationRecord: recordView, Consent: consentView, TicketReview: reviewView, BulkJob: jobProgress },
    operations: staffOperations(),
  });
}

/** The federation port's document: for members only, behind the member identity check. */
export function municipalityFederationDocument(): OpenApiDocument {
  return buildOpenApiDocument({
    title: 'hikitsugi municipality: federation API',
    version: API_VERSION,
    port: 'member',
    description: 'The mTLS port of one municipality (docs/PROTOCOL.md §2): the gateway\'s record requests, relayed correction notices and consent revocations, '
      + 'and the heads of a member\'s own log seen here. Errors are application/problem+json (RFC 9457); every 4xx is logged as refused.',
    operations: [
      openApiOperation({ members: 'any' }),
      {
        method: 'get', path: '/health', summary: 'Liveness', tags: ['health'], access: { members: 'any' },
        responses: { 200: { description: 'The process answers', body: z.object({ status: z.literal('ok'), member: municipalityCodeSchema }) } },
      },
      witnessedHeadsOperation(MEMBER_HEADS_PATH, ['municipality', 'gateway', 'issuer']),
      {
        method: 'post', path: '/federation/record-requests', summary: 'The gateway\'s forward of a query: A\'s signed answer', tags: ['exchange'],
        description: 'docs/PROTOCOL.md §3 (ForwardClaims → AnswerClaims) and §4 (what A checks before releasing anything).',
        access: { members: ['gateway'] }, body: recordRequestSchema,
        responses: { 200: { description: 'A\'s answer (compact JWS) and, beside it, the records envelope it names by digest (JWE for the requester)', body: z.object({ answer: z.string(), records: z.string().optional() }) } },
      },
      {
        method: 'post', path: FEDERATION_TRAIL_PATH, summary: 'The gateway\'s forward of a resident\'s trail request: A\'s signed answer', tags: ['resident-page'],
        description: 'docs/PROTOCOL.md §3.10 (TrailForwardClaims → TrailAnswerClaims): A verifies both envelopes, the attestations, the resident\'s certificate '
          + 'and signature (made at B, recently) and their identity against its own record before it seals its entries for B.',
        access: { members: ['gateway'] }, body: trailForwardBodySchema,
        responses: { 200: { description: 'A\'s answer (compact JWS; the entries sealed for the requester)', body: z.object({ answer: z.string() }) } },
      },
      {
        method: 'post', path: CORRECTION_NOTICES_PATH, summary: 'A correction notice the gateway relays from a source', tags: ['corrections'],
        access: { members: ['gateway'] }, body: relayedNoticeSchema,
        responses: { 200: { description: 'What became of the imported copy', body: z.object({ status: z.enum([...NOTICE_OUTCOMES, 'duplicate']) }) } },
      },
      {
        method: 'post', path: CONSENT_REVOCATIONS_PATH, summary: 'A requester\'s signed consent revocation, relayed by the gateway', tags: ['consents'],
        description: 'docs/PROTOCOL.md §3.9: verified with the requester\'s own key; idempotent (200 when already recorded).',
        access: { members: ['gateway'] }, body: relayedRevocationSchema,
        responses: Object.fromEntries(([[200, 'Already recorded'], [201, 'Recorded: the requester\'s queries carrying this consent are refused here']] as const).map(([status, description]) => [status, {
          description, body: z.object({ status: z.enum(['recorded', 'already_recorded']) }),
        }])),
      },
    ],
  });
}
