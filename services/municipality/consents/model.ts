import { DataTypes, Model, Op, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

export class ConsentRow extends Model<InferAttributes<ConsentRow>, InferCreationAttributes<ConsentRow>> {
  declare id: string;
  declare residentId: string;
  declare scope: string;
  declare purpose: string;
  /** JSON array of municipality codes the resident allowed us to ask. */
  declare sources: string;
  declare givenAt: string;
  declare expiresAt: string;
  declare method: string;
  declare recordedBy: string;
  /** For method `resident-signed`: the resident's compact JWS over the consent. */
  declare residentSignature: string | null;
  /** For method `resident-signed`: the resident's personal certificate (PEM) the signature verifies with. */
  declare residentCertificate: CreationOptional<string | null>;
  declare revokedAt: CreationOptional<string | null>;
  declare revokedBy: CreationOptional<string | null>;
  declare revocationReason: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineConsentModels(sequelize: Sequelize) {
  class Consent extends ConsentRow {}
  Consent.init(
    {
      id: { type: DataTypes.STRING(36), primaryKey: true },
      residentId: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'residents', key: 'id' } },
      scope: { type: DataTypes.STRING(32), allowNull: false },
      purpose: { type: DataTypes.STRING(64), allowNull: false },
      sources: { type: DataTypes.TEXT, allowNull: false },
      givenAt: { type: DataTypes.STRING(30), allowNull: false },
      expiresAt: { type: DataTypes.STRING(30), allowNull: false },
      method: { type: DataTypes.STRING(32), allowNull: false },
      recordedBy: { type: DataTypes.STRING(64), allowNull: false },
      residentSignature: { type: DataTypes.TEXT, allowNull: true },
      residentCertificate: { type: DataTypes.TEXT, allowNull: true },
      revokedAt: { type: DataTypes.STRING(30), allowNull: true },
      revokedBy: { type: DataTypes.STRING(64), allowNull: true },
      revocationReason: { type: DataTypes.STRING(500), allowNull: true },
      createdAt: DataTypes.DATE,
      updatedAt: DataTypes.DATE,
    },
    { sequelize, tableName: 'consents', indexes: [{ fields: ['residentId'] }] },
  );
  return { Consent };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineConsentModels> {}
}

export type ConsentModel = ReturnType<typeof defineConsentModels>['Consent'];

/** A consent as the rest of the service sees it. */
export interface ConsentView {
  id: string;
  residentId: string;
  scope: string;
  purpose: string;
  sources: string[];
  givenAt: string;
  expiresAt: string;
  method: string;
  recordedBy: string;
  residentSignature: string | null;
  residentCertificate: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
  revocationReason: string | null;
}

const toView = (row: InferAttributes<ConsentRow>): ConsentView => ({
  id: row.id,
  residentId: row.residentId,
  scope: row.scope,
  purpose: row.purpose,
  sources: JSON.parse(row.sources) as string[],
  givenAt: row.givenAt,
  expiresAt: row.expiresAt,
  method: row.method,
  recordedBy: row.recordedBy,
  residentSignature: row.residentSignature ?? null,
  residentCertificate: row.residentCertificate ?? null,
  revokedAt: row.revokedAt ?? null,
  revokedBy: row.revokedBy ?? null,
  revocationReason: row.revocationReason ?? null,
});

export async function insertConsent(Consent: ConsentModel, consent: Omit<ConsentView, 'revokedAt' | 'revokedBy' | 'revocationReason'>, transaction: Transaction): Promise<ConsentView> {
  const row = await Consent.create({ ...consent, sources: JSON.stringify(consent.sources) }, { transaction });
  return toView(row.get({ plain: true }));
}

export async function findConsent(Consent: ConsentModel, id: string, transaction?: Transaction): Promise<ConsentView | null> {
  const row = await Consent.findByPk(id, { raw: true, transaction });
  return row ? toView(row) : null;
}

export async function listConsentsOf(Consent: ConsentModel, residentId: string, transaction?: Transaction): Promise<ConsentView[]> {
  return (await listConsentsOfMany(Consent, [residentId], transaction)).get(residentId) ?? [];
}

/** Every consent of several residents in one read (a bulk query decides a batch at once), newest first per resident. */
export async function listConsentsOfMany(Consent: ConsentModel, residentIds: string[], transaction?: Transaction): Promise<Map<string, ConsentView[]>> {
  const byResident = new Map<string, ConsentView[]>();
  if (residentIds.length === 0) return byResident;
  const rows = await Consent.findAll({ where: { residentId: residentIds }, order: [['givenAt', 'DESC']], raw: true, transaction });
  for (const row of rows) {
    const list = byResident.get(row.residentId) ?? [];
    list.push(toView(row));
    byResident.set(row.residentId, list);
  }
  return byResident;
}

/** Revocation is recorded on the consent (who, when, why); the consent itself is never removed. */
export async function markRevoked(Consent: ConsentModel, id: string, revokedBy: string, reason: string, transaction: Transaction): Promise<boolean> {
  const [count] = await Consent.update(
    { revokedAt: new Date().toISOString(), revokedBy, revocationReason: reason },
    { where: { id, revokedAt: { [Op.is]: null } }, transaction },
  );
  return count === 1;
}

/** The consent recorded from this resident-signed JWS, if any (a signed consent is recorded once). */
export async function findConsentBySignature(Consent: ConsentModel, residentSignature: string, transaction?: Transaction): Promise<{ id: string } | null> {
  return Consent.findOne({ where: { residentSignature }, attributes: ['id'], raw: true, transaction });
}

/* ---------- retention (docs/DESIGN.md §4.13): the only hard deletes of this folder's tables ---------- */

/** Deletes every consent of one resident; returns the rows deleted. */
export const deleteConsentsOf = (Consent: ConsentModel, residentId: string, t: Transaction): Promise<number> =>
  Consent.destroy({ where: { residentId }, transaction: t });
