/** Access-log actions of the issuer: constants, so a search by action can trust the spelling. */
export const IssuerActions = {
  /** A municipality had a resident's code derived from its seed (subject = that code). */
  CODE_ISSUE: 'code.issue',
  /** A municipality had a batch of blinded elements evaluated with the issuer's key share (no subject: the issuer cannot tell whose). */
  CODE_EVALUATE: 'code.evaluate',
  /** A municipality moved a code registered under the old derivation to its seed's link (subject = that code). */
  CODE_REKEY: 'code.rekey',
} as const;
