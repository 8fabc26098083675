/** Access-log actions of the gateway and the issuer: constants, so a search by action can trust the spelling. */
export const GatewayActions = {
  /** Issuer: a municipality had a resident's code derived (subject = that code). */
  CODE_ISSUE: 'code.issue',
  /** Gateway: the issuer registered a (linkId, municipality, code) correspondence. */
  CORRESPONDENCE_REGISTER: 'correspondence.register',
  /** Gateway: a whole query was refused before any subject was looked at (signature, replay, size…). */
  QUERY_REFUSE: 'query.refuse',
  /** Gateway: one subject of a query was forwarded to its source, or refused here. */
  QUERY_ROUTE: 'query.route',
  /** Gateway: the source's answer for one forwarded subject (or its absence). */
  QUERY_ANSWER: 'query.answer',
} as const;

export type GatewayAction = (typeof GatewayActions)[keyof typeof GatewayActions];
