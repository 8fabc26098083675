import { StaffActions } from '../../shared/staff/actions.ts';

/** Access-log actions of the gateway: constants, so a search by action can trust the spelling. */
export const GatewayActions = {
  /** Gateway: the issuer registered a (linkId, municipality, code) correspondence. */
  CORRESPONDENCE_REGISTER: 'correspondence.register',
  /** Gateway: a municipality had a batch of blinded elements evaluated with the gateway's key share (no subject: the gateway cannot tell whose). */
  CODE_EVALUATE: 'code.evaluate',
  /** Gateway: the issuer moved a person's rows to the link of the new derivation (subject = the asking municipality's code). */
  CORRESPONDENCE_REKEY: 'correspondence.rekey',
  /** Gateway: the issuer replaced the attestation of a row after a rekey (subject = the code). */
  CORRESPONDENCE_ATTEST: 'correspondence.attest',
  /** Gateway: a whole query was refused before any subject was looked at (signature, replay, size…). */
  QUERY_REFUSE: 'query.refuse',
  /** Gateway: one subject of a query was forwarded to its source, or refused here. */
  QUERY_ROUTE: 'query.route',
  /** Gateway: the source's answer for one forwarded subject (or its absence). */
  QUERY_ANSWER: 'query.answer',
  /** Gateway: a municipality read the gateway's entries about its own exchanges (reconciliation, trace). */
  MEMBER_LOG_READ: 'audit.member_read',
  /* The gateway's own privacy officers, at its console. */
  LOG_READ: 'audit.read',
  LOG_VERIFY: 'audit.verify',
  LOG_EXPORT: 'audit.export',
  LOG_CHECKPOINT: 'audit.checkpoint',
  LOG_RECONCILE: 'audit.reconcile',
  /* Correction notices relayed, anomaly alerts. */
  /** A source's correction notice was accepted for relay (or refused); subject = the source's code. */
  CORRECTION_RELAY: 'correction.relay',
  /** A relayed correction notice reached its recipient (or was refused by it, or expired undelivered). */
  CORRECTION_DELIVER: 'correction.deliver',
  /** A resident's trail request from the municipality they live in, routed to one they lived in (docs/PROTOCOL.md §3.10). */
  TRAIL_ROUTE: 'trail.route',
  /** The gateway's own entries about a resident, disclosed to the municipality they live in (subject = its code; docs/PROTOCOL.md §3.10). */
  TRAIL_DISCLOSE: 'trail.disclose',
  /* Consent revocations relayed (docs/DESIGN.md §4.4). */
  /** A requester's signed consent revocation was recorded (or refused); consentId = the requester's consent id, no subject. */
  CONSENT_REVOCATION_RECORD: 'consent_revocation.record',
  /** A recorded revocation reached a source (or was refused by it, or expired undelivered). */
  CONSENT_REVOCATION_RELAY: 'consent_revocation.relay',
  ALERT_RAISE: 'alert.raise',
  ALERT_READ: 'alert.read',
  ALERT_RUN: 'alert.run',
  /* The gateway's own staff signing in at its staff port (SECURITY.md §2): the same events as at a municipality. */
  ...StaffActions,
} as const;

export type GatewayAction = (typeof GatewayActions)[keyof typeof GatewayActions];
