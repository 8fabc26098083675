/** Access-log actions of the issuer: constants, so a search by action can trust the spelling. */
export const IssuerActions = {
  /** A municipality had a resident's code derived (subject = that code). */
  CODE_ISSUE: 'code.issue',
} as const;
