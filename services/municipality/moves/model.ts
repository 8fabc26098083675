import { DataTypes, Model, type CreationAttributes, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

/** One move-in, with the certificate it came from (a certificate is accepted once). */
export class MoveInRow extends Model<InferAttributes<MoveInRow>, InferCreationAttributes<MoveInRow>> {
  declare id: string;
  declare residentId: string;
  declare fromMunicipality: string;
  declare certificateJti: string;
  declare moveOutDate: string;
  declare movedInAt: string;
  declare recordedBy: string;
  /** The move link the certificate carried: B's proof of the chain of moves for later queries (docs/PROTOCOL.md). */
  declare moveLink: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
}

export function defineMoveModels(sequelize: Sequelize) {
  class MoveIn extends MoveInRow {}
  MoveIn.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    residentId: { type: DataTypes.STRING(36), allowNull: false },
    fromMunicipality: { type: DataTypes.STRING(6), allowNull: false },
    certificateJti: { type: DataTypes.STRING(128), allowNull: false, unique: true },
    moveOutDate: { type: DataTypes.STRING(10), allowNull: false },
    movedInAt: { type: DataTypes.STRING(30), allowNull: false },
    recordedBy: { type: DataTypes.STRING(64), allowNull: false },
    moveLink: { type: DataTypes.TEXT, allowNull: true },
    createdAt: DataTypes.DATE,
  }, { sequelize, tableName: 'move_ins', updatedAt: false, indexes: [{ fields: ['residentId'] }] });
  return { MoveIn };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineMoveModels> {}
}

export type MoveInModel = ReturnType<typeof defineMoveModels>['MoveIn'];
export type MoveInRecord = InferAttributes<MoveInRow>;

/** The move-in that used this certificate, if any. */
export const findMoveInByCertificate = (MoveIn: MoveInModel, certificateJti: string, transaction?: Transaction): Promise<MoveInRecord | null> =>
  MoveIn.findOne({ where: { certificateJti }, transaction, raw: true });

/** The move-in that began a resident's current residence. */
export const findMoveInOf = (MoveIn: MoveInModel, residentId: string, movedInAt: string, transaction?: Transaction): Promise<MoveInRecord | null> =>
  MoveIn.findOne({ where: { residentId, movedInAt }, raw: true, transaction });

/** The move links of every move-in of a resident (none for a move-in without one). */
export async function moveLinksOf(MoveIn: MoveInModel, residentId: string, transaction?: Transaction): Promise<string[]> {
  const rows = await MoveIn.findAll({ where: { residentId }, attributes: ['moveLink'], raw: true, transaction });
  return rows.flatMap((r) => (r.moveLink ? [r.moveLink] : []));
}

export async function insertMoveIn(MoveIn: MoveInModel, values: CreationAttributes<MoveInRow>, transaction: Transaction): Promise<void> {
  await MoveIn.create(values, { transaction });
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Deletes a resident's move-ins (with their move links); returns the rows deleted. */
export const deleteMoveInsOf = (MoveIn: MoveInModel, residentId: string, t: Transaction): Promise<number> =>
  MoveIn.destroy({ where: { residentId }, transaction: t });
