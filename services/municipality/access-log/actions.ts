import { StaffActions } from '../../../shared/staff/actions.ts';

/** Access-log actions at a municipality: constants, so a query by action can trust the spelling. */
export const Actions = {
  RESIDENT_CREATE: 'resident.create',
  RESIDENT_READ: 'resident.read',
  RESIDENT_SEARCH: 'resident.search',
  RESIDENT_UPDATE: 'resident.update',
  RESIDENT_STATUS: 'resident.status',
  MY_NUMBER_REVEAL: 'resident.my_number.reveal',
  RECORD_CREATE: 'vaccination.create',
  RECORD_READ: 'vaccination.read',
  RECORD_CORRECT: 'vaccination.correct',
  RECORD_VOID: 'vaccination.void',
  TICKET_REGISTER: 'ticket.register',
  TICKET_REVIEW: 'ticket.review',
  TICKET_ISSUE: 'ticket.issue',
  TICKET_READ: 'ticket.read',
  TICKET_REVIEW_READ: 'ticket.review.read',
  TICKET_REVIEW_RESOLVE: 'ticket.review.resolve',
  CONSENT_RECORD: 'consent.record',
  CONSENT_REVOKE: 'consent.revoke',
  CONSENT_READ: 'consent.read',
  /** A revoked consent's signed revocation was recorded by the gateway (or refused); consentId, no subject (docs/DESIGN.md §4.4). */
  CONSENT_REVOCATION_SEND: 'exchange.consent_revocation.send',
  /** A requester's signed revocation, relayed by the gateway, was recorded here as a source (or refused). */
  CONSENT_REVOCATION_RECEIVE: 'exchange.consent_revocation.receive',
  MOVE_OUT: 'resident.move_out',
  MOVE_IN: 'resident.move_in',
  QUERY_SEND: 'exchange.query.send',
  EXCEPTION_REQUEST: 'exchange.exception.request',
  EXCEPTION_APPROVE: 'exchange.exception.approve',
  QUERY_ANSWER: 'exchange.query.answer',
  /** A subject of a query a stopped process left in flight, settled at the next start as source_unavailable/interrupted. */
  QUERY_INTERRUPTED: 'exchange.query.interrupted',
  RECORDS_IMPORT: 'exchange.records.import',
  BULK_CREATE: 'exchange.bulk.create',
  BULK_READ: 'exchange.bulk.read',
  BULK_RETRY: 'exchange.bulk.retry',
  LOG_READ: 'audit.read',
  LOG_VERIFY: 'audit.verify',
  LOG_EXPORT: 'audit.export',
  LOG_CHECKPOINT: 'audit.checkpoint',
  LOG_RECONCILE: 'audit.reconcile',
  DISCLOSURE_REPORT: 'audit.disclosure',
  /* Correction notices, anomaly alerts, resident notices (docs/DESIGN.md §4.10–§4.12). */
  /** A correction notice about a record another municipality imported was accepted by the gateway (or refused). */
  CORRECTION_SEND: 'exchange.correction.send',
  /** A correction notice from the source was applied to our imported copy (or refused). */
  CORRECTION_RECEIVE: 'exchange.correction.receive',
  /** A clerk read the correction notices received for a resident (before/after fields). */
  CORRECTION_READ: 'exchange.correction.read',
  /** The detector raised an anomaly alert for the privacy officer. */
  ALERT_RAISE: 'alert.raise',
  /** A privacy officer listed alerts, or ran the detectors on demand. */
  ALERT_READ: 'alert.read',
  ALERT_RUN: 'alert.run',
  /** Staff read a resident's notices of cross-municipality access and their delivery status. */
  NOTICE_READ: 'notice.read',
  /* FHIR Bulk Data export (services/municipality/fhir/export). */
  /** A clerk asked for a bulk export (kick-off accepted or refused). */
  FHIR_EXPORT_REQUEST: 'fhir.export.request',
  /** The export read every resident and record it covers and wrote its files (counts in details). */
  FHIR_EXPORT_RUN: 'fhir.export.run',
  /** A clerk downloaded one NDJSON file of an export. */
  FHIR_EXPORT_DOWNLOAD: 'fhir.export.download',
  /** A clerk cancelled an export or released its files. */
  FHIR_EXPORT_CANCEL: 'fhir.export.cancel',
  /** A clerk issued a resident's vaccination certificate (SMART Health Card, docs/DESIGN.md §4.11); details: number of doses. */
  CERTIFICATE_ISSUE: 'certificate.issue',
  /* Retention by the national rule (docs/DESIGN.md §4.13). */
  /**
   * The tombstone: a resident's records (and, once every period passed, personal data) were
   * removed. Subject: the addressee number; details: rows per table and the rule with its period.
   */
  RETENTION_REMOVE: 'retention.remove',
  /** A privacy officer ran the retention job on demand (details: residents removed). */
  RETENTION_RUN: 'retention.run',
  /** A privacy officer listed the removals. */
  RETENTION_READ: 'retention.read',
  /* The resident's own page (docs/DESIGN.md §4.14). */
  /** A clerk enrolled a resident's credential (their personal certificate) for the resident page. */
  CREDENTIAL_ENROLL: 'resident.credential.enroll',
  /** A clerk listed a resident's enrolled credentials. */
  CREDENTIAL_READ: 'resident.credential.read',
  /** A clerk withdrew a resident's credential; its sessions end. */
  CREDENTIAL_WITHDRAW: 'resident.credential.withdraw',
  /** A resident signed in at their own page with an enrolled credential (or was refused, with the reason). */
  RESIDENT_SIGN_IN: 'resident.sign_in',
  RESIDENT_SIGN_OUT: 'resident.sign_out',
  /** A resident read their own records and consents at their page (the trail reading is `audit.disclosure`). */
  RESIDENT_SELF_READ: 'resident.self.read',
  /** This municipality asked one the resident lived in for its entries about them, for the signed-in resident (docs/PROTOCOL.md §3.10). */
  TRAIL_REQUEST: 'exchange.trail.request',
  /** Another municipality asked, on the resident's own signature, for our entries about them (answered or refused). */
  TRAIL_ANSWER: 'exchange.trail.answer',
  /* Staff sign-in and sessions: named by the staff folder, which logs them. */
  ...StaffActions,
} as const;

export type Action = (typeof Actions)[keyof typeof Actions];
