/**
 * FHIR R4 mapping of vaccination records (https://hl7.org/fhir/R4/immunization.html). The same
 * mapping serves the staff read endpoint and the federation: A releases `toImmunization` output,
 * B imports it through `fromImmunization`, which re-validates every field against our own rules.
 */
import { z } from 'zod';
import { AppError } from '../../../shared/platform/errors.ts';
import { withoutMyNumber } from '../../../shared/platform/validation.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import {
  CATALOGUE_SYSTEM, CVX_SYSTEM, findProduct, findProductByCoding, publishedCodings, uncodedNote, type PublishedCoding,
} from './catalogue.ts';
import type { RecordStatus, RecordVersion } from './model.ts';
import { dateOrDateTime, todayInJapan } from '../../../shared/platform/dates.ts';
import { checkRecordFields } from './rules.ts';

export const PROVENANCE_EXTENSION = 'https://hikitsugi.example/fhir/StructureDefinition/record-provenance';
export const municipalitySource = (code: string): string => `urn:hikitsugi:municipality:${code}`;

export interface FhirReference {
  reference?: string;
  type?: string;
  identifier?: { system: string; value: string };
  display?: string;
}

export type ImmunizationSource = Pick<RecordVersion,
  'recordId' | 'version' | 'occurrenceDate' | 'vaccineCode' | 'lotNumber' | 'doseNumber' | 'place' | 'status' | 'reason' | 'createdAt'
  | 'sourceMunicipality' | 'sourceRecordId' | 'sourceVersion' | 'importRequestId' | 'retrievedAt'>;

export interface Immunization {
  resourceType: 'Immunization';
  id: string;
  meta: { versionId: string; lastUpdated: string; source?: string; profile?: string[]; tag?: { system: string; code: string; display?: string }[] };
  extension?: { url: string; extension: { url: string; [value: string]: unknown }[] }[];
  status: RecordStatus;
  vaccineCode: { coding: { system: string; code: string; display: string }[]; text: string };
  patient: FhirReference;
  occurrenceDateTime: string;
  primarySource: boolean;
  /* Absent on a copy whose release purpose withheld them (minimal disclosure). */
  lotNumber?: string;
  location?: { display: string };
  performer?: { actor: { display: string } }[];
  note?: { text: string }[];
  protocolApplied: { series: string; doseNumberPositiveInt: number }[];
}

/**
 * One record version as an Immunization: id = recordId (stable), meta.versionId = version. An
 * imported copy carries its provenance in meta.source and an extension, so a re-release says
 * where it came from. `patient` defaults to an anonymous Patient: callers name the subject their way.
 */
export function toImmunization(record: ImmunizationSource, patient: FhirReference = { type: 'Patient', display: 'resident' }): Immunization {
  const product = findProduct(record.vaccineCode);
  const display = product?.display ?? record.vaccineCode;
  const coding = [{ system: CATALOGUE_SYSTEM, code: record.vaccineCode, display }];
  // A CVX coding carries the CVX list's own (English) display, never our Japanese name (the
  // catalogue refuses a cvx without cvxDisplay at load); peers match it by code.
  if (product?.cvx) coding.push({ system: CVX_SYSTEM, code: product.cvx, display: product.cvxDisplay! });
  const imported = record.sourceMunicipality !== null;
  const resource: Immunization = {
    resourceType: 'Immunization',
    id: record.recordId,
    meta: { versionId: String(record.version), lastUpdated: record.createdAt, ...(imported ? { source: municipalitySource(record.sourceMunicipality!) } : {}) },
    status: record.status,
    vaccineCode: { coding, text: display },
    patient,
    occurrenceDateTime: record.occurrenceDate,
    primarySource: !imported,
    ...(record.lotNumber !== null ? { lotNumber: record.lotNumber } : {}),
    ...(record.place !== null ? { location: { display: record.place }, performer: [{ actor: { display: record.place } }] } : {}),
    protocolApplied: [{ series: product?.series ?? record.vaccineCode, doseNumberPositiveInt: record.doseNumber }],
  };
  if (record.status === 'entered-in-error' && record.reason) resource.note = [{ text: record.reason }];
  if (imported) {
    resource.extension = [{
      url: PROVENANCE_EXTENSION,
      extension: [
        { url: 'sourceMunicipality', valueString: record.sourceMunicipality },
        { url: 'sourceRecordId', valueString: record.sourceRecordId },
        { url: 'sourceVersion', valueInteger: record.sourceVersion },
        ...(record.importRequestId ? [{ url: 'importRequestId', valueString: record.importRequestId }] : []),
        ...(record.retrievedAt ? [{ url: 'retrievedAt', valueDateTime: record.retrievedAt }] : []),
      ],
    }];
  }
  return resource;
}

/** A searchset Bundle of Immunization resources (what GET …/immunizations returns). */
export function immunizationBundle(records: ImmunizationSource[], patient?: FhirReference) {
  return {
    resourceType: 'Bundle' as const,
    type: 'searchset' as const,
    total: records.length,
    entry: records.map((r) => ({ fullUrl: `urn:uuid:${r.recordId}`, resource: toImmunization(r, patient), search: { mode: 'match' as const } })),
  };
}

/* ---------- the JP Core form (the municipality's FHIR API and its bulk export) ---------- */

export const JP_IMMUNIZATION_PROFILE = 'http://jpfhir.jp/fhir/core/StructureDefinition/JP_Immunization';

/** Elements of an Immunization this server can return; `_elements` may name these. */
export const IMMUNIZATION_ELEMENTS = [
  'extension', 'status', 'vaccineCode', 'patient', 'occurrenceDateTime', 'primarySource', 'lotNumber', 'location', 'performer', 'note', 'protocolApplied',
] as const;
/** R4 Immunization's required elements (and JP_Immunization's): always returned, even under `_elements`. */
export const IMMUNIZATION_MANDATORY = ['status', 'vaccineCode', 'patient', 'occurrenceDateTime'] as const;

export interface JpImmunization extends Omit<Immunization, 'vaccineCode'> {
  /** No `coding` when no published code exists for the product: text only, and a note says so. */
  vaccineCode: { coding?: PublishedCoding[]; text: string };
}

/**
 * One record version as a JP Core JP_Immunization: the same mapping as `toImmunization` (the
 * one the federation exchanges, unchanged), with the profile declared, the patient referenced by
 * a Patient this server serves, and the vaccine coded by published lists only (JP codes, then
 * CVX). A product without a published code is text only, with a note saying so.
 */
export function toJpImmunization(record: ImmunizationSource, patient: FhirReference): JpImmunization {
  const base = toImmunization(record, patient);
  const product = findProduct(record.vaccineCode);
  const coded = product ? publishedCodings(product) : [];
  const notes = [...(base.note ?? [])];
  if (coded.length === 0) notes.push({ text: product ? uncodedNote(product) : `vaccineCode is text only: ${record.vaccineCode} is not a catalogue product` });
  const { note: _note, ...rest } = base;
  return {
    ...rest,
    meta: { ...base.meta, profile: [JP_IMMUNIZATION_PROFILE] },
    vaccineCode: { ...(coded.length > 0 ? { coding: coded } : {}), text: base.vaccineCode.text },
    ...(notes.length > 0 ? { note: notes } : {}),
  };
}

// What a peer sends as free text (place, lot, note) is held to the rule of what a clerk types: no
// My Number in any notation (shared/platform/validation.ts#withoutMyNumber), else the record is refused.
const display = z.object({ display: z.string().trim().min(1, 'is required').max(200, 'must be at most 200 characters').superRefine(withoutMyNumber) }).passthrough();

const immunizationSchema = z.object({
  resourceType: z.literal('Immunization', { error: 'must be Immunization' }),
  id: z.string({ error: 'is required' }).regex(/^[A-Za-z0-9\-.]{1,64}$/, 'must be a FHIR id'),
  meta: z.object({
    versionId: z.string({ error: 'is required' }).regex(/^[1-9]\d{0,8}$/, 'must be a positive version number'),
  }).passthrough(),
  status: z.enum(['completed', 'entered-in-error'], { error: 'must be completed or entered-in-error' }),
  vaccineCode: z.object({
    coding: z.array(z.object({ system: z.string().max(200), code: z.string().max(40) }).passthrough()).min(1, 'must have a coding').max(10),
  }).passthrough(),
  // The one validator (shared/platform/dates.ts): a real day in range, a time only with its offset.
  occurrenceDateTime: dateOrDateTime(),
  // Optional: a release for a purpose that does not need them leaves out the lot and the place.
  lotNumber: z.string().max(20, 'must be at most 20 characters').superRefine(withoutMyNumber).optional(),
  location: display.optional(),
  performer: z.array(z.object({ actor: display }).passthrough()).max(10).optional(),
  note: z.array(z.object({ text: z.string().max(500).superRefine(withoutMyNumber) }).passthrough()).max(10).optional(),
  protocolApplied: z.array(z.object({
    doseNumberPositiveInt: z.number({ error: 'is required' }).int('must be a whole number').min(1, 'must be at least 1'),
  }).passthrough()).min(1, 'must name the dose number'),
}).passthrough();

/** What an imported Immunization becomes (provenance of the source copy included). */
export interface ImportedImmunization {
  sourceRecordId: string;
  sourceVersion: number;
  occurrenceDate: string;
  vaccineCode: string;
  /** Null when the release purpose withheld it. */
  lotNumber: string | null;
  doseNumber: number;
  /** Null when the release purpose withheld it. */
  place: string | null;
  status: RecordStatus;
  reason: string | null;
  /** The municipality that first recorded it, when the resource was itself an imported copy. */
  originMunicipality: string | null;
}

const invalid = (field: string, rule: string) =>
  new AppError(422, 'invalid-immunization', `Invalid Immunization ${field}: ${rule}`, { field: `Immunization.${field}`, rule });

/**
 * Validated parse of an Immunization received from another municipality.
 * @throws AppError 422 `invalid-immunization` naming the element and the rule it broke.
 */
export function fromImmunization(resource: unknown): ImportedImmunization {
  const parsed = immunizationSchema.safeParse(resource);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalid(issue.path.join('.') || 'resource', issue.message);
  }
  const r = parsed.data;
  // Our own code first; else the first published code (HOT9, YJ, CVX) that names exactly one product.
  const ours = r.vaccineCode.coding.find((c) => c.system === CATALOGUE_SYSTEM);
  const product = (ours ? findProduct(ours.code) : undefined)
    ?? r.vaccineCode.coding.map((c) => findProductByCoding(c.system, c.code)).find((p) => p !== undefined);
  if (!product) throw invalid('vaccineCode', 'must carry a catalogue code, or a HOT9, YJ or CVX code of exactly one catalogue product');
  const place = r.location?.display ?? r.performer?.[0]?.actor.display ?? null;
  const fields = {
    vaccineCode: product.code,
    lotNumber: r.lotNumber ?? null,
    doseNumber: r.protocolApplied[0]!.doseNumberPositiveInt,
    occurrenceDate: r.occurrenceDateTime.slice(0, 10),
  };
  // A withheld lot is not a malformed one: the lot format is checked only when a lot came.
  const violation = checkRecordFields({ ...fields, lotNumber: fields.lotNumber ?? '' }, todayInJapan())
    .find((v) => v.field !== 'lotNumber' || fields.lotNumber !== null);
  if (violation) throw invalid(violation.field, violation.rule);
  const source = typeof r.meta.source === 'string' ? r.meta.source.match(/^urn:hikitsugi:municipality:(\d{6})$/)?.[1] : undefined;
  return {
    sourceRecordId: r.id,
    sourceVersion: Number(r.meta.versionId),
    ...fields,
    place: place === null ? null : place.trim(),
    status: r.status,
    reason: r.note?.[0]?.text ?? null,
    originMunicipality: source && isValidMunicipalityCode(source) ? source : null,
  };
}
