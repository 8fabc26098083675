/**
 * Roles and their separation of duties (docs/DESIGN.md §6.4): a clerk reads records, not logs; a
 * privacy officer reads logs, not records; an operator runs move-in work and watches jobs; an
 * admin manages staff accounts only.
 */
export const ROLES = ['clerk', 'privacy_officer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The principal of one request, built from a verified session token. */
export interface Actor {
  staffId: string;
  role: Role;
  municipality: string;
}

export const isRole = (value: unknown): value is Role => typeof value === 'string' && (ROLES as readonly string[]).includes(value);
