/**
 * Minimal disclosure per purpose (docs/DESIGN.md §4.7, docs/PROTOCOL.md §8.1). VRS answered every request with the whole record
 * (ticket number, venue, physician); here each purpose names the FHIR Immunization elements it
 * may receive, and the source releases only those. The requester applies the same table to what
 * it receives, so its copy never holds more than the purpose allows even if a source over-shares.
 *
 * Always kept: `resourceType`, `id` and `meta.versionId` (the requester's copy is tied to the
 * source record and version by them) and an anonymous `patient` (FHIR requires one; the requester
 * ties records to its own resident by its code). Everything else is an allow-list entry below.
 */
import type { Purpose } from '../../../shared/federation/protocol.ts';

/** Immunization elements a purpose may be granted (https://hl7.org/fhir/R4/immunization.html). */
export const DISCLOSURE_ELEMENTS = [
  'status', 'vaccineCode', 'occurrenceDateTime', 'protocolApplied', 'lotNumber', 'location', 'performer', 'note',
] as const;
export type DisclosureElement = (typeof DISCLOSURE_ELEMENTS)[number];

/** What scheduling needs is what was given and when; everything else is for narrower purposes. */
const SCHEDULING: readonly DisclosureElement[] = ['status', 'vaccineCode', 'occurrenceDateTime', 'protocolApplied'];

/**
 * The purpose → elements table.
 * - next-dose-scheduling: vaccine, date, dose number and status (a void must reach the copy).
 * - certificate-issuance: + lot number (a vaccination certificate states it).
 * - adverse-event-follow-up: + lot, place and performer, and the note of a void (who gave which lot where).
 */
export const DISCLOSURE_POLICY: Readonly<Record<Purpose, readonly DisclosureElement[]>> = {
  'next-dose-scheduling': SCHEDULING,
  'certificate-issuance': [...SCHEDULING, 'lotNumber'],
  'adverse-event-follow-up': [...SCHEDULING, 'lotNumber', 'location', 'performer', 'note'],
};

/** The elements of DISCLOSURE_ELEMENTS a purpose does not receive. */
export const withheldFor = (purpose: Purpose): DisclosureElement[] =>
  DISCLOSURE_ELEMENTS.filter((e) => !DISCLOSURE_POLICY[purpose].includes(e));

/** An anonymous subject: who the record belongs to is the requester's own resident, found by code. */
const ANONYMOUS_PATIENT = { type: 'Patient', display: 'resident' };

/**
 * An Immunization cut down to what `purpose` may receive: a new object built from the allow-list,
 * never the input minus a few keys, so an element added to the mapping later stays home by default.
 */
export function discloseImmunization(resource: Record<string, unknown>, purpose: Purpose): Record<string, unknown> {
  const meta = resource.meta as { versionId?: unknown } | undefined;
  const out: Record<string, unknown> = {
    resourceType: resource.resourceType, id: resource.id, meta: { versionId: meta?.versionId }, patient: { ...ANONYMOUS_PATIENT },
  };
  for (const element of DISCLOSURE_POLICY[purpose]) {
    if (resource[element] !== undefined) out[element] = resource[element];
  }
  return out;
}
