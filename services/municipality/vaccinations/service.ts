/**
 * Vaccination records, tickets and the ticket review queue. Records are append-only versions:
 * nothing is overwritten, a correction supersedes, a void keeps the record with a reason. Every
 * function runs in the caller's transaction and logs its access there.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { todayInJapan } from '../../../shared/platform/dates.ts';
import { drawUnusedNumbers } from '../../../shared/platform/unused-numbers.ts';
import type { Transaction } from 'sequelize';
import { conflict, notFound, unprocessable } from '../../../shared/platform/errors.ts';
import { Actions } from '../access-log/actions.ts';
import { logStaffAccess, logStaffAccessBatch, type StaffAccess } from '../access-log/service.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { findResidentById, requireResident, type ResidentRecord } from '../residents/service.ts';
import { findProduct } from './catalogue.ts';
import { immunizationBundle, type FhirReference, type ImportedImmunization } from './fhir.ts';
import {
  currentVersionsOf, currentVersionsOfMany, insertReview, insertTickets, markTicketUsed, resolveReview, findCurrentVersion, findImportedOf, findReview, findTicket, findTickets,
  findVersions, insertVersion, insertVersions, listReviewRows, retireCurrent, retireCurrentMany, ticketsOf, versionsByIds, type RecordVersion, type ReviewRecord, type TicketRecord,
} from './model.ts';
import type { ApproveReviewInput, CorrectionInput, FromTicketInput, IssueTicketInput, ListReviewsInput, RecordInput } from './schemas.ts';
import {
  checkAgainstBirth, checkDoseSequence, checkRecordFields, nextDoseNumber, type ExistingDose, type RecordFields, type Violation,
} from './rules.ts';
import { formatOcrLine, parseOcrLine, ticketAdmits, type ParsedTicket, type TicketType } from './tickets.ts';

/* ---------- views ---------- */

export interface RecordView {
  recordId: string;
  version: number;
  versionId: string;
  supersedes: string | null;
  occurrenceDate: string;
  vaccineCode: string;
  vaccineDisplay: string;
  /** Null on an imported copy whose purpose did not release it (minimal disclosure). */
  lotNumber: string | null;
  doseNumber: number;
  ticketNumber: string | null;
  place: string | null;
  status: RecordVersion['status'];
  current: boolean;
  reason: string | null;
  recordedBy: string;
  recordedAt: string;
  provenance: {
    sourceMunicipality: string; sourceRecordId: string | null; sourceVersion: number | null; importRequestId: string | null; retrievedAt: string | null;
    /** The purpose the source released this copy under: it decided which fields came. */
    purpose: string | null;
  } | null;
}

export function toRecordView(v: RecordVersion): RecordView {
  return {
    recordId: v.recordId,
    version: v.version,
    versionId: v.id,
    supersedes: v.supersedes,
    occurrenceDate: v.occurrenceDate,
    vaccineCode: v.vaccineCode,
    vaccineDisplay: findProduct(v.vaccineCode)?.display ?? v.vaccineCode,
    lotNumber: v.lotNumber,
    doseNumber: v.doseNumber,
    ticketNumber: v.ticketNumber,
    place: v.place,
    status: v.status,
    current: v.current,
    reason: v.reason,
    recordedBy: v.actorId,
    recordedAt: v.createdAt,
    provenance: v.sourceMunicipality === null ? null : {
      sourceMunicipality: v.sourceMunicipality, sourceRecordId: v.sourceRecordId, sourceVersion: v.sourceVersion,
      importRequestId: v.importRequestId, retrievedAt: v.retrievedAt, purpose: v.releasePurpose,
    },
  };
}

/* ---------- rules ---------- */

const recordRule = (violations: Violation[]) => unprocessable('record-rule', `Record rule broken: ${violations[0]!.field} ${violations[0]!.rule}`, {
  field: violations[0]!.field, rule: violations[0]!.rule, errors: violations,
});

/** The doses that count for the rules, of a resident's current versions: those not voided. */
const activeDosesOf = (versions: RecordVersion[]): ExistingDose[] => versions
  .filter((v) => v.status === 'completed')
  .map((v) => ({ recordId: v.recordId, vaccineCode: v.vaccineCode, doseNumber: v.doseNumber, occurrenceDate: v.occurrenceDate }));

/** The doses that count for the rules: current versions that are not voided. */
async function activeDoses(ctx: MunicipalityContext, residentId: string, t: Transaction): Promise<ExistingDose[]> {
  return activeDosesOf(await currentVersionsOf(ctx.models.VaccinationRecord, residentId, t));
}

/** Every rule a record must pass against this resident and the doses it holds (catalogue, calendar, birth, dose sequence). */
function checkRecord(resident: ResidentRecord, fields: RecordFields & { recordId?: string }, doses: ExistingDose[], today: string): void {
  const violations = checkRecordFields(fields, today);
  if (violations.length === 0) {
    violations.push(...checkAgainstBirth(fields.occurrenceDate, resident.birthDate));
    violations.push(...checkDoseSequence(fields, doses));
  }
  if (violations.length) throw recordRule(violations);
}

/** Every rule a record must pass against this resident as the database holds them now. */
async function validateRecord(ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, fields: RecordFields & { recordId?: string }): Promise<void> {
  checkRecord(resident, fields, await activeDoses(ctx, resident.id, t), todayInJapan());
}

function requireActive(resident: ResidentRecord): void {
  if (resident.status !== 'resident') {
    throw unprocessable('resident-not-active', `The resident has status ${resident.status}`, {
      field: 'addresseeNumber', rule: 'new records and tickets need a current resident (status resident)',
    });
  }
}

/* ---------- records ---------- */

/** A new record for a resident. */
export interface NewRecord {
  resident: ResidentRecord;
  input: RecordInput;
}

/**
 * Writes version 1 of new records, each under `createRecord`'s rules as if written one after
 * another in the order given: a dose is checked against the resident's doses held and those
 * earlier in the batch. A refusal is the error the one-by-one calls would have met first, and
 * nothing of the batch is written. One read of the doses held, one INSERT per 400 records.
 * @returns the records as stored, in the order given, and the RECORD_CREATE entry each one owes
 *   the access log: the caller appends them in `t` (logStaffAccessBatch).
 */
export async function createRecords(
  ctx: MunicipalityContext, t: Transaction, items: NewRecord[], actor: Actor,
): Promise<{ records: RecordView[]; access: StaffAccess[] }> {
  const today = todayInJapan();
  const doses = new Map<string, ExistingDose[]>();
  const held = await currentVersionsOfMany(ctx.models.VaccinationRecord, [...new Set(items.map((i) => i.resident.id))], t);
  for (const [residentId, versions] of held) doses.set(residentId, activeDosesOf(versions));
  const rows = items.map(({ resident, input }): Omit<RecordVersion, 'createdAt'> => {
    requireActive(resident);
    const active = doses.get(resident.id) ?? [];
    checkRecord(resident, input, active, today);
    const recordId = randomUUID();
    doses.set(resident.id, [...active, { recordId, vaccineCode: input.vaccineCode, doseNumber: input.doseNumber, occurrenceDate: input.occurrenceDate }]);
    return {
      id: randomUUID(), recordId, version: 1, residentId: resident.id,
      occurrenceDate: input.occurrenceDate, vaccineCode: input.vaccineCode, lotNumber: input.lotNumber, doseNumber: input.doseNumber,
      ticketNumber: input.ticketNumber ?? null, place: input.place, status: 'completed', supersedes: null, current: true, reason: null,
      actorId: actor.staffId, sourceMunicipality: null, sourceRecordId: null, sourceVersion: null, importRequestId: null, retrievedAt: null,
      releasePurpose: null,
    };
  });
  await insertVersions(ctx.models.VaccinationRecord, rows, t);
  const stored = new Map((await versionsByIds(ctx.models.VaccinationRecord, rows.map((r) => r.id), t)).map((v) => [v.id, v]));
  return {
    records: rows.map((r) => toRecordView(stored.get(r.id)!)),
    access: items.map(({ resident }, i) => ({
      action: Actions.RECORD_CREATE, subject: resident.addresseeNumber, outcome: 'allowed' as const, recordIds: [rows[i]!.recordId],
    })),
  };
}

/**
 * Writes version 1 of a new record for a current resident, after every rule passes
 * (`createRecords` for one), and logs RECORD_CREATE.
 * @throws 422 `record-rule` (naming the field and rule) or `resident-not-active`.
 */
export async function createRecord(
  ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, input: RecordInput, actor: Actor,
): Promise<RecordView> {
  const { records: [record], access } = await createRecords(ctx, t, [{ resident, input }], actor);
  await logStaffAccessBatch(ctx, t, actor, access);
  return record!;
}

/** The current version of a resident's record, for a write: 404 if it is not this resident's. */
async function currentOf(ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, recordId: string): Promise<RecordVersion> {
  const current = await findCurrentVersion(ctx.models.VaccinationRecord, recordId, t);
  if (!current || current.residentId !== resident.id) throw notFound('Vaccination record');
  return current;
}

function requireLocalAndActive(current: RecordVersion): void {
  if (current.sourceMunicipality !== null) {
    throw conflict('imported-record', 'An imported copy is corrected at its source municipality, then imported again', {
      field: 'recordId', rule: 'must be a record of this municipality',
    });
  }
  if (current.status === 'entered-in-error') {
    throw conflict('record-voided', 'The record is voided', { field: 'recordId', rule: 'must not be voided' });
  }
}

async function supersede(
  ctx: MunicipalityContext, t: Transaction, current: RecordVersion, next: Partial<RecordVersion> & { reason: string }, actor: Actor,
): Promise<RecordVersion> {
  await retireCurrent(ctx.models.VaccinationRecord, current.recordId, t);
  const { id: _id, createdAt: _at, ...carried } = current;
  return insertVersion(ctx.models.VaccinationRecord, {
    ...carried, ...next, id: randomUUID(), version: current.version + 1, supersedes: current.id, current: true, actorId: actor.staffId,
  }, t);
}

/** A correction: a new version with the changed fields, superseding the current one (reason, actor kept). */
/**
 * What happens when a local record gets a new version, in the same transaction: the app wires it
 * to the correction outbox, so municipalities that imported the record are told (docs/DESIGN.md §4.10).
 */
export type RecordChanged = (
  ctx: MunicipalityContext, t: Transaction, resident: Pick<ResidentRecord, 'id' | 'addresseeNumber'>,
  version: Pick<RecordVersion, 'recordId' | 'version'>, change: 'corrected' | 'voided',
) => Promise<unknown>;

export async function correctRecord(
  ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, recordId: string, input: CorrectionInput, actor: Actor, recordChanged: RecordChanged,
): Promise<RecordView> {
  const current = await currentOf(ctx, t, resident, recordId);
  requireLocalAndActive(current);
  const { reason, ...changes } = input;
  const merged = {
    occurrenceDate: changes.occurrenceDate ?? current.occurrenceDate,
    vaccineCode: changes.vaccineCode ?? current.vaccineCode,
    // A local record always has its lot (only imported copies may lack one).
    lotNumber: changes.lotNumber ?? current.lotNumber ?? '',
    doseNumber: changes.doseNumber ?? current.doseNumber,
    place: changes.place ?? current.place,
  };
  const changed = (Object.keys(merged) as (keyof typeof merged)[]).filter((k) => merged[k] !== current[k]);
  if (changed.length === 0) throw unprocessable('no-change', 'The correction changes nothing', { field: Object.keys(changes)[0] ?? 'reason', rule: 'must differ from the current version' });
  await validateRecord(ctx, t, resident, { ...merged, recordId });
  const version = await supersede(ctx, t, current, { ...merged, reason }, actor);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.RECORD_CORRECT, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: [recordId], reason: reason.slice(0, 200),
    details: { fields: changed, version: version.version },
  });
  await recordChanged(ctx, t, resident, version, 'corrected');
  return toRecordView(version);
}

/** A void: a new version with status entered-in-error and the reason; the record stays readable. */
export async function voidRecord(
  ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, recordId: string, reason: string, actor: Actor, recordChanged: RecordChanged,
): Promise<RecordView> {
  const current = await currentOf(ctx, t, resident, recordId);
  requireLocalAndActive(current);
  const version = await supersede(ctx, t, current, { status: 'entered-in-error', reason }, actor);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.RECORD_VOID, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: [recordId], reason: reason.slice(0, 200),
    details: { version: version.version },
  });
  await recordChanged(ctx, t, resident, version, 'voided');
  return toRecordView(version);
}

/** The current version of every record of a resident (voided ones included); logs RECORD_READ. */
export async function readRecords(ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, actor: Actor): Promise<RecordView[]> {
  const versions = await currentVersionsOf(ctx.models.VaccinationRecord, resident.id, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.RECORD_READ, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: versions.map((v) => v.recordId),
  });
  return versions.map(toRecordView);
}

export async function readRecord(ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, recordId: string, actor: Actor): Promise<RecordView> {
  const current = await currentOf(ctx, t, resident, recordId);
  await logStaffAccess(ctx, t, actor, { action: Actions.RECORD_READ, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: [recordId] });
  return toRecordView(current);
}

/** Every version of one record, oldest first; logs RECORD_READ. */
export async function recordHistory(ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, recordId: string, actor: Actor): Promise<RecordView[]> {
  const versions = (await findVersions(ctx.models.VaccinationRecord, { recordId }, t)).sort((a, b) => a.version - b.version);
  if (versions.length === 0 || versions[0]!.residentId !== resident.id) throw notFound('Vaccination record');
  await logStaffAccess(ctx, t, actor, {
    action: Actions.RECORD_READ, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: [recordId], details: { view: 'history' },
  });
  return versions.map(toRecordView);
}

/**
 * What this municipality may release about a resident to another one: the current version of each
 * record it holds as the source (voided ones too, so the requester's copy learns of the void).
 * Copies imported from a third municipality are not re-released: they are that municipality's
 * to release, under a consent that names it. No logging here: the caller logs the release.
 */
export async function releasableRecords(ctx: MunicipalityContext, residentId: string, t?: Transaction): Promise<RecordVersion[]> {
  return (await releasableRecordsOfMany(ctx, [residentId], t)).get(residentId) ?? [];
}

/** `releasableRecords` for every resident of a forwarded batch, in one read. */
export async function releasableRecordsOfMany(ctx: MunicipalityContext, residentIds: string[], t?: Transaction): Promise<Map<string, RecordVersion[]>> {
  const byResident = await currentVersionsOfMany(ctx.models.VaccinationRecord, residentIds, t);
  for (const [id, versions] of byResident) byResident.set(id, versions.filter((v) => v.sourceMunicipality === null));
  return byResident;
}

/** The resident's records as a FHIR R4 searchset Bundle of Immunization; logs RECORD_READ. */
export async function readImmunizations(ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, actor: Actor) {
  const versions = await currentVersionsOf(ctx.models.VaccinationRecord, resident.id, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.RECORD_READ, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: versions.map((v) => v.recordId), details: { format: 'fhir' },
  });
  const patient: FhirReference = { reference: `Patient/${resident.addresseeNumber}`, display: resident.name };
  return immunizationBundle(versions, patient);
}

/* ---------- imports ---------- */

export interface ImportProvenance {
  sourceMunicipality: string;
  /** The purpose the records were released under (minimal disclosure decided their fields). */
  purpose?: string;
  importRequestId: string;
  retrievedAt: string;
}

export interface ImportResult {
  /** Versions written (new copies and newer source versions). */
  created: number;
  /** Of `created`, newer source versions that superseded an older imported copy. */
  updated: number;
  /** Source versions already held: nothing written. */
  unchanged: number;
  /** Older than the copy already held: ignored. */
  stale: number;
  /** Local record ids of every copy concerned. */
  recordIds: string[];
}

const IMPORT_ACTOR = 'system:import';

/**
 * Imports records released by another municipality for one resident, idempotently: a source
 * version already held is skipped (the unique provenance index makes a duplicate impossible),
 * a newer version of a known source record becomes a new version superseding the older copy.
 * Imported facts are not held to local dose rules (they happened elsewhere). The caller logs
 * the import (RECORDS_IMPORT) with the request it belongs to.
 */
export async function importRecords(
  ctx: MunicipalityContext, t: Transaction, residentId: string, provenance: ImportProvenance, immunizations: ImportedImmunization[],
): Promise<ImportResult> {
  return (await importRecordsBatch(ctx, t, [{ residentId, provenance, immunizations }]))[0]!;
}

export interface ImportItem {
  residentId: string;
  provenance: ImportProvenance;
  immunizations: ImportedImmunization[];
}

/**
 * `importRecords` for every subject of a bulk answer at once, with the same rules: one read of
 * what is held, one UPDATE for the superseded copies, one INSERT per 400 new versions (per
 * record, a read, a create and a read-back cost ~17× more per subject here). Results are in
 * the order of `items`.
 */
export async function importRecordsBatch(ctx: MunicipalityContext, t: Transaction, items: ImportItem[]): Promise<ImportResult[]> {
  const held = new Map<string, RecordVersion[]>();
  const keyOf = (residentId: string, source: string, sourceRecordId: string | null) => `${residentId}|${source}|${sourceRecordId}`;
  for (const v of await findImportedOf(ctx.models.VaccinationRecord, [...new Set(items.map((i) => i.residentId))], t)) {
    const key = keyOf(v.residentId, v.sourceMunicipality!, v.sourceRecordId);
    held.set(key, [...(held.get(key) ?? []), v]);
  }
  const inserts: Omit<RecordVersion, 'createdAt'>[] = [];
  const retired: string[] = [];
  const results = items.map(({ residentId, provenance, immunizations }) => {
    const result: ImportResult = { created: 0, updated: 0, unchanged: 0, stale: 0, recordIds: [] };
    const note = (id: string) => { if (!result.recordIds.includes(id)) result.recordIds.push(id); };
    for (const imm of [...immunizations].sort((a, b) => a.sourceVersion - b.sourceVersion)) {
      const key = keyOf(residentId, provenance.sourceMunicipality, imm.sourceRecordId);
      const versions = held.get(key) ?? [];
      // Held already: this source version under this purpose, or with every field this release carries.
      const same = versions.find((v) => v.sourceVersion === imm.sourceVersion
        && (v.releasePurpose === (provenance.purpose ?? null) || ((imm.lotNumber === null || v.lotNumber !== null) && (imm.place === null || v.place !== null))));
      const current = versions.find((v) => v.current);
      if (same) {
        result.unchanged += 1;
        note(same.recordId);
        continue;
      }
      if (current && (current.sourceVersion ?? 0) > imm.sourceVersion) {
        result.stale += 1;
        note(current.recordId);
        continue;
      }
      const fields = {
        occurrenceDate: imm.occurrenceDate, vaccineCode: imm.vaccineCode, lotNumber: imm.lotNumber, doseNumber: imm.doseNumber,
        ticketNumber: null, place: imm.place, status: imm.status, reason: imm.reason, actorId: IMPORT_ACTOR,
        sourceMunicipality: provenance.sourceMunicipality, sourceRecordId: imm.sourceRecordId, sourceVersion: imm.sourceVersion,
        importRequestId: provenance.importRequestId, retrievedAt: provenance.retrievedAt, releasePurpose: provenance.purpose ?? null,
      };
      let row: Omit<RecordVersion, 'createdAt'>;
      if (current) {
        // Superseded here, held or written earlier in this batch: never two current versions.
        current.current = false;
        retired.push(current.recordId);
        row = {
          ...fields, id: randomUUID(), recordId: current.recordId, version: current.version + 1, residentId, supersedes: current.id, current: true,
          reason: imm.reason ?? (current.sourceVersion === imm.sourceVersion
            ? `released with more fields for ${provenance.purpose}`
            : `updated at ${provenance.sourceMunicipality} (source version ${imm.sourceVersion})`),
        };
        result.updated += 1;
      } else {
        row = { ...fields, id: randomUUID(), recordId: randomUUID(), version: 1, residentId, supersedes: null, current: true };
      }
      inserts.push(row);
      held.set(key, [...versions, { ...row, createdAt: '' } as RecordVersion]);
      note(row.recordId);
      result.created += 1;
    }
    return result;
  });
  await retireCurrentMany(ctx.models.VaccinationRecord, [...new Set(retired)], t);
  await insertVersions(ctx.models.VaccinationRecord, inserts, t);
  return results;
}

/* ---------- tickets ---------- */

export interface IssuedTicket {
  ticketNumber: string;
  type: number;
  doseNumber: number;
  issuedAt: string;
  used: boolean;
  ocrLine: string;
}

const ticketView = (ctx: MunicipalityContext, ticket: TicketRecord): IssuedTicket => ({
  ticketNumber: ticket.ticketNumber, type: ticket.type, doseNumber: ticket.doseNumber, issuedAt: ticket.issuedAt, used: ticket.used,
  ocrLine: formatOcrLine({ type: ticket.type as TicketType, doseNumber: ticket.doseNumber, municipalityCode: ctx.config.MUNICIPALITY_CODE, ticketNumber: ticket.ticketNumber }),
});

/** Options of a ticket for deterministic seeding only. */
export interface SeededTicket {
  ticketNumber?: string;
  issuedAt?: string;
}

/** A ticket to issue to a resident. */
export interface NewTicket extends SeededTicket {
  resident: ResidentRecord;
  input: IssueTicketInput;
}

/**
 * Issues vaccination tickets, each under `issueTicket`'s rules as if issued one after another in
 * the order given (a ticket number is refused when issued before or earlier in the batch). A
 * refusal is the error the one-by-one calls would have met first, and nothing of the batch is
 * written. One read of the numbers asked for, one INSERT per 400 tickets.
 * @returns the tickets as stored, in the order given, and the TICKET_ISSUE entry each one owes
 *   the access log: the caller appends them in `t` (logStaffAccessBatch).
 */
export async function issueTickets(
  ctx: MunicipalityContext, t: Transaction, items: NewTicket[], actor: Actor,
): Promise<{ tickets: IssuedTicket[]; access: StaffAccess[] }> {
  const wanted = items.flatMap((i) => (i.ticketNumber ? [i.ticketNumber] : []));
  const issued = new Set((await findTickets(ctx.models.VaccinationTicket, wanted, t)).map((x) => x.ticketNumber));
  const drawn = await drawUnusedNumbers(items.filter((i) => i.ticketNumber === undefined).length, new Set(wanted),
    () => String(randomInt(1_000_000_000, 10_000_000_000)),
    async (candidates) => new Set((await findTickets(ctx.models.VaccinationTicket, candidates, t)).map((x) => x.ticketNumber)));
  const rows = items.map(({ resident, input, ticketNumber, issuedAt }) => {
    requireActive(resident);
    if (ticketNumber && issued.has(ticketNumber)) {
      throw conflict('duplicate-ticket-number', 'Ticket number already issued', { field: 'ticketNumber', rule: 'must be unique' });
    }
    const number = ticketNumber ?? drawn.shift()!;
    issued.add(number);
    return {
      ticketNumber: number, residentId: resident.id, type: input.type, doseNumber: input.doseNumber,
      issuedAt: issuedAt ?? new Date().toISOString(), issuedBy: actor.staffId,
    };
  });
  await insertTickets(ctx.models.VaccinationTicket, rows, t);
  const stored = new Map((await findTickets(ctx.models.VaccinationTicket, rows.map((r) => r.ticketNumber), t)).map((x) => [x.ticketNumber, x]));
  return {
    tickets: rows.map((r) => ticketView(ctx, stored.get(r.ticketNumber)!)),
    access: items.map(({ resident, input }) => ({
      action: Actions.TICKET_ISSUE, subject: resident.addresseeNumber, outcome: 'allowed' as const, details: { type: input.type, doseNumber: input.doseNumber },
    })),
  };
}

/**
 * Issues a vaccination ticket (接種券) to a current resident (`issueTickets` for one) and logs
 * TICKET_ISSUE. `ticketNumber` and `issuedAt` are for deterministic seeding only.
 */
export async function issueTicket(
  ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, input: IssueTicketInput, actor: Actor, options: SeededTicket = {},
): Promise<IssuedTicket> {
  const { tickets: [ticket], access } = await issueTickets(ctx, t, [{ ...options, resident, input }], actor);
  await logStaffAccessBatch(ctx, t, actor, access);
  return ticket!;
}

export async function readTickets(ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, actor: Actor): Promise<IssuedTicket[]> {
  const tickets = await ticketsOf(ctx.models.VaccinationTicket, resident.id, t);
  await logStaffAccess(ctx, t, actor, { action: Actions.TICKET_READ, subject: resident.addresseeNumber, outcome: 'allowed' });
  return tickets.map((ticket) => ticketView(ctx, ticket));
}

/** Stable words for why a ticket registration needs a clerk. */
export type ReviewReason =
  | 'municipality_mismatch' | 'ticket_unknown' | 'birth_date_mismatch' | 'resident_not_active'
  | 'ticket_type_mismatch' | 'dose_mismatch' | 'ticket_already_used';

/** `subject` is the addressee number the access concerned (for the log), not part of a response. */
export type TicketRegistration =
  | { outcome: 'registered'; addresseeNumber: string; record: RecordView; subject: string | null }
  | { outcome: 'queued'; review: ReviewView; subject: string | null };

/**
 * Registers a dose from a ticket's OCR line. When the ticket's municipality, dose or holder
 * (birth date as second factor) disagrees with the registration, nothing goes onto anyone's
 * record: the registration waits in the review queue for a clerk. This is where VRS attached
 * doses to the wrong person.
 * @throws 400 for a malformed OCR line, 422 when the record breaks a rule for the matched holder.
 */
export async function registerFromTicket(ctx: MunicipalityContext, t: Transaction, input: FromTicketInput, actor: Actor): Promise<TicketRegistration> {
  const ticket = parseOcrLine(input.ocrLine);
  const product = findProduct(input.vaccineCode)!;
  const reasons = new Set<ReviewReason>();
  let holder: ResidentRecord | null = null;
  let issued: TicketRecord | null = null;

  if (!ticketAdmits(ticket.type, product.series)) reasons.add('ticket_type_mismatch');
  if (ticket.doseNumber > product.maxDoses) reasons.add('dose_mismatch');
  if (ticket.municipalityCode !== ctx.config.MUNICIPALITY_CODE) {
    reasons.add('municipality_mismatch');
  } else {
    issued = await findTicket(ctx.models.VaccinationTicket, ticket.ticketNumber, t);
    if (!issued) reasons.add('ticket_unknown');
    else {
      holder = await findResidentById(ctx, issued.residentId, t);
      if (!holder || holder.birthDate !== input.birthDate) reasons.add('birth_date_mismatch');
      else {
        if (holder.status !== 'resident') reasons.add('resident_not_active');
        if (issued.type !== ticket.type) reasons.add('ticket_type_mismatch');
        if (issued.doseNumber !== ticket.doseNumber) reasons.add('dose_mismatch');
        if (issued.usedByRecordId) reasons.add('ticket_already_used');
        if (!product.seasonal && nextDoseNumber(input.vaccineCode, await activeDoses(ctx, holder.id, t)) !== ticket.doseNumber) reasons.add('dose_mismatch');
      }
    }
  }

  // The holder is named in the log only when the second factor matched (otherwise it may be someone else's ticket).
  const subject = holder && holder.birthDate === input.birthDate ? holder.addresseeNumber : null;
  if (reasons.size > 0) {
    const id = randomUUID();
    await insertReview(ctx.models.TicketReview, {
      id, payload: JSON.stringify({ ...input, ticket }), reasons: JSON.stringify([...reasons]),
      ticketHolderId: issued?.residentId ?? null, submittedBy: actor.staffId,
    }, t);
    await logStaffAccess(ctx, t, actor, {
      action: Actions.TICKET_REVIEW, subject, outcome: 'denied', reason: 'queued_for_review', details: { reviewId: id, reasons: [...reasons] },
    });
    return { outcome: 'queued', review: await reviewView(ctx, (await findReview(ctx.models.TicketReview, id, t))!, t), subject };
  }

  const record = await createRecord(ctx, t, holder!, {
    occurrenceDate: input.occurrenceDate, vaccineCode: input.vaccineCode, lotNumber: input.lotNumber,
    doseNumber: ticket.doseNumber, ticketNumber: ticket.ticketNumber, place: input.place,
  }, actor);
  await markTicketUsed(ctx.models.VaccinationTicket, ticket.ticketNumber, record.recordId, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.TICKET_REGISTER, subject, outcome: 'allowed', recordIds: [record.recordId], details: { ticketType: ticket.type, doseNumber: ticket.doseNumber },
  });
  return { outcome: 'registered', addresseeNumber: holder!.addresseeNumber, record, subject };
}

/* ---------- review queue ---------- */

export interface ReviewView {
  id: string;
  status: ReviewRecord['status'];
  reasons: string[];
  submitted: {
    ocrLine: string;
    ticket: ParsedTicket;
    birthDate: string;
    occurrenceDate: string;
    vaccineCode: string;
    lotNumber: string;
    place: string;
  };
  /** The addressee number the ticket was issued to, when it is one of ours. */
  ticketHolder: string | null;
  submittedBy: string;
  submittedAt: string;
  resolvedBy: string | null;
  resolvedAt: string | null;
  resolutionReason: string | null;
  /** Where an approval put the dose. */
  resident: string | null;
  recordId: string | null;
}

async function addresseeOf(ctx: MunicipalityContext, residentId: string | null, t: Transaction): Promise<string | null> {
  return residentId ? (await findResidentById(ctx, residentId, t))?.addresseeNumber ?? null : null;
}

async function reviewView(ctx: MunicipalityContext, r: ReviewRecord, t: Transaction): Promise<ReviewView> {
  const p = r.payload as FromTicketInput & { ticket: ParsedTicket };
  return {
    id: r.id,
    status: r.status,
    reasons: r.reasons,
    submitted: {
      ocrLine: p.ocrLine, ticket: p.ticket, birthDate: p.birthDate, occurrenceDate: p.occurrenceDate,
      vaccineCode: p.vaccineCode, lotNumber: p.lotNumber, place: p.place,
    },
    ticketHolder: await addresseeOf(ctx, r.ticketHolderId, t),
    submittedBy: r.submittedBy,
    submittedAt: r.createdAt,
    resolvedBy: r.resolvedBy,
    resolvedAt: r.resolvedAt,
    resolutionReason: r.resolutionReason,
    resident: await addresseeOf(ctx, r.residentId, t),
    recordId: r.recordId,
  };
}

/** The queue, a page at a time; each item shown is logged against its ticket holder. */
export async function listReviews(ctx: MunicipalityContext, t: Transaction, query: ListReviewsInput, actor: Actor) {
  const { rows, total } = await listReviewRows(ctx.models.TicketReview, query.status, { limit: query.pageSize, offset: (query.page - 1) * query.pageSize }, t);
  const items = await Promise.all(rows.map((r) => reviewView(ctx, r, t)));
  for (const item of items) {
    await logStaffAccess(ctx, t, actor, { action: Actions.TICKET_REVIEW_READ, subject: item.resident ?? item.ticketHolder, outcome: 'allowed', details: { reviewId: item.id } });
  }
  return { items, page: query.page, pageSize: query.pageSize, total };
}

async function openReview(ctx: MunicipalityContext, t: Transaction, id: string): Promise<ReviewRecord> {
  const review = await findReview(ctx.models.TicketReview, id, t);
  if (!review) throw notFound('Ticket review');
  if (review.status !== 'open') {
    throw conflict('review-resolved', `The review is already ${review.status}`, { field: 'reviewId', rule: 'must be open' });
  }
  return review;
}

export async function readReview(ctx: MunicipalityContext, t: Transaction, id: string, actor: Actor): Promise<ReviewView> {
  const review = await findReview(ctx.models.TicketReview, id, t);
  if (!review) throw notFound('Ticket review');
  const view = await reviewView(ctx, review, t);
  await logStaffAccess(ctx, t, actor, { action: Actions.TICKET_REVIEW_READ, subject: view.resident ?? view.ticketHolder, outcome: 'allowed', details: { reviewId: id } });
  return view;
}

/**
 * Approves a queued registration onto the resident the clerk established, with a reason. The
 * record is validated again as a new write against that resident (birth date, dose sequence).
 */
export async function approveReview(ctx: MunicipalityContext, t: Transaction, id: string, input: ApproveReviewInput, actor: Actor): Promise<ReviewView> {
  const review = await openReview(ctx, t, id);
  const resident = await requireResident(ctx, input.addresseeNumber, t);
  const p = review.payload as FromTicketInput & { ticket: ParsedTicket };
  // The ticket number is kept only when the ticket is ours, issued to this resident and unused.
  const issued = p.ticket.municipalityCode === ctx.config.MUNICIPALITY_CODE ? await findTicket(ctx.models.VaccinationTicket, p.ticket.ticketNumber, t) : null;
  const ownTicket = issued && issued.residentId === resident.id && !issued.usedByRecordId ? issued : null;
  const record = await createRecord(ctx, t, resident, {
    occurrenceDate: p.occurrenceDate, vaccineCode: p.vaccineCode, lotNumber: p.lotNumber,
    doseNumber: input.doseNumber ?? p.ticket.doseNumber, ticketNumber: ownTicket?.ticketNumber ?? null, place: p.place,
  }, actor);
  if (ownTicket) {
    await markTicketUsed(ctx.models.VaccinationTicket, ownTicket.ticketNumber, record.recordId, t);
  }
  await resolveReview(ctx.models.TicketReview, id, {
    status: 'approved', resolvedBy: actor.staffId, resolvedAt: new Date().toISOString(), resolutionReason: input.reason,
    residentId: resident.id, recordId: record.recordId,
  }, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.TICKET_REVIEW_RESOLVE, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: [record.recordId],
    reason: input.reason.slice(0, 200), details: { reviewId: id, decision: 'approved' },
  });
  return reviewView(ctx, (await findReview(ctx.models.TicketReview, id, t))!, t);
}

/** Rejects a queued registration with a reason; nothing is written to any record. */
export async function rejectReview(ctx: MunicipalityContext, t: Transaction, id: string, reason: string, actor: Actor): Promise<ReviewView> {
  const review = await openReview(ctx, t, id);
  await resolveReview(ctx.models.TicketReview, id, {
    status: 'rejected', resolvedBy: actor.staffId, resolvedAt: new Date().toISOString(), resolutionReason: reason,
  }, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.TICKET_REVIEW_RESOLVE, subject: await addresseeOf(ctx, review.ticketHolderId, t), outcome: 'allowed',
    reason: reason.slice(0, 200), details: { reviewId: id, decision: 'rejected' },
  });
  return reviewView(ctx, (await findReview(ctx.models.TicketReview, id, t))!, t);
}
