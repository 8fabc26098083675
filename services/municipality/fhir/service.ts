/**
 * The reads behind the FHIR API: a resident as a Patient, a resident's records as Immunizations.
 * Each runs in the caller's transaction and logs its access there (DESIGN.md §5), like the staff
 * routes: a Patient read is a resident read, an Immunization search a record read.
 */
import type { Transaction } from 'sequelize';
import { notFound } from '../../../shared/platform/errors.ts';
import { Actions } from '../access-log/actions.ts';
import { logStaffAccess } from '../access-log/service.ts';
import type { MunicipalityContext } from '../context.ts';
import { toPatient, type Patient } from '../residents/fhir.ts';
import { findResidentById } from '../residents/service.ts';
import type { Actor } from '../staff/roles.ts';
import { toJpImmunization, type JpImmunization } from '../vaccinations/fhir.ts';
import { currentVersionsOf } from '../vaccinations/model.ts';
import { matchesDate, type DateFilter, type ResultParams } from './search.ts';

/** GET Patient/{id}: the resident with this opaque id, or 404; logs RESIDENT_READ. */
export async function readPatient(ctx: MunicipalityContext, t: Transaction, id: string, actor: Actor): Promise<Patient> {
  const resident = await findResidentById(ctx, id, t);
  if (!resident) throw notFound('Patient');
  await logStaffAccess(ctx, t, actor, { action: Actions.RESIDENT_READ, subject: resident.addresseeNumber, outcome: 'allowed', details: { format: 'fhir' } });
  return toPatient(resident, ctx.config.MUNICIPALITY_CODE);
}

export interface ImmunizationSearch {
  patientId: string;
  dates: DateFilter[];
  page: ResultParams;
}

/**
 * GET Immunization?patient=…: the current version of each of the resident's records (voided ones
 * too, as entered-in-error) whose day matches every date filter, oldest first. Logs RECORD_READ
 * with the records on the page (none for `_summary=count`). A patient this server does not know
 * has no Immunization: an empty page, nothing read, nothing logged.
 */
export async function searchImmunizations(
  ctx: MunicipalityContext, t: Transaction, search: ImmunizationSearch, actor: Actor,
): Promise<{ total: number; page: JpImmunization[] }> {
  const resident = await findResidentById(ctx, search.patientId, t);
  if (!resident) return { total: 0, page: [] };
  const matches = (await currentVersionsOf(ctx.models.VaccinationRecord, resident.id, t))
    .filter((v) => search.dates.every((f) => matchesDate(v.occurrenceDate, f)));
  const page = search.page.summaryCount ? [] : matches.slice(search.page.offset, search.page.offset + search.page.count);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.RECORD_READ, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: page.map((v) => v.recordId),
    details: { format: 'fhir', total: matches.length, ...(search.dates.length ? { date: search.dates.map((d) => d.raw) } : {}) },
  });
  const patient = { reference: `Patient/${resident.id}`, type: 'Patient' };
  return { total: matches.length, page: page.map((v) => toJpImmunization(v, patient)) };
}
