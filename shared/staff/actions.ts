/** Staff sign-in and sessions in the access log (SECURITY.md §2): each one an access. */
export const StaffActions = {
  /** A sign-in, allowed or refused (refused: the account's staff id, or `unknown` and a keyed hash of the name). */
  STAFF_SIGN_IN: 'staff.sign_in',
  /** The failed attempt that locked an account name. */
  STAFF_LOCKOUT: 'staff.lockout',
  /** An administrator lifted an account's lock (subject = the account). */
  STAFF_UNLOCK: 'staff.unlock',
  STAFF_SIGN_OUT: 'staff.sign_out',
  /** A staff member changed their own password (every session of theirs ends), or was refused. */
  STAFF_PASSWORD_CHANGE: 'staff.password_change',
  /** An administrator disabled an account (subject = the account). */
  STAFF_DISABLE: 'staff.disable',
} as const;
