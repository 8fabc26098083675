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
  CONSENT_RECORD: 'consent.record',
  CONSENT_REVOKE: 'consent.revoke',
  MOVE_OUT: 'resident.move_out',
  MOVE_IN: 'resident.move_in',
  QUERY_SEND: 'exchange.query.send',
  QUERY_ANSWER: 'exchange.query.answer',
  RECORDS_IMPORT: 'exchange.records.import',
  LOG_READ: 'audit.read',
  LOG_VERIFY: 'audit.verify',
  LOG_EXPORT: 'audit.export',
} as const;

export type Action = (typeof Actions)[keyof typeof Actions];
