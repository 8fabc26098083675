/**
 * Residents of this municipality. No hard delete here: a resident moves out or dies, and every
 * change of an attribute keeps its previous value in `resident_history`; only the retention rule
 * removes a deceased resident once the national period has passed (retention/, docs/DESIGN.md
 * §4.13), and their addressee number is then retired, never drawn again. The My Number is sealed
 * at rest (AES-256-GCM bound to the resident id) and shown masked; no route reveals it in full.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { CreationAttributes, Transaction } from 'sequelize';
import { decryptField, encryptField, hmacSha256 } from '../../../shared/crypto.ts';
import { badRequest, conflict, notFound, unprocessable } from '../../../shared/platform/errors.ts';
import { maskMyNumber } from '../../../shared/identifiers.ts';
import { parseInput } from '../../../shared/platform/validation.ts';
import { calendarDateRule, todayInJapan } from '../../../shared/platform/dates.ts';
import { drawUnusedNumbers } from '../../../shared/platform/unused-numbers.ts';
import { Actions, type Action } from '../access-log/actions.ts';
import { logStaffAccess, logStaffAccessBatch, type StaffAccess } from '../access-log/service.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import {
  findResidentWhere, findResidentsWhere, insertResidents, residentsByAddressees, retiredAmong, storeCode, insertResidentHistory, listResidentHistory, searchResidentRows,
  subjectsOfResidentsNamed, updateResidentRow, type ResidentHistoryEntry, type ResidentRecord, type ResidentRow,
} from './model.ts';
import {
  completeAddresseeNumber, createResidentSchema, isValidAddresseeNumber,
  type CreateResidentData, type CreateResidentInput, type ResidentStatus, type SearchResidentsInput, type Sex, type UpdateResidentInput,
} from './schemas.ts';

export type { ResidentRecord } from './model.ts';

/** What staff see of a resident: fields listed one by one, the My Number masked, no internal id. */
export interface ResidentView {
  addresseeNumber: string;
  name: string;
  kana: string;
  birthDate: string;
  sex: Sex;
  address: string;
  status: ResidentStatus;
  myNumberMasked: string;
  codeStatus: 'pending' | 'issued';
  previousMunicipality: string | null;
  movedInAt: string | null;
  movedOutAt: string | null;
  moveOutDestination: string | null;
  createdAt: string;
  updatedAt: string;
}

export function toResidentView(ctx: MunicipalityContext, r: ResidentRecord): ResidentView {
  return {
    addresseeNumber: r.addresseeNumber,
    name: r.name,
    kana: r.kana,
    birthDate: r.birthDate,
    sex: r.sex,
    address: r.address,
    status: r.status,
    myNumberMasked: maskMyNumber(readMyNumber(ctx, r)),
    codeStatus: r.codeStatus,
    previousMunicipality: r.previousMunicipality,
    movedInAt: r.movedInAt,
    movedOutAt: r.movedOutAt,
    moveOutDestination: r.moveOutDestination,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/**
 * HMAC-SHA256 of a My Number under a key derived from the data key: equal My Numbers give equal
 * indexes, so duplicates are found without decrypting every row; the index alone reveals nothing.
 */
export function myNumberIndex(ctx: MunicipalityContext, myNumber: string): string {
  const indexKey = hmacSha256(ctx.config.DATA_KEY, 'hikitsugi/my-number-index/v1');
  return hmacSha256(indexKey, myNumber).toString('hex');
}

/** Decrypts a resident's My Number. Only the code registration call to the issuer needs it. */
export function readMyNumber(ctx: MunicipalityContext, resident: { id: string; myNumberEncrypted: string }): string {
  return decryptField(ctx.config.DATA_KEY, resident.myNumberEncrypted, resident.id);
}

/** A resident by addressee number (null when unknown or malformed), as an internal plain object. */
export async function findResidentByAddressee(ctx: MunicipalityContext, addresseeNumber: string, t?: Transaction): Promise<ResidentRecord | null> {
  if (!isValidAddresseeNumber(addresseeNumber)) return null;
  return findResidentWhere(ctx.models.Resident, { addresseeNumber }, t);
}

export const findResidentById = (ctx: MunicipalityContext, id: string, t?: Transaction): Promise<ResidentRecord | null> =>
  findResidentWhere(ctx.models.Resident, { id }, t);

/** The resident this municipality knows by `code` (符号), for requests that arrive by code. */
export const findResidentByCode = (ctx: MunicipalityContext, code: string, t?: Transaction): Promise<ResidentRecord | null> =>
  findResidentWhere(ctx.models.Resident, { code }, t);

/** Every resident (any status) ever registered here with this My Number, oldest first. */
export const findResidentsByMyNumber = (ctx: MunicipalityContext, myNumber: string, t?: Transaction): Promise<ResidentRecord[]> =>
  findResidentsWhere(ctx.models.Resident, { myNumberIndex: myNumberIndex(ctx, myNumber) }, t);

/** Looks a resident up for a route: 404 when unknown. */
export async function requireResident(ctx: MunicipalityContext, addresseeNumber: string, t?: Transaction): Promise<ResidentRecord> {
  const resident = await findResidentByAddressee(ctx, addresseeNumber, t);
  if (!resident) throw notFound('Resident');
  return resident;
}

/** Which of `numbers` a resident holds now, or held until the retention rule removed them (docs/DESIGN.md §4.13). */
async function takenAddresseeNumbers(ctx: MunicipalityContext, numbers: string[], t: Transaction): Promise<Set<string>> {
  if (numbers.length === 0) return new Set();
  const held = await residentsByAddressees(ctx.models.Resident, numbers, t);
  const retired = await retiredAmong(ctx.models.RetiredAddresseeNumber, numbers, t);
  return new Set([...held.map((r) => r.addresseeNumber), ...retired]);
}

/** A resident to register: the fields a clerk gives, and an addressee number for deterministic seeding only. */
export type NewResident = CreateResidentInput & { addresseeNumber?: string };

/**
 * Registers residents inside the caller's transaction, each under `createResident`'s rules as if
 * registered one after another in the order given (so a second current resident with one My
 * Number is refused within the batch too): validates, refuses a My Number a current resident
 * has, refuses a malformed or taken addressee number or draws one, seals the My Number. A refusal
 * is the error the one-by-one calls would have met first, and nothing of the batch is written.
 * Three reads for the whole batch (more only when a drawn number is taken), one INSERT per 400.
 * @returns the residents as stored, in the order given, and the RESIDENT_CREATE entry each one
 *   owes the access log: the caller appends them in `t` (logStaffAccessBatch), so a batch of
 *   several tables' writes is logged in one append.
 */
export async function createResidents(ctx: MunicipalityContext, t: Transaction, inputs: NewResident[]): Promise<{ residents: ResidentRecord[]; access: StaffAccess[] }> {
  // Everything is parsed before the first read; an input's refusal is thrown at its turn below.
  type Parsed = { wanted?: string } & ({ data: CreateResidentData; index: string } | { refused: unknown });
  const parsed = inputs.map(({ addresseeNumber: wanted, ...fields }): Parsed => {
    try {
      const data = parseInput(createResidentSchema, fields);
      return { wanted, data, index: myNumberIndex(ctx, data.myNumber) };
    } catch (err) {
      return { wanted, refused: err };
    }
  });
  const indexes = parsed.flatMap((p) => ('index' in p ? [p.index] : []));
  /** The addressee number of the current resident (the oldest, if several) who has each My Number index. */
  const currentHolder = new Map<string, string>();
  for (const r of indexes.length ? await findResidentsWhere(ctx.models.Resident, { myNumberIndex: indexes }, t) : []) {
    if (r.status === 'resident' && !currentHolder.has(r.myNumberIndex)) currentHolder.set(r.myNumberIndex, r.addresseeNumber);
  }
  const wanted = parsed.flatMap((p) => (p.wanted !== undefined && isValidAddresseeNumber(p.wanted) ? [p.wanted] : []));
  const taken = await takenAddresseeNumbers(ctx, wanted, t);
  const drawn = await drawUnusedNumbers(parsed.filter((p) => p.wanted === undefined).length, new Set(wanted),
    () => completeAddresseeNumber(String(randomInt(100_000_000, 1_000_000_000))), (candidates) => takenAddresseeNumbers(ctx, candidates, t));
  const rows: CreationAttributes<ResidentRow>[] = [];
  for (const p of parsed) {
    if ('refused' in p) throw p.refused;
    const current = currentHolder.get(p.index);
    if (current) {
      throw conflict('duplicate-resident', 'A current resident already has this My Number', {
        field: 'myNumber', rule: 'must not belong to a current resident', existing: current,
      });
    }
    let addresseeNumber: string;
    if (p.wanted !== undefined) {
      if (!isValidAddresseeNumber(p.wanted)) throw badRequest('addresseeNumber', 'must be a 10-digit addressee number with a valid check digit');
      if (taken.has(p.wanted)) {
        throw conflict('duplicate-addressee-number', 'Addressee number already in use', { field: 'addresseeNumber', rule: 'must be unique' });
      }
      addresseeNumber = p.wanted;
    } else {
      addresseeNumber = drawn.shift()!;
    }
    taken.add(addresseeNumber);
    currentHolder.set(p.index, addresseeNumber);
    const id = randomUUID();
    rows.push({
      id,
      addresseeNumber,
      name: p.data.name,
      kana: p.data.kana,
      birthDate: p.data.birthDate,
      sex: p.data.sex,
      address: p.data.address,
      status: 'resident',
      myNumberEncrypted: encryptField(ctx.config.DATA_KEY, p.data.myNumber, id),
      myNumberIndex: p.index,
      previousMunicipality: p.data.previousMunicipality ?? null,
      movedInAt: p.data.movedInAt ?? null,
    });
  }
  const residents = await insertResidents(ctx.models.Resident, rows, t);
  return { residents, access: residents.map((r) => ({ action: Actions.RESIDENT_CREATE, subject: r.addresseeNumber, outcome: 'allowed' as const })) };
}

/**
 * Registers a resident inside the caller's transaction (`createResidents` for one) and logs
 * RESIDENT_CREATE. `addresseeNumber` is for deterministic seeding only; otherwise the service
 * draws one.
 * @returns the staff view plus the internal id, for callers that go on writing in `t`.
 */
export async function createResident(ctx: MunicipalityContext, t: Transaction, input: NewResident, actor: Actor): Promise<ResidentView & { id: string }> {
  const { residents: [row], access } = await createResidents(ctx, t, [input]);
  await logStaffAccessBatch(ctx, t, actor, access);
  return { id: row!.id, ...toResidentView(ctx, row!) };
}

type Change = { field: string; from: unknown; to: unknown };

function diff(before: ResidentRecord, after: Partial<ResidentRecord>): Change[] {
  const changes: Change[] = [];
  for (const [field, to] of Object.entries(after)) {
    const from = before[field as keyof ResidentRecord];
    if (to !== undefined && to !== from) changes.push({ field, from, to });
  }
  return changes;
}

async function applyChanges(
  ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, values: Partial<ResidentRecord>, reason: string, actor: Actor,
): Promise<{ row: ResidentRecord; changes: Change[] }> {
  const changes = diff(resident, values);
  if (changes.length === 0) return { row: resident, changes };
  const update = Object.fromEntries(changes.map((c) => [c.field, c.to]));
  const row = await updateResidentRow(ctx.models.Resident, resident.id, update, t);
  await insertResidentHistory(ctx.models.ResidentHistory, {
    residentId: resident.id, actorId: actor.staffId, reason, changes: JSON.stringify(changes),
  }, t);
  return { row, changes };
}

/** Name, kana or address change: the old values go to the history with the reason; nothing is overwritten silently. */
export async function updateResident(
  ctx: MunicipalityContext, t: Transaction, addresseeNumber: string, input: UpdateResidentInput, actor: Actor,
): Promise<ResidentView> {
  const resident = await requireResident(ctx, addresseeNumber, t);
  const { reason, ...values } = input;
  const { row, changes } = await applyChanges(ctx, t, resident, values, reason, actor);
  if (changes.length === 0) {
    throw unprocessable('no-change', 'Nothing to change', { field: Object.keys(values)[0] ?? 'name', rule: 'must differ from the current value' });
  }
  await logStaffAccess(ctx, t, actor, {
    action: Actions.RESIDENT_UPDATE, subject: addresseeNumber, outcome: 'allowed', details: { fields: changes.map((c) => c.field) },
  });
  return toResidentView(ctx, row);
}

export interface StatusFields {
  movedOutAt?: string;
  moveOutDestination?: string;
  movedInAt?: string;
  previousMunicipality?: string;
  /**
   * For `deceased`: the calendar date (Japan) the death took effect, from which the retention
   * periods run (docs/DESIGN.md §4.13); not in the future. Default: today in Japan.
   */
  deceasedOn?: string;
  reason?: string;
}

/**
 * Changes a resident's status inside the caller's transaction (move-out, return, death), keeping
 * the previous values in the history. A deceased resident's status is final.
 * @throws 404 unknown resident, 409 `resident-deceased` / `status-unchanged`.
 */
export async function setResidentStatus(
  ctx: MunicipalityContext, t: Transaction, residentId: string, status: ResidentStatus, fields: StatusFields, actor: Actor,
  options: { action?: Action } = {},
): Promise<ResidentView> {
  const resident = await findResidentById(ctx, residentId, t);
  if (!resident) throw notFound('Resident');
  if (resident.status === 'deceased') {
    throw conflict('resident-deceased', 'The resident is recorded as deceased', { field: 'status', rule: 'a deceased resident\'s status is final' });
  }
  if (resident.status === status) {
    throw conflict('status-unchanged', `The resident already has status ${status}`, { field: 'status', rule: 'must differ from the current status' });
  }
  const now = new Date().toISOString();
  const values: Partial<ResidentRecord> = { status };
  if (status === 'deceased') {
    const deceasedOn = fields.deceasedOn ?? todayInJapan();
    const rule = calendarDateRule(deceasedOn, { max: 'today' });
    if (rule) throw badRequest('deceasedOn', rule);
    values.deceasedOn = deceasedOn;
  } else if (status === 'moved-out') {
    values.movedOutAt = fields.movedOutAt ?? now;
    values.moveOutDestination = fields.moveOutDestination ?? null;
  } else if (status === 'resident') {
    // Moving back: the earlier move-out stays readable in the history.
    values.movedInAt = fields.movedInAt ?? now;
    values.previousMunicipality = fields.previousMunicipality ?? resident.previousMunicipality;
    values.movedOutAt = null;
    values.moveOutDestination = null;
  }
  const reason = fields.reason ?? `status changed to ${status}`;
  const { row } = await applyChanges(ctx, t, resident, values, reason, actor);
  await logStaffAccess(ctx, t, actor, {
    action: options.action ?? Actions.RESIDENT_STATUS, subject: resident.addresseeNumber, outcome: 'allowed',
    details: { from: resident.status, to: status },
  });
  return toResidentView(ctx, row);
}

/** Stores the code (符号) the issuer returned for a resident. */
export async function setResidentCode(ctx: MunicipalityContext, t: Transaction, residentId: string, code: string): Promise<void> {
  await storeCode(ctx.models.Resident, residentId, code, t);
}

/** One resident for a clerk; logs RESIDENT_READ. */
export async function readResident(ctx: MunicipalityContext, t: Transaction, addresseeNumber: string, actor: Actor): Promise<ResidentView> {
  const resident = await requireResident(ctx, addresseeNumber, t);
  await logStaffAccess(ctx, t, actor, { action: Actions.RESIDENT_READ, subject: addresseeNumber, outcome: 'allowed' });
  return toResidentView(ctx, resident);
}

/**
 * Searches residents, a page at a time. Every resident shown gets its own RESIDENT_SEARCH entry,
 * so the resident's disclosure report (by subject) includes searches that listed them.
 */
/** Most residents a privacy officer's name search in the log covers at once. */
export const LOG_NAME_SEARCH_LIMIT = 100;

/** The log subjects (addressee numbers and codes) of residents whose name or kana contains `text`. */
export const residentSubjectsNamed = (ctx: MunicipalityContext, text: string, t: Transaction): Promise<string[]> =>
  subjectsOfResidentsNamed(ctx.models.Resident, text, LOG_NAME_SEARCH_LIMIT, t);

export async function searchResidents(ctx: MunicipalityContext, t: Transaction, search: SearchResidentsInput, actor: Actor) {
  const { rows, total } = await searchResidentRows(ctx.models.Resident, search, t);
  // Which criteria were used, never their values (a name is personal data).
  const criteria = (['name', 'kana', 'birthDate', 'status'] as const).filter((k) => search[k] !== undefined);
  if (rows.length === 0) {
    await logStaffAccess(ctx, t, actor, { action: Actions.RESIDENT_SEARCH, subject: null, outcome: 'allowed', details: { criteria, count: 0 } });
  }
  for (const r of rows) {
    await logStaffAccess(ctx, t, actor, { action: Actions.RESIDENT_SEARCH, subject: r.addresseeNumber, outcome: 'allowed', details: { criteria } });
  }
  return { items: rows.map((r) => toResidentView(ctx, r)), page: search.page, pageSize: search.pageSize, total };
}

/** A resident's attribute history, oldest first; logs RESIDENT_READ. */
export async function residentHistory(ctx: MunicipalityContext, t: Transaction, addresseeNumber: string, actor: Actor): Promise<ResidentHistoryEntry[]> {
  const resident = await requireResident(ctx, addresseeNumber, t);
  await logStaffAccess(ctx, t, actor, { action: Actions.RESIDENT_READ, subject: addresseeNumber, outcome: 'allowed', details: { view: 'history' } });
  return listResidentHistory(ctx.models.ResidentHistory, resident.id, t);
}
