/** Access-log actions of the issuer: constants, so a search by action can trust the spelling. */
export const IssuerActions = {
  /** A municipality had a resident's code derived from its seed (subject = that code). */
  CODE_ISSUE: 'code.issue',
  /**
   * A batch of a municipality's codes handed to the gateway to record or move (no subject; the
   * count, the kind and the SHA-256 of the codes): written before the call, so the gateway never
   * holds a correspondence the issuer's log does not account for (docs/PROTOCOL.md §6.1).
   */
  CODE_SEND: 'code.send',
  /** A municipality had a batch of blinded elements evaluated with the issuer's key share (no subject: the issuer cannot tell whose). */
  CODE_EVALUATE: 'code.evaluate',
  /** A municipality moved a code registered under the old derivation to its seed's link (subject = that code). */
  CODE_REKEY: 'code.rekey',
} as const;
