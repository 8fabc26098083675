import { CONSENT_SCOPE, type QuerySubject, type SubjectStatus } from './protocol.ts';

export interface PolicyVerdict {
  status: Extract<SubjectStatus, 'ok' | 'no_consent' | 'consent_expired' | 'denied'>;
  reason?: string;
  flags: string[];
}

/**
 * Checks one subject of a signed query against its legal basis: the consent terms B signed in,
 * or the exception approval. Run on its own at every hop (B before signing, the gateway, A), so
 * that no single member's mistake or malice releases records.
 */
export function checkLegalBasis(subject: QuerySubject, query: { purpose: string; actor?: string }, now = new Date()): PolicyVerdict {
  if (subject.legalBasis === 'life-protection') {
    const e = subject.exception;
    if (!e) return { status: 'denied', reason: 'exception_missing', flags: ['life-protection'] };
    if (e.approvedBy === e.requestedBy) return { status: 'denied', reason: 'exception_self_approved', flags: ['life-protection'] };
    if (e.justification.trim().length < 20) return { status: 'denied', reason: 'exception_unjustified', flags: ['life-protection'] };
    return { status: 'ok', flags: ['life-protection'] };
  }
  const c = subject.consent;
  if (!c) return { status: 'no_consent', reason: 'no_consent_terms', flags: [] };
  if (c.scope !== CONSENT_SCOPE) return { status: 'no_consent', reason: 'consent_scope', flags: [] };
  if (c.purpose !== query.purpose) return { status: 'no_consent', reason: 'consent_purpose', flags: [] };
  if (!c.sources.includes(subject.source)) return { status: 'no_consent', reason: 'consent_source', flags: [] };
  if (Date.parse(c.givenAt) > now.getTime() + 60_000) return { status: 'no_consent', reason: 'consent_not_yet_given', flags: [] };
  if (Date.parse(c.expiresAt) <= now.getTime()) return { status: 'consent_expired', reason: 'consent_expired', flags: [] };
  return { status: 'ok', flags: [] };
}
