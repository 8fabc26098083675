import { DataTypes, Model, Op, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

/**
 * The code correspondence table: which code each municipality uses for one link. linkId is an
 * HMAC, under a key only the issuer holds, of the two-member OPRF output of the My Number
 * (docs/DESIGN.md §3.4): the gateway can neither reverse it nor compute it from a My Number.
 */
export class CorrespondenceRow extends Model<InferAttributes<CorrespondenceRow>, InferCreationAttributes<CorrespondenceRow>> {
  declare id: CreationOptional<number>;
  declare linkId: string;
  declare municipality: string;
  declare code: string;
  /** The issuer's signed attestation of (municipality, code, link), forwarded to the answering municipality. */
  declare attestation: string;
  declare createdAt: CreationOptional<Date>;
}

export function defineCorrespondenceModel(sequelize: Sequelize) {
  class Correspondence extends CorrespondenceRow {}
  Correspondence.init(
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      linkId: { type: DataTypes.STRING(43), allowNull: false },
      municipality: { type: DataTypes.STRING(6), allowNull: false },
      code: { type: DataTypes.STRING(26), allowNull: false },
      attestation: { type: DataTypes.TEXT, allowNull: false },
      createdAt: DataTypes.DATE,
    },
    {
      sequelize, tableName: 'correspondence', updatedAt: false,
      indexes: [
        { unique: true, fields: ['municipality', 'code'] },
        { unique: true, fields: ['linkId', 'municipality'] },
      ],
    },
  );
  return Correspondence;
}

export type CorrespondenceModel = ReturnType<typeof defineCorrespondenceModel>;

/** The owning folder adds its tables to the gateway's models (see context.ts). */
declare module '../context.ts' {
  interface GatewayModels {
    Correspondence: CorrespondenceModel;
  }
}

export interface Correspondence {
  linkId: string;
  municipality: string;
  code: string;
  attestation: string;
}

const toPlain = (row: InferAttributes<CorrespondenceRow>): Correspondence =>
  ({ linkId: row.linkId, municipality: row.municipality, code: row.code, attestation: row.attestation });

/** Bound parameters per statement stay well under SQLite's limit. */
const CHUNK = 400;
function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

export async function findCorrespondence(M: CorrespondenceModel, where: { municipality: string; code?: string; linkId?: string }, transaction?: Transaction): Promise<Correspondence | null> {
  const row = await M.findOne({ where, raw: true, transaction });
  return row ? toPlain(row) : null;
}

export async function insertCorrespondence(M: CorrespondenceModel, c: Correspondence, transaction: Transaction): Promise<Correspondence> {
  return toPlain((await M.create(c, { transaction })).get({ plain: true }));
}

/** Records many correspondences in one statement (a batch from the issuer, already decided on). */
export async function insertCorrespondences(M: CorrespondenceModel, rows: Correspondence[], transaction: Transaction): Promise<void> {
  for (const part of chunks(rows)) await M.bulkCreate(part, { transaction });
}

/** One municipality's correspondences for many codes, keyed by code. */
export async function findByCodes(M: CorrespondenceModel, municipality: string, codes: string[], transaction?: Transaction): Promise<Map<string, Correspondence>> {
  const found = new Map<string, Correspondence>();
  for (const part of chunks([...new Set(codes)])) {
    const rows = await M.findAll({ where: { municipality, code: { [Op.in]: part } }, raw: true, transaction });
    for (const row of rows) found.set(row.code, toPlain(row));
  }
  return found;
}

/** Every correspondence of the given links, keyed by `${linkId}|${municipality}`. */
export async function findByLinks(M: CorrespondenceModel, linkIds: string[], transaction?: Transaction): Promise<Map<string, Correspondence>> {
  const found = new Map<string, Correspondence>();
  for (const part of chunks([...new Set(linkIds)])) {
    const rows = await M.findAll({ where: { linkId: { [Op.in]: part } }, raw: true, transaction });
    for (const row of rows) found.set(`${row.linkId}|${row.municipality}`, toPlain(row));
  }
  return found;
}

/** Moves every row of one link to another (a rekey, docs/DESIGN.md §4.2): codes and municipalities stay. */
export async function moveLink(M: CorrespondenceModel, from: string, to: string, transaction: Transaction): Promise<number> {
  const [count] = await M.update({ linkId: to }, { where: { linkId: from }, transaction });
  return count;
}

/** Replaces the attestation of one row (after a rekey); false when no row has that municipality and code. */
export async function replaceAttestation(M: CorrespondenceModel, row: { municipality: string; code: string; attestation: string }, transaction: Transaction): Promise<boolean> {
  const [count] = await M.update({ attestation: row.attestation }, { where: { municipality: row.municipality, code: row.code }, transaction });
  return count > 0;
}
