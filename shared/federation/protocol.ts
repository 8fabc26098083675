/**
 * The federation protocol: what members say to each other, as zod schemas of signed claims.
 * docs/PROTOCOL.md explains each message; this file is the contract both sides compile against.
 *
 *   B (asks) --query--> gateway --forward--> A (answers) --answer--> gateway --> B
 *
 * - `QueryClaims`: signed by B (ES256), aud `gateway`, one per source A. Carries per subject B's code, the
 *   source municipality, the legal basis and consent terms, and the digest of the batch's one part
 *   sealed for A (JWE, every subject's identity check), which travels beside the query. Purpose and
 *   requester come only from here, so the gateway cannot change them.
 * - `ForwardClaims`: signed by the gateway, aud A. Embeds B's compact JWS unchanged and adds, per
 *   subject for A, A's code with the issuer's attestations for both codes (the gateway cannot
 *   invent a translation: the issuer signed that both codes share one link).
 * - `AnswerClaims`: signed by A, aud B. A status per subject and the digest of the batch's one
 *   records envelope, a JWE (for B's encryption key) of a JWS signed by A (`RecordsClaims`) that
 *   travels beside the answer: the gateway reads statuses, never records nor how many there are.
 *
 * Protection is paid per batch, not per subject (docs/PROTOCOL.md §3.3, §3.6): one sealed identity
 * envelope and one sealed records envelope per query, each bound to the query's jti. The bulky
 * envelopes travel beside the signed messages that name them by digest (docs/PROTOCOL.md §3.11), so
 * no hop encodes, hashes or stores them again inside another signature.
 */
import { z } from 'zod';
import { isValidMunicipalityCode } from '../identifiers.ts';
import { isValidPoint, POINT_RULE } from '../crypto.ts';
import { calendarDate, dateTime } from '../platform/dates.ts';

export const GATEWAY_ID = 'gateway';
export const ISSUER_ID = 'issuer';

/** JOSE `typ` of every message; verifiers pin it, so one kind can never pass for another. */
export const Typ = {
  QUERY: 'hikitsugi-query+jwt',
  FORWARD: 'hikitsugi-forward+jwt',
  ANSWER: 'hikitsugi-answer+jwt',
  /** The released records of one batch, signed by A and sealed for B. */
  RECORDS: 'hikitsugi-records+jwt',
  /** The identity checks of one batch, signed by B and sealed for A. */
  SEALED_IDENTITIES: 'hikitsugi-identities+jwt',
  ATTESTATION: 'hikitsugi-code-attestation+jws',
  MOVE_OUT: 'hikitsugi-move-out+jwt',
  CHECKPOINT: 'hikitsugi-checkpoint+jws',
  CORRECTION: 'hikitsugi-correction+jwt',
  /** The corrected record inside a correction notice, signed by the source and encrypted for the recipient. */
  CORRECTION_RECORD: 'hikitsugi-correction-record+jwt',
  /** A move's link in the chain of move-ins (no addresses), signed by the municipality the resident left. */
  MOVE_LINK: 'hikitsugi-move-link+jws',
  /** A consent signed by the resident's own key (personal certificate from the federation CA). */
  RESIDENT_CONSENT: 'hikitsugi-resident-consent+jwt',
  /** The CA-signed list of revoked certificate serial numbers. */
  REVOCATIONS: 'hikitsugi-revocations+jws',
  /** A resident's signature over a one-time sign-in challenge of their municipality (docs/DESIGN.md §4.14). */
  RESIDENT_SIGN_IN: 'resident-sign-in+jwt',
  /** B asks a municipality the resident lived in for its access-log entries about them (docs/PROTOCOL.md §3.10). */
  TRAIL_REQUEST: 'hikitsugi-trail-request+jwt',
  /** What B seals for that municipality: the resident's certificate and their sign-in at B. */
  TRAIL_PROOF: 'hikitsugi-trail-proof+jwt',
  TRAIL_FORWARD: 'hikitsugi-trail-forward+jwt',
  TRAIL_ANSWER: 'hikitsugi-trail-answer+jwt',
  /** A member's access-log head, signed for one peer: what a registration call and its answer carry (docs/PROTOCOL.md §3.0). */
  HEAD: 'hikitsugi-head+jwt',
  /** The entries, signed by the answering municipality and sealed for B. */
  TRAIL_ENTRIES: 'hikitsugi-trail-entries+jwt',
  GATEWAY_TRAIL_REQUEST: 'hikitsugi-gateway-trail-request+jwt',
  GATEWAY_TRAIL_ANSWER: 'hikitsugi-gateway-trail-answer+jwt',
  GATEWAY_TRAIL_ENTRIES: 'hikitsugi-gateway-trail-entries+jwt',
  /** A consent revoked at the requester (B), signed by B: the gateway records and relays it to each source. */
  CONSENT_REVOCATION: 'hikitsugi-consent-revocation+jwt',
} as const;

/** Longest lifetime of a query, forward or answer (docs/PROTOCOL.md §3: at most 300 s). */
export const MAX_MESSAGE_AGE_SECONDS = 300;
/** A move-out certificate stays usable for 30 days (a move-in is notified within 14 days of the move). */
export const MOVE_OUT_CERTIFICATE_SECONDS = 30 * 24 * 3600;
/** Links in one chain of move-ins (the latest move and up to three before it); older moves are not queryable. */
export const MAX_MOVE_CHAIN = 4;
/** Issuer of every resident-signed consent: who signed is named by the personal certificate, not by a claim. */
export const RESIDENT_ISSUER = 'resident';

export const SUBJECT_STATUSES = [
  'ok', 'not_found', 'no_consent', 'consent_expired', 'identity_mismatch', 'denied', 'source_unavailable',
] as const;
export type SubjectStatus = (typeof SUBJECT_STATUSES)[number];

export const LEGAL_BASES = ['consent', 'life-protection'] as const;
export type LegalBasis = (typeof LEGAL_BASES)[number];

export const PURPOSES = ['next-dose-scheduling', 'certificate-issuance', 'adverse-event-follow-up'] as const;
export type Purpose = (typeof PURPOSES)[number];

export const CONSENT_SCOPE = 'vaccination-history';

/** A municipality code (全国地方公共団体コード) with its check digit, as every entry point takes it. */
export const municipalityCodeSchema = z.string().refine(isValidMunicipalityCode, 'must be a municipality code with a valid check digit');
const municipality = municipalityCodeSchema;
/** A purpose of use a request may name (docs/PROTOCOL.md). */
export const purposeSchema = z.enum(PURPOSES, { error: `must be one of ${PURPOSES.join(', ')}` });
/** A blinded element of the code derivation (docs/DESIGN.md §4.2): a compressed P-256 point, checked on the curve at every hop. */
export const pointSchema = z.string({ error: POINT_RULE }).refine(isValidPoint, { message: POINT_RULE, abort: true });

/** Elements per evaluation call: a registration batch's worth. */
export const MAX_POINTS_PER_BATCH = 500;

/** POST /codes/evaluate (issuer and gateway): the blinded elements of one registration batch, evaluated in order. */
export const evaluateBatchSchema = z.object({
  blinded: z.array(pointSchema, { error: 'must be a list of points' })
    .min(1, 'must hold at least one point')
    .max(MAX_POINTS_PER_BATCH, `must hold at most ${MAX_POINTS_PER_BATCH} points`),
});

/** The OPRF output a municipality finalized (docs/DESIGN.md §3.4): base64url of 32 bytes, never a My Number. */
export const seedSchema = z.string({ error: 'must be a base64url seed of 32 bytes' })
  .regex(/^[A-Za-z0-9_-]{43}$/, { message: 'must be a base64url seed of 32 bytes', abort: true });

/** A code (符号): 26 characters of RFC 4648 base32, no padding. */
export const codeSchema = z.string().regex(/^[A-Z2-7]{26}$/, 'must be a 26-character base32 code');
/** Dates in claims are real calendar dates in a plausible range, at the signer and at the verifier alike. */
const isoDate = calendarDate();
const isoTime = dateTime();
/** A compact JWS or JWE of at most `maxLength` characters. */
const compactOf = (maxLength: number) => z.string().max(maxLength).regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){2,4}$/, 'must be a compact JOSE serialization');
const compact = compactOf(200_000);
/** ~2.5 kB per subject (consent terms, the sealed identity check, base64url) × the 5000-subject ceiling. */
const compactBatch = compactOf(16_000_000);
/**
 * A companion envelope named by the signed message it travels beside (docs/PROTOCOL.md §3.11): the
 * base64url SHA-256 of its compact serialization (`companionDigest` in shared/federation/messages.ts).
 */
export const digestSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url SHA-256 digest');

const jti = z.string().min(8).max(128);
const requestId = z.string().min(8).max(128);
/** Claims every signed member message carries (signMessage sets iat/exp; verifyJwt requires them). */
const signed = { jti, iat: z.number().int(), exp: z.number().int() };

/**
 * The sender's access-log head when it signed (docs/PROTOCOL.md §3.0): the seq and hash of its
 * last entry (seq 0 and 64 zeros for an empty log). Every receiver keeps it, so the tail of the
 * sender's log is witnessed with every exchange, not only at the next checkpoint.
 */
export const logHeadSchema = z.object({
  seq: z.number().int().min(0),
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 hex hash'),
}).strict();
export type LogHead = z.infer<typeof logHeadSchema>;

/**
 * Claims of a signed head (docs/PROTOCOL.md §3.0): the sender's head, for one receiver, short-lived.
 * The registration calls and their answers are plain JSON over mTLS; this is how their head is
 * still a statement its sender signed.
 */
export const headClaimsSchema = z.object({
  iss: z.string().min(1).max(32),
  aud: z.string().min(1).max(32),
  ...signed,
  head: logHeadSchema,
}).strict();
export type HeadClaims = z.infer<typeof headClaimsSchema>;

/** The `head` field of a registration call or answer: the sender's signed head, a compact JWS. */
export const signedHeadField = z.string({ error: 'must be the sender\'s signed log head (compact JWS, typ hikitsugi-head+jwt)' })
  .max(4000, 'must be at most 4000 characters')
  .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'must be a compact JWS (typ hikitsugi-head+jwt)');

/** The consent terms B recorded, as B signs them into the query. A checks them itself. */
export const consentTermsSchema = z.object({
  id: z.string().min(1).max(64),
  scope: z.literal(CONSENT_SCOPE),
  purpose: z.enum(PURPOSES),
  sources: z.array(municipality).min(1).max(50),
  givenAt: isoTime,
  expiresAt: isoTime,
  method: z.enum(['written', 'electronic', 'oral-recorded', 'resident-signed']),
  /** Resident-signed consent (docs/DESIGN.md §4.4): the resident's own JWS over these terms. */
  residentSignature: compact.optional(),
}).strict();
export type ConsentTerms = z.infer<typeof consentTermsSchema>;

/** The exception path (番号法19条16号 style): life or body at stake and consent impossible. */
export const exceptionSchema = z.object({
  justification: z.string().min(20).max(2000),
  requestedBy: z.string().min(1).max(64),
  approvedBy: z.string().min(1).max(64),
  approvedAt: isoTime,
}).strict();
export type ExceptionApproval = z.infer<typeof exceptionSchema>;

export const querySubjectSchema = z.object({
  /** B's own reference for this subject, unique in the batch; echoed in every answer. */
  ref: z.string().min(1).max(64),
  /** B's code for the resident. */
  sub: codeSchema,
  source: municipality,
  legalBasis: z.enum(LEGAL_BASES),
  consent: consentTermsSchema.optional(),
  exception: exceptionSchema.optional(),
}).strict().superRefine((s, ctx) => {
  if (s.legalBasis === 'consent' && !s.consent) ctx.addIssue({ code: 'custom', path: ['consent'], message: 'is required when legalBasis is consent' });
  if (s.legalBasis === 'life-protection' && !s.exception) ctx.addIssue({ code: 'custom', path: ['exception'], message: 'is required when legalBasis is life-protection' });
});
export type QuerySubject = z.infer<typeof querySubjectSchema>;

/** Claims of B's signed query (iss = B, aud = gateway). */
export const queryClaimsSchema = z.object({
  iss: municipality,
  aud: z.literal(GATEWAY_ID),
  ...signed,
  /** Trace id shared by the three access logs. */
  rid: requestId,
  purpose: z.enum(PURPOSES),
  /** The staff member at B who asked (local id; B alone can resolve it). */
  actor: z.string().min(1).max(64),
  subjects: z.array(querySubjectSchema).min(1).max(5000),
  /**
   * Digest of the batch's sealed part, which travels beside this query (docs/PROTOCOL.md §3.3): a JWE for
   * A's encryption key of a JWS by B over `SealedIdentities`, every subject's identity check.
   */
  sealedDigest: digestSchema,
  /** B's access-log head when it signed. */
  head: logHeadSchema,
}).strict().superRefine((q, ctx) => {
  // One source per query: the whole query travels to that source, and its sealed part is for that source alone.
  const i = q.subjects.findIndex((s) => s.source !== q.subjects[0]!.source);
  if (i > 0) ctx.addIssue({ code: 'custom', path: ['subjects', i, 'source'], message: 'must be the same source for every subject (one query per source)' });
});
export type QueryClaims = z.infer<typeof queryClaimsSchema>;

/** One subject's identity cross-check, as B seals it for A. */
export const sealedIdentitySchema = z.object({
  /** The subject's ref in the query. */
  ref: z.string().min(1).max(64),
  birthDate: isoDate,
  sex: z.enum(['male', 'female', 'other', 'unknown']),
  /** Family and given name in katakana, as registered (full-width, space-separated). */
  kana: z.string().min(1).max(100),
  /**
   * The move-in capability (docs/DESIGN.md §4.6): when the resident moved in at B and, for a source earlier on
   * the chain of moves, the move link B received (nesting the earlier links). Sealed, because the
   * links carry the resident's identity, which the gateway never sees.
   */
  moveIn: z.object({
    movedInAt: isoTime,
    link: compact.optional(),
  }).strict().optional(),
  /** For a resident-signed consent: the resident's personal certificate (PEM), which names them. */
  residentCertificate: z.string().max(10_000).includes('BEGIN CERTIFICATE').optional(),
}).strict();
export type SealedIdentity = z.infer<typeof sealedIdentitySchema>;

/** A list whose items are told apart by `ref`: each ref at most once. */
const uniqueRefs = <T extends z.ZodType<{ ref: string }>>(item: T, max: number) => z.array(item).min(1).max(max).superRefine((items, ctx) => {
  const seen = new Set<string>();
  for (const [i, { ref }] of items.entries()) {
    if (seen.has(ref)) ctx.addIssue({ code: 'custom', path: [i, 'ref'], message: 'must be unique in the batch' });
    seen.add(ref);
  }
});

/**
 * What B signs and seals for A, once per query: the identity checks of the query's subjects, bound
 * to it by the query's jti (docs/PROTOCOL.md §3.3). Only A can read it; B's signature over exactly
 * what B asked is A's to verify.
 */
export const sealedIdentitiesSchema = z.object({
  iss: municipality,
  aud: municipality,
  ...signed,
  identities: uniqueRefs(sealedIdentitySchema, 5000),
}).strict();
export type SealedIdentities = z.infer<typeof sealedIdentitiesSchema>;

/** The issuer's signed statement that a municipality's code belongs to a link (no exp: codes are stable). */
export const attestationSchema = z.object({
  iss: z.literal(ISSUER_ID),
  municipality,
  code: codeSchema,
  /** HMAC of the linkId under the issuer's attestation key: equal for one person, meaningless alone. */
  link: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
}).strict();
export type Attestation = z.infer<typeof attestationSchema>;

export const forwardSubjectSchema = z.object({
  ref: z.string().min(1).max(64),
  /** A's code for the resident. */
  code: codeSchema,
  /** Issuer attestations (compact JWS) of B's code and of A's code. */
  requesterAttestation: compact,
  sourceAttestation: compact,
}).strict();
export type ForwardSubject = z.infer<typeof forwardSubjectSchema>;

/** Claims of the gateway's envelope to A (iss = gateway, aud = A). */
export const forwardClaimsSchema = z.object({
  iss: z.literal(GATEWAY_ID),
  aud: municipality,
  ...signed,
  rid: requestId,
  /** B's query, byte for byte (a bulk query of thousands of subjects is megabytes, hence its own bound). */
  query: compactBatch,
  subjects: z.array(forwardSubjectSchema).min(1).max(5000),
  /** The gateway's access-log head when it signed. */
  head: logHeadSchema,
}).strict();
export type ForwardClaims = z.infer<typeof forwardClaimsSchema>;

export const answerResultSchema = z.object({
  ref: z.string().min(1).max(64),
  status: z.enum(SUBJECT_STATUSES),
  /** Why, in a stable word (e.g. `consent_revoked`, `resident_moved_out`); never personal data. */
  reason: z.string().max(100).optional(),
}).strict();
export type AnswerResult = z.infer<typeof answerResultSchema>;

/** Claims of A's signed answer (iss = A, aud = B), one per forwarded batch. */
export const answerClaimsSchema = z.object({
  iss: municipality,
  aud: municipality,
  ...signed,
  rid: requestId,
  /** The jti of B's query this answers; B refuses an answer to another query. */
  queryJti: jti,
  results: z.array(answerResultSchema),
  /**
   * Digest of the records envelope that travels beside this answer (docs/PROTOCOL.md §3.6): a JWE for B
   * of a JWS by A over `RecordsClaims`, the records of every `ok` subject; absent when none is.
   */
  recordsDigest: digestSchema.optional(),
  /** A's access-log head when it signed (after the entries of this answer). */
  head: logHeadSchema,
}).strict();
export type AnswerClaims = z.infer<typeof answerClaimsSchema>;

/** A FHIR R4 Bundle of Immunization resources, as A released it (validated loosely: B re-checks each entry). */
export const fhirBundleSchema = z.object({
  resourceType: z.literal('Bundle'),
  type: z.string(),
  entry: z.array(z.object({ resource: z.record(z.string(), z.unknown()) }).passthrough()).max(500).optional(),
}).passthrough();

/** One released subject inside the records envelope. */
export const releasedSubjectSchema = z.object({
  ref: z.string().min(1).max(64),
  /** B's code, so B can tie the records to its own resident. */
  sub: codeSchema,
  bundle: fhirBundleSchema,
}).strict();
export type ReleasedSubject = z.infer<typeof releasedSubjectSchema>;

/** What A signs for B inside the JWE, once per answer: the released records of every `ok` subject. */
export const recordsClaimsSchema = z.object({
  iss: municipality,
  aud: municipality,
  ...signed,
  rid: requestId,
  queryJti: jti,
  purpose: z.enum(PURPOSES),
  /** The Immunization elements the purpose allowed A to release (minimal disclosure, docs/DESIGN.md §4.7). */
  elements: z.array(z.string().min(1).max(40)).max(40).optional(),
  subjects: uniqueRefs(releasedSubjectSchema, 5000),
}).strict();
export type RecordsClaims = z.infer<typeof recordsClaimsSchema>;

/** What the gateway returns to B for a query. */
export interface QueryResponse {
  requestId: string;
  /** One per subject of the query, in its order. `source_unavailable` carries retryAfter (seconds). */
  results: { ref: string; source: string; status: SubjectStatus; reason?: string; retryAfter?: number }[];
  /**
   * A's signed answers (compact JWS), verified by B, each with the records envelope it names by
   * digest beside it; the statuses above are the gateway's reading.
   */
  answers: SourceAnswer[];
}

/** A's reply to a forward, relayed by the gateway unchanged (docs/PROTOCOL.md §3.5, §3.6). */
export interface SourceAnswer {
  answer: string;
  records?: string;
}

/** Move-out certificate (転出証明書情報), signed by the old municipality. No My Number. */
export const moveOutClaimsSchema = z.object({
  iss: municipality,
  aud: municipality,
  ...signed,
  resident: z.object({
    name: z.string().min(1).max(100),
    kana: z.string().min(1).max(100),
    birthDate: isoDate,
    sex: z.enum(['male', 'female', 'other', 'unknown']),
    previousAddress: z.string().min(1).max(300),
  }).strict(),
  moveOutDate: isoDate,
  destinationAddress: z.string().min(1).max(300),
  /** This move's link (`MoveLinkClaims`, a compact JWS by the same issuer), kept by B for later queries. */
  moveLink: compact.optional(),
}).strict();
export type MoveOutClaims = z.infer<typeof moveOutClaimsSchema>;

/**
 * One move in the chain of move-ins: signed by the municipality the resident left (`signPayload`,
 * no expiry: a move stays a fact), addressed to the one they moved to. Unlike the certificate it
 * carries no address, only what a source needs to recognise its own resident; `previous` is the
 * link the issuer itself received when the resident moved in there, so a chain C→A→B nests C's
 * link to A inside A's link to B and each municipality on it can check every signature.
 */
export const moveLinkClaimsSchema = z.object({
  iss: municipality,
  aud: municipality,
  /** The jti of the move-out certificate this link belongs to. */
  jti,
  /** When the move-out was certified (seconds): the move-in happened within the certificate's validity after it. */
  iat: z.number().int(),
  moveOutDate: isoDate,
  resident: z.object({
    kana: z.string().min(1).max(100),
    birthDate: isoDate,
    sex: z.enum(['male', 'female', 'other', 'unknown']),
  }).strict(),
  previous: compact.optional(),
}).strict();
export type MoveLinkClaims = z.infer<typeof moveLinkClaimsSchema>;

/**
 * A consent the resident signed with their personal key (typ `hikitsugi-resident-consent+jwt`,
 * the certificate's kid in the header): it names the requester, the source (`aud`: the municipality
 * that verifies it and releases), the purpose, and its validity (`iat`..`exp`).
 */
export const residentConsentClaimsSchema = z.object({
  iss: z.literal(RESIDENT_ISSUER),
  aud: municipality,
  ...signed,
  scope: z.literal(CONSENT_SCOPE),
  requester: municipality,
  purpose: z.enum(PURPOSES),
}).strict();
export type ResidentConsentClaims = z.infer<typeof residentConsentClaimsSchema>;

/** A directory entry as the gateway serves it; members verify both certificates against the CA. */
export const directoryEntrySchema = z.object({
  id: z.string().min(1).max(32),
  kind: z.enum(['municipality', 'gateway', 'issuer']),
  name: z.string().min(1).max(100),
  /** Base URL of the member's federation (mTLS) port; absent for members that only ask. */
  endpoint: z.string().url().optional(),
  signingCertificate: z.string().includes('BEGIN CERTIFICATE'),
  encryptionCertificate: z.string().includes('BEGIN CERTIFICATE'),
}).strict();
export type DirectoryEntry = z.infer<typeof directoryEntrySchema>;

/* ---------- correction notices (docs/DESIGN.md §4.10) ---------- */

/** Where a municipality's federation port receives correction notices the gateway relays. */
export const CORRECTION_NOTICES_PATH = '/federation/corrections';
/**
 * A correction notice may wait at the gateway while its recipient is down, so it lives longer
 * than a query; past this it is dropped as expired. Replays are harmless: the recipient applies
 * one notice per source record version, once.
 */
export const CORRECTION_NOTICE_MAX_AGE_SECONDS = 14 * 24 * 3600;

/**
 * A correction notice (iss = A, the source; aud = B, which imported the record), relayed by the
 * gateway unchanged. The gateway reads the metadata, never the record: that travels as a JWE for
 * B of a JWS by A over `CorrectionRecordClaims`.
 */
export const correctionClaimsSchema = z.object({
  iss: municipality,
  aud: municipality,
  ...signed,
  rid: requestId,
  /** A's code for the resident: the gateway checks it is A's and that B holds a code on the same link. */
  sub: codeSchema,
  sourceRecordId: z.string().min(1).max(64),
  sourceVersion: z.number().int().min(1),
  change: z.enum(['corrected', 'voided']),
  /** Purpose of the release this notice follows up; the record is disclosed as for that purpose. */
  purpose: z.enum(PURPOSES),
  record: compact,
  /** A's access-log head when it signed. */
  head: logHeadSchema,
}).strict();
export type CorrectionClaims = z.infer<typeof correctionClaimsSchema>;

/** What A signs for B inside a correction notice: the new version of the record, bound to the notice. */
export const correctionRecordClaimsSchema = z.object({
  iss: municipality,
  aud: municipality,
  ...signed,
  rid: requestId,
  noticeJti: jti,
  sourceRecordId: z.string().min(1).max(64),
  sourceVersion: z.number().int().min(1),
  /** A FHIR R4 Immunization (B re-validates every element on import). */
  resource: z.record(z.string(), z.unknown()),
  /** The Immunization elements the purpose allowed A to release, as for the original release. */
  elements: z.array(z.string().min(1).max(40)).max(40).optional(),
}).strict();
export type CorrectionRecordClaims = z.infer<typeof correctionRecordClaimsSchema>;

/* ---------- the resident's trail across the federation (docs/PROTOCOL.md §3.10) ---------- */

/** Where the gateway takes B's trail requests, and where a municipality answers the forwarded ones. */
export const TRAIL_REQUESTS_PATH = '/trail-requests';
export const FEDERATION_TRAIL_PATH = '/federation/trail-requests';

/**
 * B's request (iss = B, aud = gateway) for one municipality's access-log entries about a resident
 * signed in at B's resident page. The gateway sees B's code and the source, as for a query; the
 * resident's proof travels sealed for the source.
 */
export const trailRequestClaimsSchema = z.object({
  iss: municipality,
  aud: z.literal(GATEWAY_ID),
  ...signed,
  rid: requestId,
  /** B's code for the resident. */
  sub: codeSchema,
  source: municipality,
  /** JWE for the source of a JWS by B over `TrailProofClaims`. */
  sealed: compact,
  /** B's access-log head when it signed (§3.0): the gateway and the source keep it. */
  head: logHeadSchema,
}).strict();
export type TrailRequestClaims = z.infer<typeof trailRequestClaimsSchema>;

/** What B seals for the source: bound to the request by its jti; the source checks the resident's own signature. */
export const trailProofClaimsSchema = z.object({
  iss: municipality,
  aud: municipality,
  ...signed,
  requestJti: jti,
  /** The resident's personal certificate (PEM): it names them (kana, birth date, sex). */
  certificate: z.string().max(10_000).includes('BEGIN CERTIFICATE'),
  /** The resident's signature over B's sign-in challenge (typ resident-sign-in+jwt, aud = B). */
  signIn: compact,
}).strict();
export type TrailProofClaims = z.infer<typeof trailProofClaimsSchema>;

/** The gateway's envelope to the source (iss = gateway, aud = source): B's request unchanged, the source's code, both attestations. */
export const trailForwardClaimsSchema = z.object({
  iss: z.literal(GATEWAY_ID),
  aud: municipality,
  ...signed,
  rid: requestId,
  request: compact,
  code: codeSchema,
  requesterAttestation: compact,
  sourceAttestation: compact,
  /** The gateway's access-log head when it signed: the source keeps it. */
  head: logHeadSchema,
}).strict();
export type TrailForwardClaims = z.infer<typeof trailForwardClaimsSchema>;

export const TRAIL_STATUSES = ['ok', 'not_found', 'identity_mismatch', 'denied', 'source_unavailable'] as const;
export type TrailStatus = (typeof TRAIL_STATUSES)[number];

/** The source's answer (iss = source, aud = B), relayed by the gateway unchanged; the entries are sealed for B. */
export const trailAnswerClaimsSchema = z.object({
  iss: municipality,
  aud: municipality,
  ...signed,
  rid: requestId,
  requestJti: jti,
  status: z.enum(TRAIL_STATUSES),
  reason: z.string().max(100).optional(),
  /** JWE for B of a JWS by the source over `TrailEntriesClaims` (with status ok). */
  entries: compact.optional(),
  /** The source's access-log head after its entry about this answer: the gateway and B keep it. */
  head: logHeadSchema,
}).strict();
export type TrailAnswerClaims = z.infer<typeof trailAnswerClaimsSchema>;

/** One access to the resident's data, as the source's log holds it: metadata only, no staff names. */
/** What an access-log entry says of an access, as a resident may read it (both trail item kinds). */
const accessFacts = {
  action: z.string().max(64),
  purpose: z.string().max(64).nullable(),
  legalBasis: z.string().max(64).nullable(),
  outcome: z.string().max(16),
  reason: z.string().max(200).nullable(),
  flags: z.array(z.string().max(64)).max(20),
};

export const trailItemSchema = z.object({
  reference: z.number().int(),
  at: isoTime,
  who: z.object({ type: z.enum(['staff', 'member', 'system', 'resident']), role: z.string().max(64).nullable(), municipality: z.string().max(32).nullable() }).strict(),
  crossMunicipality: z.boolean(),
  otherMunicipality: z.string().max(32).nullable(),
  direction: z.enum(['asked-here', 'asked-elsewhere']).nullable(),
  ...accessFacts,
}).strict();
export type TrailItem = z.infer<typeof trailItemSchema>;

export const trailEntriesClaimsSchema = z.object({
  iss: municipality,
  aud: municipality,
  ...signed,
  requestJti: jti,
  items: z.array(trailItemSchema).max(5000),
  truncated: z.boolean(),
}).strict();
export type TrailEntriesClaims = z.infer<typeof trailEntriesClaimsSchema>;
/* ---------- the gateway's own entries about a resident (docs/PROTOCOL.md §3.10) ---------- */

/** Where the gateway takes B's request for its own entries about a resident of B. */
export const GATEWAY_TRAIL_PATH = '/gateway-trail-requests';

/**
 * B's request (iss = B, aud = gateway) for the gateway's entries about a resident signed in at
 * B's page, named by B's code alone: the gateway answers on B's word (B is where they live) and
 * sees nothing of the resident it did not see before.
 */
export const gatewayTrailRequestClaimsSchema = trailRequestClaimsSchema.omit({ source: true, sealed: true });
export type GatewayTrailRequestClaims = z.infer<typeof gatewayTrailRequestClaimsSchema>;

/** One gateway entry about the resident: metadata only — no code of any municipality, no staff id, no request id. */
export const gatewayTrailItemSchema = z.object({
  at: isoTime,
  /** The municipality the entry is on behalf of (the asker of a query, the registering municipality …). */
  municipality: z.string().max(32).nullable(),
  /** The other municipality of the exchange when the entry names one (a query's source, a relay's recipient). */
  counterpart: z.string().max(32).nullable(),
  ...accessFacts,
}).strict();
export type GatewayTrailItem = z.infer<typeof gatewayTrailItemSchema>;

/** The gateway's entries, signed by it and sealed for B, as a source's are. */
export const gatewayTrailEntriesClaimsSchema = trailEntriesClaimsSchema.extend({
  iss: z.literal(GATEWAY_ID),
  items: z.array(gatewayTrailItemSchema).max(5000),
});
export type GatewayTrailEntriesClaims = z.infer<typeof gatewayTrailEntriesClaimsSchema>;

export const GATEWAY_TRAIL_STATUSES = ['ok', 'denied'] as const;

/** The gateway's answer (iss = gateway, aud = B): a status, and with `ok` the sealed entries; otherwise as a source's answer. */
export const gatewayTrailAnswerClaimsSchema = trailAnswerClaimsSchema.extend({
  iss: z.literal(GATEWAY_ID),
  status: z.enum(GATEWAY_TRAIL_STATUSES),
});
export type GatewayTrailAnswerClaims = z.infer<typeof gatewayTrailAnswerClaimsSchema>;

/* ---------- consent revocations (docs/DESIGN.md §4.4, docs/PROTOCOL.md §3.9) ---------- */

/** Where the gateway takes a requester's signed consent revocation (mTLS, municipalities). */
export const CONSENT_REVOCATIONS_GATEWAY_PATH = '/consent-revocations';
/** Where a municipality's federation port receives the revocations the gateway relays. */
export const CONSENT_REVOCATIONS_PATH = '/federation/consent-revocations';
/**
 * The longest a revocation message lives: a revocation matters only while the consent could still
 * be in force, and no consent runs longer than MAX_CONSENT_DAYS (shared/consent-policy.ts); a day
 * more lets a revocation of a consent about to expire still be relayed to a source that is down.
 */
export const CONSENT_REVOCATION_MAX_AGE_SECONDS = (366 + 1) * 24 * 3600;

/**
 * A consent revoked at the requester (iss = requester = B), aud `gateway`, relayed unchanged to
 * each source named. No personal data and no code: the consent id is B's own, and every hop keys
 * what it records by (requester, consent id), so a revocation can only ever refuse B's own queries.
 */
export const consentRevocationClaimsSchema = z.object({
  iss: municipality,
  aud: z.literal(GATEWAY_ID),
  ...signed,
  /** The municipality that recorded the consent and asks on its strength (must equal iss). */
  requester: municipality,
  consentId: z.string().min(1).max(64),
  /** The consent's sources: each receives the revocation. */
  sources: z.array(municipality).min(1).max(50),
  revokedAt: isoTime,
  /** B's access-log head when it signed (§3.0). */
  head: logHeadSchema,
}).strict().superRefine((c, ctx) => {
  if (c.requester !== c.iss) ctx.addIssue({ code: 'custom', path: ['requester'], message: 'must equal the signer (iss)' });
  if (c.sources.includes(c.iss)) ctx.addIssue({ code: 'custom', path: ['sources'], message: 'must not include the requester' });
  if (new Set(c.sources).size !== c.sources.length) ctx.addIssue({ code: 'custom', path: ['sources'], message: 'must not repeat a municipality' });
});
export type ConsentRevocationClaims = z.infer<typeof consentRevocationClaimsSchema>;
