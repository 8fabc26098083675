/**
 * The centralized baseline's one database (the VRS design hikitsugi replaces): every
 * municipality's residents in one table keyed by the raw My Number, every record beside them,
 * a plain operation log. No codes, no encryption at rest, no hash chain: only what that design
 * needs to answer "which doses did this person get elsewhere?" for the receiving municipality.
 * Benchmark-only; it lives under scripts/ and nothing in the services imports it.
 */
import {
  DataTypes, Model, Op, QueryTypes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize,
  type Transaction,
} from 'sequelize';

export class CentralResidentRow extends Model<InferAttributes<CentralResidentRow>, InferCreationAttributes<CentralResidentRow>> {
  declare id: CreationOptional<number>;
  declare municipality: string;
  declare addresseeNumber: string;
  declare myNumber: string;
  declare name: string;
  declare kana: string;
  declare birthDate: string;
  declare sex: string;
  declare address: string;
  declare status: string;
}

export class CentralRecordRow extends Model<InferAttributes<CentralRecordRow>, InferCreationAttributes<CentralRecordRow>> {
  declare id: CreationOptional<number>;
  declare municipality: string;
  declare residentId: number;
  declare recordId: string;
  declare occurrenceDate: string;
  declare vaccineCode: string;
  declare lotNumber: string;
  declare doseNumber: number;
  declare place: string;
  declare status: string;
  /** Set on a copy made for the receiving municipality (which record it copies). */
  declare sourceMunicipality: string | null;
  declare sourceRecordId: string | null;
}

export class CentralLogRow extends Model<InferAttributes<CentralLogRow>, InferCreationAttributes<CentralLogRow>> {
  declare id: CreationOptional<number>;
  declare at: string;
  declare municipality: string;
  declare action: string;
  declare residentId: number | null;
  declare detail: string;
}

export function defineCentralModels(sequelize: Sequelize) {
  class Resident extends CentralResidentRow {}
  Resident.init({
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    municipality: { type: DataTypes.STRING(6), allowNull: false },
    addresseeNumber: { type: DataTypes.STRING(10), allowNull: false },
    myNumber: { type: DataTypes.STRING(12), allowNull: false },
    name: { type: DataTypes.STRING(100), allowNull: false },
    kana: { type: DataTypes.STRING(100), allowNull: false },
    birthDate: { type: DataTypes.STRING(10), allowNull: false },
    sex: { type: DataTypes.STRING(8), allowNull: false },
    address: { type: DataTypes.STRING(300), allowNull: false },
    status: { type: DataTypes.STRING(16), allowNull: false },
  }, {
    sequelize, tableName: 'residents', timestamps: false,
    indexes: [{ fields: ['myNumber'] }, { unique: true, fields: ['municipality', 'addresseeNumber'] }],
  });

  class VaccinationRecord extends CentralRecordRow {}
  VaccinationRecord.init({
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    municipality: { type: DataTypes.STRING(6), allowNull: false },
    residentId: { type: DataTypes.INTEGER, allowNull: false, references: { model: 'residents', key: 'id' } },
    recordId: { type: DataTypes.STRING(36), allowNull: false },
    occurrenceDate: { type: DataTypes.STRING(10), allowNull: false },
    vaccineCode: { type: DataTypes.STRING(40), allowNull: false },
    lotNumber: { type: DataTypes.STRING(20), allowNull: false },
    doseNumber: { type: DataTypes.INTEGER, allowNull: false },
    place: { type: DataTypes.STRING(200), allowNull: false },
    status: { type: DataTypes.STRING(20), allowNull: false },
    sourceMunicipality: { type: DataTypes.STRING(6), allowNull: true },
    sourceRecordId: { type: DataTypes.STRING(36), allowNull: true },
  }, {
    sequelize, tableName: 'vaccination_records', timestamps: false,
    indexes: [{ fields: ['residentId'] }, { unique: true, fields: ['residentId', 'sourceRecordId'], name: 'records_copy_once' }],
  });

  class OperationLog extends CentralLogRow {}
  OperationLog.init({
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    at: { type: DataTypes.STRING(30), allowNull: false },
    municipality: { type: DataTypes.STRING(6), allowNull: false },
    action: { type: DataTypes.STRING(40), allowNull: false },
    residentId: { type: DataTypes.INTEGER, allowNull: true },
    detail: { type: DataTypes.TEXT, allowNull: false },
  }, { sequelize, tableName: 'operation_log', timestamps: false });

  return { Resident, VaccinationRecord, OperationLog };
}

export type CentralModels = ReturnType<typeof defineCentralModels>;

export interface CentralResident {
  id: number;
  municipality: string;
  myNumber: string;
  status: string;
}

export interface CentralRecord {
  id: number;
  residentId: number;
  recordId: string;
  municipality: string;
  occurrenceDate: string;
  vaccineCode: string;
  lotNumber: string;
  doseNumber: number;
  place: string;
  status: string;
}

/** Bound parameters per statement stay under SQLite's limit. */
const CHUNK = 400;

/** Every resident row (any municipality) holding one of these My Numbers. */
export async function residentsByMyNumber(m: CentralModels, myNumbers: string[], transaction?: Transaction): Promise<CentralResident[]> {
  const out: CentralResident[] = [];
  for (let i = 0; i < myNumbers.length; i += CHUNK) {
    const rows = await m.Resident.findAll({
      where: { myNumber: { [Op.in]: myNumbers.slice(i, i + CHUNK) } }, attributes: ['id', 'municipality', 'myNumber', 'status'], raw: true, transaction,
    });
    for (const r of rows) out.push({ id: r.id, municipality: r.municipality, myNumber: r.myNumber, status: r.status });
  }
  return out;
}

/** The original (not copied) records of these residents. */
export async function originalRecordsOf(m: CentralModels, residentIds: number[], transaction?: Transaction): Promise<CentralRecord[]> {
  const out: CentralRecord[] = [];
  for (let i = 0; i < residentIds.length; i += CHUNK) {
    const rows = await m.VaccinationRecord.findAll({
      where: { residentId: { [Op.in]: residentIds.slice(i, i + CHUNK) }, sourceRecordId: null }, raw: true, transaction,
    });
    for (const r of rows) {
      out.push({
        id: r.id, residentId: r.residentId, recordId: r.recordId, municipality: r.municipality, occurrenceDate: r.occurrenceDate,
        vaccineCode: r.vaccineCode, lotNumber: r.lotNumber, doseNumber: r.doseNumber, place: r.place, status: r.status,
      });
    }
  }
  return out;
}

/** Source record ids already copied to these residents. */
export async function copiedSourceIds(m: CentralModels, residentIds: number[], transaction?: Transaction): Promise<Set<string>> {
  const out = new Set<string>();
  for (let i = 0; i < residentIds.length; i += CHUNK) {
    const rows = await m.VaccinationRecord.sequelize!.query<{ residentId: number; sourceRecordId: string }>(
      `SELECT residentId, sourceRecordId FROM vaccination_records WHERE sourceRecordId IS NOT NULL AND residentId IN (${residentIds.slice(i, i + CHUNK).map((_, n) => `$${n + 1}`).join(',')})`,
      { type: QueryTypes.SELECT, bind: residentIds.slice(i, i + CHUNK), transaction },
    );
    for (const r of rows) out.add(`${r.residentId}|${r.sourceRecordId}`);
  }
  return out;
}

export async function insertCopies(m: CentralModels, rows: Omit<InferAttributes<CentralRecordRow>, 'id'>[], transaction: Transaction): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) await m.VaccinationRecord.bulkCreate(rows.slice(i, i + CHUNK), { transaction });
}

export async function insertLog(m: CentralModels, rows: Omit<InferAttributes<CentralLogRow>, 'id'>[], transaction: Transaction): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) await m.OperationLog.bulkCreate(rows.slice(i, i + CHUNK), { transaction });
}
