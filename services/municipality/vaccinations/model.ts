import {
  DataTypes, Model, Op, col, fn, type CreationAttributes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize,
  type Transaction, type WhereOptions,
} from 'sequelize';
import { isoTime } from '../residents/model.ts';
import { insertRows } from '../../../shared/platform/db.ts';

export const RECORD_STATUSES = ['completed', 'entered-in-error'] as const;
export type RecordStatus = (typeof RECORD_STATUSES)[number];

/**
 * One version of a vaccination record. Records are append-only: a correction or a void is a new
 * version (same `recordId`, `version` + 1, `supersedes` the previous id) and the old version stays.
 */
export class VaccinationRecordRow extends Model<InferAttributes<VaccinationRecordRow>, InferCreationAttributes<VaccinationRecordRow>> {
  declare id: string;
  declare recordId: string;
  declare version: number;
  declare residentId: string;
  declare occurrenceDate: string;
  declare vaccineCode: string;
  /** Null only on an imported copy whose purpose did not release it (minimal disclosure). */
  declare lotNumber: string | null;
  declare doseNumber: number;
  declare ticketNumber: string | null;
  /** Null only on an imported copy whose purpose did not release it (minimal disclosure). */
  declare place: string | null;
  declare status: RecordStatus;
  declare supersedes: string | null;
  declare current: boolean;
  declare reason: string | null;
  declare actorId: string;
  /* Provenance of a copy imported from another municipality (all null for local records). */
  declare sourceMunicipality: string | null;
  declare sourceRecordId: string | null;
  declare sourceVersion: number | null;
  declare importRequestId: string | null;
  declare retrievedAt: string | null;
  /** The purpose an imported copy was released under (it decided which fields came). */
  declare releasePurpose: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
}

export class VaccinationTicketRow extends Model<InferAttributes<VaccinationTicketRow>, InferCreationAttributes<VaccinationTicketRow>> {
  declare ticketNumber: string;
  declare residentId: string;
  declare type: number;
  declare doseNumber: number;
  declare issuedAt: string;
  declare issuedBy: string;
  /** Set when a record was registered from this ticket; a second use goes to review. */
  declare usedByRecordId: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export const REVIEW_STATUSES = ['open', 'approved', 'rejected'] as const;
export type ReviewStatus = (typeof REVIEW_STATUSES)[number];

export class TicketReviewRow extends Model<InferAttributes<TicketReviewRow>, InferCreationAttributes<TicketReviewRow>> {
  declare id: string;
  /** JSON of the registration as submitted (parsed ticket included). */
  declare payload: string;
  /** JSON array of stable reason words, e.g. ["birth_date_mismatch"]. */
  declare reasons: string;
  declare status: CreationOptional<ReviewStatus>;
  /** The ticket holder, when the ticket is one of ours (null for unknown tickets). */
  declare ticketHolderId: string | null;
  declare submittedBy: string;
  declare resolvedBy: CreationOptional<string | null>;
  declare resolvedAt: CreationOptional<string | null>;
  declare resolutionReason: CreationOptional<string | null>;
  declare residentId: CreationOptional<string | null>;
  declare recordId: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** Defines the vaccination tables on one municipality's database. */
export function defineVaccinationModels(sequelize: Sequelize) {
  class VaccinationRecord extends VaccinationRecordRow {}
  VaccinationRecord.init(
    {
      id: { type: DataTypes.STRING(36), primaryKey: true },
      recordId: { type: DataTypes.STRING(36), allowNull: false },
      version: { type: DataTypes.INTEGER, allowNull: false },
      residentId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'residents', key: 'id' } },
      occurrenceDate: { type: DataTypes.STRING(10), allowNull: false },
      vaccineCode: { type: DataTypes.STRING(40), allowNull: false },
      lotNumber: { type: DataTypes.STRING(20), allowNull: true },
      doseNumber: { type: DataTypes.INTEGER, allowNull: false },
      ticketNumber: { type: DataTypes.STRING(10), allowNull: true },
      place: { type: DataTypes.STRING(200), allowNull: true },
      status: { type: DataTypes.STRING(20), allowNull: false },
      supersedes: { type: DataTypes.STRING(36), allowNull: true },
      current: { type: DataTypes.BOOLEAN, allowNull: false },
      reason: { type: DataTypes.STRING(500), allowNull: true },
      actorId: { type: DataTypes.STRING(64), allowNull: false },
      sourceMunicipality: { type: DataTypes.STRING(6), allowNull: true },
      sourceRecordId: { type: DataTypes.STRING(64), allowNull: true },
      sourceVersion: { type: DataTypes.INTEGER, allowNull: true },
      importRequestId: { type: DataTypes.STRING(128), allowNull: true },
      retrievedAt: { type: DataTypes.STRING(30), allowNull: true },
      releasePurpose: { type: DataTypes.STRING(64), allowNull: true },
      createdAt: DataTypes.DATE,
    },
    {
      sequelize, tableName: 'vaccination_records', updatedAt: false,
      indexes: [
        { unique: true, fields: ['recordId', 'version'] },
        // Exactly one current version per record, enforced by the database (partial unique index).
        { unique: true, fields: ['recordId'], where: { current: true }, name: 'vaccination_records_one_current' },
        // An import of the same source version under the same purpose twice is a no-op, not a second copy.
        { unique: true, fields: ['residentId', 'sourceMunicipality', 'sourceRecordId', 'sourceVersion', 'releasePurpose'], name: 'vaccination_records_provenance' },
        { fields: ['residentId', 'current'] },
      ],
    },
  );

  class VaccinationTicket extends VaccinationTicketRow {}
  VaccinationTicket.init(
    {
      ticketNumber: { type: DataTypes.STRING(10), primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'residents', key: 'id' } },
      type: { type: DataTypes.INTEGER, allowNull: false },
      doseNumber: { type: DataTypes.INTEGER, allowNull: false },
      issuedAt: { type: DataTypes.STRING(30), allowNull: false },
      issuedBy: { type: DataTypes.STRING(64), allowNull: false },
      usedByRecordId: { type: DataTypes.STRING(36), allowNull: true },
      createdAt: DataTypes.DATE,
      updatedAt: DataTypes.DATE,
    },
    { sequelize, tableName: 'vaccination_tickets', indexes: [{ fields: ['residentId'] }] },
  );

  class TicketReview extends TicketReviewRow {}
  TicketReview.init(
    {
      id: { type: DataTypes.STRING(36), primaryKey: true },
      payload: { type: DataTypes.TEXT, allowNull: false },
      reasons: { type: DataTypes.TEXT, allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'open' },
      ticketHolderId: { type: DataTypes.STRING(36), allowNull: true, references: { model: 'residents', key: 'id' } },
      submittedBy: { type: DataTypes.STRING(64), allowNull: false },
      resolvedBy: { type: DataTypes.STRING(64), allowNull: true },
      resolvedAt: { type: DataTypes.STRING(30), allowNull: true },
      resolutionReason: { type: DataTypes.STRING(500), allowNull: true },
      residentId: { type: DataTypes.STRING(36), allowNull: true, references: { model: 'residents', key: 'id' } },
      recordId: { type: DataTypes.STRING(36), allowNull: true },
      createdAt: DataTypes.DATE,
      updatedAt: DataTypes.DATE,
    },
    { sequelize, tableName: 'ticket_reviews', indexes: [{ fields: ['status'] }] },
  );

  return { VaccinationRecord, VaccinationTicket, TicketReview };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineVaccinationModels> {}
}

type VaccinationModels = ReturnType<typeof defineVaccinationModels>;
export type VaccinationRecordModel = VaccinationModels['VaccinationRecord'];
export type VaccinationTicketModel = VaccinationModels['VaccinationTicket'];
export type TicketReviewModel = VaccinationModels['TicketReview'];

/** One version of a record as a plain object. */
export interface RecordVersion {
  id: string;
  recordId: string;
  version: number;
  residentId: string;
  occurrenceDate: string;
  vaccineCode: string;
  lotNumber: string | null;
  doseNumber: number;
  ticketNumber: string | null;
  place: string | null;
  status: RecordStatus;
  supersedes: string | null;
  current: boolean;
  reason: string | null;
  actorId: string;
  sourceMunicipality: string | null;
  sourceRecordId: string | null;
  sourceVersion: number | null;
  importRequestId: string | null;
  retrievedAt: string | null;
  releasePurpose: string | null;
  createdAt: string;
}

const toVersion = (r: InferAttributes<VaccinationRecordRow>): RecordVersion => ({
  id: r.id,
  recordId: r.recordId,
  version: Number(r.version),
  residentId: r.residentId,
  occurrenceDate: r.occurrenceDate,
  vaccineCode: r.vaccineCode,
  lotNumber: r.lotNumber ?? null,
  doseNumber: Number(r.doseNumber),
  ticketNumber: r.ticketNumber ?? null,
  place: r.place ?? null,
  status: r.status,
  supersedes: r.supersedes ?? null,
  current: Boolean(r.current),
  reason: r.reason ?? null,
  actorId: r.actorId,
  sourceMunicipality: r.sourceMunicipality ?? null,
  sourceRecordId: r.sourceRecordId ?? null,
  sourceVersion: r.sourceVersion === null || r.sourceVersion === undefined ? null : Number(r.sourceVersion),
  importRequestId: r.importRequestId ?? null,
  retrievedAt: r.retrievedAt ?? null,
  releasePurpose: r.releasePurpose ?? null,
  createdAt: isoTime(r.createdAt),
});

export async function findVersions(VaccinationRecord: VaccinationRecordModel, where: WhereOptions<VaccinationRecordRow>, transaction?: Transaction): Promise<RecordVersion[]> {
  const rows = await VaccinationRecord.findAll({ where, raw: true, transaction, order: [['occurrenceDate', 'ASC'], ['recordId', 'ASC'], ['version', 'ASC']] });
  return rows.map(toVersion);
}

/** The current version of every record of a resident (voided ones included, with their status). */
export const currentVersionsOf = (VaccinationRecord: VaccinationRecordModel, residentId: string, transaction?: Transaction) =>
  findVersions(VaccinationRecord, { residentId, current: true }, transaction);

/** The current versions of several residents' records in one read (a bulk answer), in `findVersions` order per resident. */
export async function currentVersionsOfMany(VaccinationRecord: VaccinationRecordModel, residentIds: string[], transaction?: Transaction): Promise<Map<string, RecordVersion[]>> {
  const byResident = new Map<string, RecordVersion[]>();
  if (residentIds.length === 0) return byResident;
  for (const v of await findVersions(VaccinationRecord, { residentId: residentIds, current: true }, transaction)) {
    const list = byResident.get(v.residentId) ?? [];
    list.push(v);
    byResident.set(v.residentId, list);
  }
  return byResident;
}

export async function findCurrentVersion(VaccinationRecord: VaccinationRecordModel, recordId: string, transaction?: Transaction): Promise<RecordVersion | null> {
  const row = await VaccinationRecord.findOne({ where: { recordId, current: true }, raw: true, transaction });
  return row ? toVersion(row) : null;
}

export async function insertVersion(
  VaccinationRecord: VaccinationRecordModel, values: Omit<RecordVersion, 'createdAt' | 'releasePurpose'> & { releasePurpose?: string | null }, transaction: Transaction,
): Promise<RecordVersion> {
  await VaccinationRecord.create(values, { transaction });
  const row = await VaccinationRecord.findByPk(values.id, { raw: true, transaction });
  return toVersion(row!);
}

/** Clears `current` on a record's versions before its next version is written (same transaction). */
export async function retireCurrent(VaccinationRecord: VaccinationRecordModel, recordId: string, transaction: Transaction): Promise<void> {
  await VaccinationRecord.update({ current: false }, { where: { recordId, current: true }, transaction });
}

/** The imported copy of one source record at one source version, or its current imported version. */
export async function findImported(
  VaccinationRecord: VaccinationRecordModel, residentId: string, sourceMunicipality: string, sourceRecordId: string, transaction: Transaction,
): Promise<RecordVersion[]> {
  return findVersions(VaccinationRecord, { residentId, sourceMunicipality, sourceRecordId, sourceVersion: { [Op.ne]: null } }, transaction);
}

/** Bound parameters per statement stay well under SQLite's limit. */
const CHUNK = 400;

/** Every imported version (any source) held for these residents, in one query per 400 residents. */
export async function findImportedOf(VaccinationRecord: VaccinationRecordModel, residentIds: string[], transaction: Transaction): Promise<RecordVersion[]> {
  const out: RecordVersion[] = [];
  for (let i = 0; i < residentIds.length; i += CHUNK) {
    const rows = await VaccinationRecord.findAll({
      where: { residentId: { [Op.in]: residentIds.slice(i, i + CHUNK) }, sourceVersion: { [Op.ne]: null } }, raw: true, transaction,
      order: [['occurrenceDate', 'ASC'], ['recordId', 'ASC'], ['version', 'ASC']],
    });
    for (const r of rows) out.push(toVersion(r));
  }
  return out;
}

/** Clears `current` on several records at once (before their next versions are written, same transaction). */
export async function retireCurrentMany(VaccinationRecord: VaccinationRecordModel, recordIds: string[], transaction: Transaction): Promise<void> {
  for (let i = 0; i < recordIds.length; i += CHUNK) {
    await VaccinationRecord.update({ current: false }, { where: { recordId: { [Op.in]: recordIds.slice(i, i + CHUNK) }, current: true }, transaction });
  }
}

/** Versions by id, one query per 400 ids; the ids not found are absent. */
export async function versionsByIds(VaccinationRecord: VaccinationRecordModel, ids: string[], transaction: Transaction): Promise<RecordVersion[]> {
  const out: RecordVersion[] = [];
  for (let i = 0; i < ids.length; i += CHUNK) out.push(...await findVersions(VaccinationRecord, { id: { [Op.in]: ids.slice(i, i + CHUNK) } }, transaction));
  return out;
}

/**
 * Writes many versions in bound multi-row statements (a create and a read-back per row cost ~40×
 * more; a model's bulkCreate, an instance per row, about twice the statement itself).
 */
export async function insertVersions(VaccinationRecord: VaccinationRecordModel, rows: Omit<RecordVersion, 'createdAt'>[], transaction: Transaction): Promise<void> {
  const createdAt = new Date();
  await insertRows(VaccinationRecord.sequelize!, 'vaccination_records', rows.map((r) => ({
    id: r.id, recordId: r.recordId, version: r.version, residentId: r.residentId, occurrenceDate: r.occurrenceDate, vaccineCode: r.vaccineCode,
    lotNumber: r.lotNumber, doseNumber: r.doseNumber, ticketNumber: r.ticketNumber, place: r.place, status: r.status, supersedes: r.supersedes,
    current: r.current, reason: r.reason, actorId: r.actorId, sourceMunicipality: r.sourceMunicipality, sourceRecordId: r.sourceRecordId,
    sourceVersion: r.sourceVersion, importRequestId: r.importRequestId, retrievedAt: r.retrievedAt, releasePurpose: r.releasePurpose, createdAt,
  })), transaction);
}

export interface TicketView {
  ticketNumber: string;
  type: number;
  doseNumber: number;
  issuedAt: string;
  used: boolean;
}

export interface TicketRecord extends TicketView {
  residentId: string;
  usedByRecordId: string | null;
}

const toTicket = (r: InferAttributes<VaccinationTicketRow>): TicketRecord => ({
  ticketNumber: r.ticketNumber, type: Number(r.type), doseNumber: Number(r.doseNumber), issuedAt: r.issuedAt,
  used: r.usedByRecordId !== null && r.usedByRecordId !== undefined, residentId: r.residentId, usedByRecordId: r.usedByRecordId ?? null,
});

export async function findTicket(VaccinationTicket: VaccinationTicketModel, ticketNumber: string, transaction?: Transaction): Promise<TicketRecord | null> {
  const row = await VaccinationTicket.findByPk(ticketNumber, { raw: true, transaction });
  return row ? toTicket(row) : null;
}

/** Tickets by number, one query per 400 numbers; the numbers never issued are absent. */
export async function findTickets(VaccinationTicket: VaccinationTicketModel, ticketNumbers: string[], transaction?: Transaction): Promise<TicketRecord[]> {
  const out: TicketRecord[] = [];
  for (let i = 0; i < ticketNumbers.length; i += CHUNK) {
    const rows = await VaccinationTicket.findAll({ where: { ticketNumber: { [Op.in]: ticketNumbers.slice(i, i + CHUNK) } }, raw: true, transaction });
    for (const r of rows) out.push(toTicket(r));
  }
  return out;
}

export async function ticketsOf(VaccinationTicket: VaccinationTicketModel, residentId: string, transaction?: Transaction): Promise<TicketRecord[]> {
  return (await VaccinationTicket.findAll({ where: { residentId }, raw: true, transaction, order: [['issuedAt', 'ASC'], ['ticketNumber', 'ASC']] })).map(toTicket);
}

export interface ReviewRecord {
  id: string;
  payload: Record<string, unknown>;
  reasons: string[];
  status: ReviewStatus;
  ticketHolderId: string | null;
  submittedBy: string;
  resolvedBy: string | null;
  resolvedAt: string | null;
  resolutionReason: string | null;
  residentId: string | null;
  recordId: string | null;
  createdAt: string;
}

const toReview = (r: InferAttributes<TicketReviewRow>): ReviewRecord => ({
  id: r.id, payload: JSON.parse(r.payload), reasons: JSON.parse(r.reasons), status: r.status, ticketHolderId: r.ticketHolderId ?? null,
  submittedBy: r.submittedBy, resolvedBy: r.resolvedBy ?? null, resolvedAt: r.resolvedAt ?? null,
  resolutionReason: r.resolutionReason ?? null, residentId: r.residentId ?? null, recordId: r.recordId ?? null, createdAt: isoTime(r.createdAt),
});

export async function findReview(TicketReview: TicketReviewModel, id: string, transaction?: Transaction): Promise<ReviewRecord | null> {
  const row = await TicketReview.findByPk(id, { raw: true, transaction });
  return row ? toReview(row) : null;
}

export async function listReviewRows(TicketReview: TicketReviewModel, status: ReviewStatus | undefined, page: { limit: number; offset: number }, transaction?: Transaction) {
  const { rows, count } = await TicketReview.findAndCountAll({
    where: status ? { status } : {}, raw: true, transaction, order: [['createdAt', 'ASC'], ['id', 'ASC']], limit: page.limit, offset: page.offset,
  });
  return { rows: rows.map(toReview), total: count };
}

/** The current imported copies of one record of a source municipality. */
export const currentCopiesOf = (VaccinationRecord: VaccinationRecordModel, sourceMunicipality: string, sourceRecordId: string, transaction?: Transaction) =>
  findVersions(VaccinationRecord, { sourceMunicipality, sourceRecordId, current: true }, transaction);

/** Writes tickets with one INSERT per 400 rows. */
export async function insertTickets(VaccinationTicket: VaccinationTicketModel, values: CreationAttributes<VaccinationTicketRow>[], transaction: Transaction): Promise<void> {
  for (let i = 0; i < values.length; i += CHUNK) await VaccinationTicket.bulkCreate(values.slice(i, i + CHUNK), { transaction });
}

/** Records which vaccination record used a ticket. */
export async function markTicketUsed(VaccinationTicket: VaccinationTicketModel, ticketNumber: string, recordId: string, transaction: Transaction): Promise<void> {
  await VaccinationTicket.update({ usedByRecordId: recordId }, { where: { ticketNumber }, transaction });
}

export async function insertReview(TicketReview: TicketReviewModel, values: CreationAttributes<TicketReviewRow>, transaction: Transaction): Promise<void> {
  await TicketReview.create(values, { transaction });
}

/** Resolves a review that is still open (approved or rejected, with who, when and why). */
export async function resolveReview(
  TicketReview: TicketReviewModel, id: string, values: Partial<CreationAttributes<TicketReviewRow>> & { status: ReviewStatus; resolvedBy: string; resolvedAt: string; resolutionReason: string },
  transaction: Transaction,
): Promise<void> {
  await TicketReview.update(values, { where: { id, status: 'open' }, transaction });
}

/**
 * How many current imported records each resident holds from each source: the truth after any
 * crash, whatever this job's counters said before it.
 */
export async function heldImportedCounts(
  VaccinationRecord: VaccinationRecordModel, pairs: { residentId: string; source: string }[], t: Transaction,
): Promise<Map<string, number>> {
  const held = new Map<string, number>();
  if (pairs.length === 0) return held;
  const rows = await VaccinationRecord.findAll({
    attributes: ['residentId', 'sourceMunicipality', [fn('COUNT', col('id')), 'count']],
    where: {
      residentId: { [Op.in]: [...new Set(pairs.map((p) => p.residentId))] },
      sourceMunicipality: { [Op.in]: [...new Set(pairs.map((p) => p.source))] },
      current: true,
    },
    group: ['residentId', 'sourceMunicipality'], raw: true, transaction: t,
  }) as unknown as { residentId: string; sourceMunicipality: string; count: number }[];
  for (const r of rows) held.set(`${r.residentId}|${r.sourceMunicipality}`, Number(r.count));
  return held;
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Which vaccination records a retention rule covers: made here, or imported copies from another municipality. */
export type RecordKind = 'local' | 'imported';

const ofKind = (kind: RecordKind) => ({ sourceMunicipality: kind === 'local' ? { [Op.is]: null } : { [Op.ne]: null } });

/** Rows (every version) of one resident's records of one kind. */
export const countRecordsOfKind = (VaccinationRecord: VaccinationRecordModel, residentId: string, kind: RecordKind, t?: Transaction): Promise<number> =>
  VaccinationRecord.count({ where: { residentId, ...ofKind(kind) } as WhereOptions<VaccinationRecordRow>, transaction: t });

/** Deletes every version of one resident's records of one kind; returns the rows deleted. */
export const deleteRecordsOfKind = (VaccinationRecord: VaccinationRecordModel, residentId: string, kind: RecordKind, t: Transaction): Promise<number> =>
  VaccinationRecord.destroy({ where: { residentId, ...ofKind(kind) } as WhereOptions<VaccinationRecordRow>, transaction: t });

/** Deletes a resident's tickets and the reviews that name them (as holder or as the resident a review settled on). */
export async function deleteTicketsOf(
  models: { VaccinationTicket: VaccinationTicketModel; TicketReview: TicketReviewModel }, residentId: string, t: Transaction,
): Promise<{ vaccination_tickets: number; ticket_reviews: number }> {
  const ticketReviews = await models.TicketReview.destroy({ where: { [Op.or]: [{ residentId }, { ticketHolderId: residentId }] }, transaction: t });
  const tickets = await models.VaccinationTicket.destroy({ where: { residentId }, transaction: t });
  return { vaccination_tickets: tickets, ticket_reviews: ticketReviews };
}
