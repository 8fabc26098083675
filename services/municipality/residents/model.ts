import {
  DataTypes, Model, Op, type CreationAttributes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize,
  QueryTypes, type Transaction, type WhereOptions,
} from 'sequelize';
import { updateRows } from '../../../shared/platform/db.ts';
import type { ResidentStatus, Sex } from './schemas.ts';

export class ResidentRow extends Model<InferAttributes<ResidentRow>, InferCreationAttributes<ResidentRow>> {
  declare id: string;
  declare addresseeNumber: string;
  declare name: string;
  declare kana: string;
  declare birthDate: string;
  declare sex: Sex;
  declare address: string;
  declare status: CreationOptional<ResidentStatus>;
  /** AES-256-GCM under the municipality's data key, bound to the resident id (shared/crypto). */
  declare myNumberEncrypted: string;
  /** HMAC of the My Number: finds duplicates without decrypting. Not unique: people move back. */
  declare myNumberIndex: string;
  declare code: CreationOptional<string | null>;
  declare codeStatus: CreationOptional<'pending' | 'issued'>;
  /** How the code was derived (docs/DESIGN.md §4.2): `blind`, or `legacy` until the outbox rekeys it; null while pending. */
  declare codeDerivation: CreationOptional<'blind' | 'legacy' | null>;
  declare previousMunicipality: CreationOptional<string | null>;
  declare movedInAt: CreationOptional<string | null>;
  declare movedOutAt: CreationOptional<string | null>;
  declare moveOutDestination: CreationOptional<string | null>;
  /** The calendar date (Japan) the death took effect; the retention periods run from it (docs/DESIGN.md §4.13). */
  declare deceasedOn: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

/** An addressee number whose resident the retention rule removed: never given to anyone again (docs/DESIGN.md §3.3, §4.13). */
export class RetiredAddresseeNumberRow extends Model<InferAttributes<RetiredAddresseeNumberRow>, InferCreationAttributes<RetiredAddresseeNumberRow>> {
  declare addresseeNumber: string;
  declare retiredOn: string;
  declare createdAt: CreationOptional<Date>;
}

export class ResidentHistoryRow extends Model<InferAttributes<ResidentHistoryRow>, InferCreationAttributes<ResidentHistoryRow>> {
  /** Autoincrement, so entries of one millisecond still read back in the order they were made. */
  declare id: CreationOptional<number>;
  declare residentId: string;
  declare actorId: string;
  declare reason: string;
  /** JSON: [{ field, from, to }]. Never holds a My Number (it cannot be changed). */
  declare changes: string;
  declare createdAt: CreationOptional<Date>;
}

/** Defines the resident tables on one municipality's database. */
export function defineResidentModels(sequelize: Sequelize) {
  class Resident extends ResidentRow {}
  Resident.init(
    {
      id: { type: DataTypes.STRING(36), primaryKey: true },
      addresseeNumber: { type: DataTypes.STRING(10), allowNull: false, unique: true },
      name: { type: DataTypes.STRING(100), allowNull: false },
      kana: { type: DataTypes.STRING(100), allowNull: false },
      birthDate: { type: DataTypes.STRING(10), allowNull: false },
      sex: { type: DataTypes.STRING(8), allowNull: false },
      address: { type: DataTypes.STRING(300), allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'resident' },
      myNumberEncrypted: { type: DataTypes.STRING(200), allowNull: false },
      myNumberIndex: { type: DataTypes.STRING(64), allowNull: false },
      code: { type: DataTypes.STRING(64), allowNull: true },
      codeStatus: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'pending' },
      codeDerivation: { type: DataTypes.STRING(8), allowNull: true },
      previousMunicipality: { type: DataTypes.STRING(6), allowNull: true },
      movedInAt: { type: DataTypes.STRING(30), allowNull: true },
      movedOutAt: { type: DataTypes.STRING(30), allowNull: true },
      moveOutDestination: { type: DataTypes.STRING(300), allowNull: true },
      deceasedOn: { type: DataTypes.STRING(10), allowNull: true },
      createdAt: DataTypes.DATE,
      updatedAt: DataTypes.DATE,
    },
    {
      sequelize, tableName: 'residents',
      indexes: [{ fields: ['myNumberIndex'] }, { fields: ['code'] }, { fields: ['kana'] }, { fields: ['birthDate'] }, { fields: ['status'] }],
    },
  );

  class ResidentHistory extends ResidentHistoryRow {}
  ResidentHistory.init(
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'residents', key: 'id' } },
      actorId: { type: DataTypes.STRING(64), allowNull: false },
      reason: { type: DataTypes.STRING(500), allowNull: false },
      changes: { type: DataTypes.TEXT, allowNull: false },
      createdAt: DataTypes.DATE,
    },
    { sequelize, tableName: 'resident_history', updatedAt: false, indexes: [{ fields: ['residentId'] }] },
  );

  class RetiredAddresseeNumber extends RetiredAddresseeNumberRow {}
  RetiredAddresseeNumber.init(
    {
      addresseeNumber: { type: DataTypes.STRING(10), primaryKey: true },
      retiredOn: { type: DataTypes.STRING(10), allowNull: false },
      createdAt: DataTypes.DATE,
    },
    { sequelize, tableName: 'retired_addressee_numbers', updatedAt: false },
  );

  return { Resident, ResidentHistory, RetiredAddresseeNumber };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineResidentModels> {}
}

type ResidentModels = ReturnType<typeof defineResidentModels>;
export type ResidentModel = ResidentModels['Resident'];
export type ResidentHistoryModel = ResidentModels['ResidentHistory'];
export type RetiredAddresseeNumberModel = ResidentModels['RetiredAddresseeNumber'];

/** A resident as the service works with it internally (plain object; includes the sealed My Number). */
export interface ResidentRecord {
  id: string;
  addresseeNumber: string;
  name: string;
  kana: string;
  birthDate: string;
  sex: Sex;
  address: string;
  status: ResidentStatus;
  myNumberEncrypted: string;
  myNumberIndex: string;
  code: string | null;
  codeStatus: 'pending' | 'issued';
  previousMunicipality: string | null;
  movedInAt: string | null;
  movedOutAt: string | null;
  moveOutDestination: string | null;
  deceasedOn: string | null;
  createdAt: string;
  updatedAt: string;
}

/** SQLite hands dates back as text, PostgreSQL as Date: one ISO form for both. */
export const isoTime = (value: unknown): string => new Date(value as string | Date).toISOString();

const toRecord = (row: InferAttributes<ResidentRow>): ResidentRecord => ({
  id: row.id,
  addresseeNumber: row.addresseeNumber,
  name: row.name,
  kana: row.kana,
  birthDate: row.birthDate,
  sex: row.sex,
  address: row.address,
  status: row.status,
  myNumberEncrypted: row.myNumberEncrypted,
  myNumberIndex: row.myNumberIndex,
  code: row.code ?? null,
  codeStatus: row.codeStatus,
  previousMunicipality: row.previousMunicipality ?? null,
  movedInAt: row.movedInAt ?? null,
  movedOutAt: row.movedOutAt ?? null,
  moveOutDestination: row.moveOutDestination ?? null,
  deceasedOn: row.deceasedOn ?? null,
  createdAt: isoTime(row.createdAt),
  updatedAt: isoTime(row.updatedAt),
});

export async function findResidentWhere(Resident: ResidentModel, where: WhereOptions<ResidentRow>, transaction?: Transaction): Promise<ResidentRecord | null> {
  const row = await Resident.findOne({ where, raw: true, transaction });
  return row ? toRecord(row) : null;
}

export async function findResidentsWhere(Resident: ResidentModel, where: WhereOptions<ResidentRow>, transaction?: Transaction): Promise<ResidentRecord[]> {
  return (await Resident.findAll({ where, raw: true, transaction, order: [['createdAt', 'ASC']] })).map(toRecord);
}

/** Rows per INSERT and ids per read-back in `insertResidents`. */
const CHUNK = 400;

/** Writes residents with one INSERT per 400 rows and returns them as stored, in the order given. */
export async function insertResidents(Resident: ResidentModel, values: CreationAttributes<ResidentRow>[], transaction: Transaction): Promise<ResidentRecord[]> {
  const stored = new Map<string, ResidentRecord>();
  for (let i = 0; i < values.length; i += CHUNK) {
    const chunk = values.slice(i, i + CHUNK);
    await Resident.bulkCreate(chunk, { transaction });
    for (const r of await residentsByIds(Resident, chunk.map((v) => v.id), transaction)) stored.set(r.id, r);
  }
  return values.map((v) => stored.get(v.id)!);
}

export async function updateResidentRow(
  Resident: ResidentModel, id: string, values: Partial<CreationAttributes<ResidentRow>>, transaction: Transaction,
): Promise<ResidentRecord> {
  await Resident.update(values, { where: { id }, transaction });
  return (await findResidentWhere(Resident, { id }, transaction))!;
}

/** `LIKE` with the user's text taken literally (their % and _ are not wildcards). */
const literalLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export interface ResidentSearch {
  name?: string;
  kana?: string;
  birthDate?: string;
  status?: ResidentStatus;
  page: number;
  pageSize: number;
}

export async function searchResidentRows(Resident: ResidentModel, search: ResidentSearch, transaction?: Transaction) {
  const where: WhereOptions<ResidentRow>[] = [];
  const sequelize = Resident.sequelize!;
  // The patterns travel as bound parameters ($name, $kana), never inside the SQL text.
  const bind: Record<string, string> = {};
  const like = (column: 'name' | 'kana', pattern: string) => {
    bind[column] = pattern;
    return sequelize.literal(`"${column}" LIKE $${column} ESCAPE '\\'`) as never;
  };
  if (search.name) where.push(like('name', `%${literalLike(search.name)}%`));
  if (search.kana) where.push(like('kana', `${literalLike(search.kana)}%`));
  if (search.birthDate) where.push({ birthDate: search.birthDate });
  if (search.status) where.push({ status: search.status });
  const { rows, count } = await Resident.findAndCountAll({
    where: { [Op.and]: where }, raw: true, transaction, bind,
    order: [['kana', 'ASC'], ['addresseeNumber', 'ASC']],
    limit: search.pageSize, offset: (search.page - 1) * search.pageSize,
  });
  return { rows: rows.map(toRecord), total: count };
}

/** Katakana for hiragana, and no spaces: how a name search compares what an officer types with stored kana. */
const searchForm = (text: string) => text.normalize('NFKC').replace(/[\u3041-\u3096]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0x60)).replace(/[\s\u3000]/g, '');

/**
 * The addressee numbers and codes of up to `limit` residents whose name or kana contains `text`
 * (spaces ignored on both sides, hiragana read as katakana): the subjects their log entries carry.
 */
export async function subjectsOfResidentsNamed(Resident: ResidentModel, text: string, limit: number, transaction?: Transaction): Promise<string[]> {
  const sequelize = Resident.sequelize!;
  const pattern = `%${literalLike(searchForm(text))}%`;
  const squeezed = (column: 'name' | 'kana') => `REPLACE(REPLACE("${column}", ' ', ''), '\u3000', '') LIKE $pattern ESCAPE '\\'`;
  const rows = await Resident.findAll({
    where: sequelize.literal(`(${squeezed('name')} OR ${squeezed('kana')})`) as never,
    attributes: ['addresseeNumber', 'code'], raw: true, transaction, bind: { pattern }, limit,
    order: [['addresseeNumber', 'ASC']],
  });
  return rows.flatMap((r) => (r.code ? [r.addresseeNumber, r.code] : [r.addresseeNumber]));
}

export async function insertResidentHistory(
  ResidentHistory: ResidentHistoryModel, values: CreationAttributes<ResidentHistoryRow>, transaction: Transaction,
): Promise<void> {
  await ResidentHistory.create(values, { transaction });
}

export interface ResidentHistoryEntry {
  at: string;
  actorId: string;
  reason: string;
  changes: { field: string; from: unknown; to: unknown }[];
}

export async function listResidentHistory(ResidentHistory: ResidentHistoryModel, residentId: string, transaction?: Transaction): Promise<ResidentHistoryEntry[]> {
  const rows = await ResidentHistory.findAll({ where: { residentId }, raw: true, transaction, order: [['id', 'ASC']] });
  return rows.map((r) => ({ at: isoTime(r.createdAt), actorId: r.actorId, reason: r.reason, changes: JSON.parse(r.changes) }));
}

/** Residents by addressee number; the numbers not found are absent. */
export async function residentsByAddressees(Resident: ResidentModel, addresseeNumbers: string[], transaction?: Transaction): Promise<ResidentRecord[]> {
  return (await Resident.findAll({ where: { addresseeNumber: { [Op.in]: addresseeNumbers } }, raw: true, transaction })).map(toRecord);
}

/** Residents by our code for them; the codes not found are absent. */
export async function residentsByCodes(Resident: ResidentModel, codes: string[], transaction?: Transaction): Promise<ResidentRecord[]> {
  return (await Resident.findAll({ where: { code: { [Op.in]: codes } }, raw: true, transaction })).map(toRecord);
}

/** Residents by id; the ids not found are absent. */
export async function residentsByIds(Resident: ResidentModel, ids: string[], transaction?: Transaction): Promise<ResidentRecord[]> {
  return (await Resident.findAll({ where: { id: { [Op.in]: ids } }, raw: true, transaction })).map(toRecord);
}

/** The residents a log subject names: by addressee number, or by our code (a query refused before matching). */
export async function residentsBySubjects(Resident: ResidentModel, subjects: string[], transaction?: Transaction): Promise<{ id: string; addresseeNumber: string; code: string | null }[]> {
  if (subjects.length === 0) return [];
  return Resident.findAll({
    where: { [Op.or]: [{ addresseeNumber: { [Op.in]: subjects } }, { code: { [Op.in]: subjects } }] },
    attributes: ['id', 'addresseeNumber', 'code'], raw: true, transaction,
  });
}

/** Current residents who moved in since `since` (from `source`, if given), oldest move-in first. */
export async function residentsMovedInSince(
  Resident: ResidentModel, since: string, source: string | undefined, transaction?: Transaction,
): Promise<{ id: string; addresseeNumber: string; previousMunicipality: string | null }[]> {
  return Resident.findAll({
    attributes: ['id', 'addresseeNumber', 'previousMunicipality'],
    where: { status: 'resident', movedInAt: { [Op.gte]: since }, previousMunicipality: source ? source : { [Op.ne]: null } },
    order: [['movedInAt', 'ASC'], ['addresseeNumber', 'ASC']], raw: true, transaction,
  });
}

/** Stores the code the issuer derived for one resident. */
export async function storeCode(Resident: ResidentModel, id: string, code: string, transaction: Transaction): Promise<void> {
  await Resident.update({ code, codeStatus: 'issued', codeDerivation: 'blind' }, { where: { id }, transaction });
}

/*
 * The residents table is the outbox of code registration (DESIGN.md flow 1): every resident whose
 * codeStatus is `pending` is due; registration_attempts (codes/model.ts) holds the backoff of
 * those that failed, joined here by resident id.
 */

/** Residents still waiting for a code, and how many of them have failed at least once. */
export async function codeBacklog(Resident: ResidentModel): Promise<{ pending: number; retrying: number }> {
  const [row] = await Resident.sequelize!.query<{ pending: number; retrying: number }>(
    `SELECT COUNT(*) AS pending, COUNT(a."residentId") AS retrying
       FROM residents r LEFT JOIN registration_attempts a ON a."residentId" = r.id
      WHERE r."codeStatus" = 'pending'`, { type: QueryTypes.SELECT });
  return { pending: Number(row?.pending ?? 0), retrying: Number(row?.retrying ?? 0) };
}

/** Up to `limit` residents due for registration at `now`, never-tried first, with their failed attempts so far. */
export async function residentsDueForCode(Resident: ResidentModel, now: Date, limit: number): Promise<{ id: string; attempts: number }[]> {
  const rows = await Resident.sequelize!.query<{ id: string; attempts: number | null }>(
    `SELECT r.id AS id, a.attempts AS attempts
       FROM residents r LEFT JOIN registration_attempts a ON a."residentId" = r.id
      WHERE r."codeStatus" = 'pending' AND (a."nextAttemptAt" IS NULL OR a."nextAttemptAt" <= $1)
      ORDER BY a."nextAttemptAt" ASC NULLS FIRST LIMIT $2`,
    { type: QueryTypes.SELECT, bind: [now.toISOString(), limit] },
  );
  return rows.map((r) => ({ id: r.id, attempts: Number(r.attempts ?? 0) }));
}

/** Stores the codes of a batch in one statement. */
export const storeCodes = (Resident: ResidentModel, issued: { id: string; code: string }[], at: Date): Promise<void> =>
  updateRows(Resident.sequelize!, 'residents', { keys: ['id'], set: { code: 'TEXT' }, fixed: { codeStatus: 'issued', codeDerivation: 'blind', updatedAt: at } }, issued);

/*
 * Rekey (docs/DESIGN.md §4.2): residents whose code is of the old derivation are due, with the
 * same backoff table as registration (a resident is pending or issued, never both).
 */

/** Residents whose code is still of the old derivation. */
export async function rekeyBacklog(Resident: ResidentModel): Promise<number> {
  return Resident.count({ where: { codeStatus: 'issued', codeDerivation: 'legacy' } });
}

/** Up to `limit` residents due for a rekey at `now`, with their code and failed attempts so far. */
export async function residentsDueForRekey(Resident: ResidentModel, now: Date, limit: number): Promise<{ id: string; code: string; attempts: number }[]> {
  const rows = await Resident.sequelize!.query<{ id: string; code: string; attempts: number | null }>(
    `SELECT r.id AS id, r.code AS code, a.attempts AS attempts
       FROM residents r LEFT JOIN registration_attempts a ON a."residentId" = r.id
      WHERE r."codeStatus" = 'issued' AND r."codeDerivation" = 'legacy' AND r.code IS NOT NULL
        AND (a."nextAttemptAt" IS NULL OR a."nextAttemptAt" <= $1)
      ORDER BY a."nextAttemptAt" ASC NULLS FIRST LIMIT $2`,
    { type: QueryTypes.SELECT, bind: [now.toISOString(), limit] },
  );
  return rows.map((r) => ({ id: r.id, code: r.code, attempts: Number(r.attempts ?? 0) }));
}

/** Queues residents for a fresh registration (their old code unknown at the gateway): pending again until a blind code is stored. */
export const requeueForCode = (Resident: ResidentModel, ids: string[], at: Date): Promise<void> =>
  updateRows(Resident.sequelize!, 'residents', { keys: ['id'], set: {}, fixed: { codeStatus: 'pending', codeDerivation: null, updatedAt: at } }, ids.map((id) => ({ id })));

/** Marks residents whose code now sits on its blind link (the code itself is unchanged). */
export const markRekeyed = (Resident: ResidentModel, ids: string[], at: Date): Promise<void> =>
  updateRows(Resident.sequelize!, 'residents', { keys: ['id'], set: {}, fixed: { codeDerivation: 'blind', updatedAt: at } }, ids.map((id) => ({ id })));

/** Residents (any status) in id order after `afterId`, at most `limit`: a walk over all of them in pages. */
export async function residentsAfter(Resident: ResidentModel, afterId: string | null, limit: number, transaction?: Transaction): Promise<ResidentRecord[]> {
  const rows = await Resident.findAll({
    where: afterId === null ? {} : { id: { [Op.gt]: afterId } }, order: [['id', 'ASC']], limit, raw: true, transaction,
  });
  return rows.map(toRecord);
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Deceased residents whose death took effect on or before `latest` (a calendar date), oldest death first. */
export async function deceasedOnOrBefore(Resident: ResidentModel, latest: string, transaction?: Transaction): Promise<{ id: string; addresseeNumber: string; deceasedOn: string }[]> {
  const rows = await Resident.findAll({
    attributes: ['id', 'addresseeNumber', 'deceasedOn'],
    where: { status: 'deceased', deceasedOn: { [Op.ne]: null, [Op.lte]: latest } },
    order: [['deceasedOn', 'ASC'], ['addresseeNumber', 'ASC']], raw: true, transaction,
  });
  return rows.map((r) => ({ id: r.id, addresseeNumber: r.addresseeNumber, deceasedOn: r.deceasedOn! }));
}

/** Which of `addresseeNumbers` belonged to residents the retention rule removed. */
export async function retiredAmong(RetiredAddresseeNumber: RetiredAddresseeNumberModel, addresseeNumbers: string[], transaction?: Transaction): Promise<string[]> {
  const rows = await RetiredAddresseeNumber.findAll({ where: { addresseeNumber: { [Op.in]: addresseeNumbers } }, attributes: ['addresseeNumber'], raw: true, transaction });
  return rows.map((r) => r.addresseeNumber);
}

/**
 * Removes a resident's row and history and keeps the addressee number as retired, in the
 * retention job's transaction. Callers remove every row of other tables that points here first.
 * @returns rows deleted per table.
 */
export async function removeResidentRows(
  models: { Resident: ResidentModel; ResidentHistory: ResidentHistoryModel; RetiredAddresseeNumber: RetiredAddresseeNumberModel },
  resident: { id: string; addresseeNumber: string }, retiredOn: string, transaction: Transaction,
): Promise<{ resident_history: number; residents: number }> {
  const history = await models.ResidentHistory.destroy({ where: { residentId: resident.id }, transaction });
  const residents = await models.Resident.destroy({ where: { id: resident.id }, transaction });
  await models.RetiredAddresseeNumber.create({ addresseeNumber: resident.addresseeNumber, retiredOn }, { transaction });
  return { resident_history: history, residents };
}
