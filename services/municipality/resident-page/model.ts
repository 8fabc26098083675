/**
 * The resident page's tables (docs/DESIGN.md §4.14): credentials enrolled at the counter, and the
 * one-time challenges a resident signs to sign in.
 */
import { DataTypes, Model, Op, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction } from 'sequelize';

export const CREDENTIAL_KINDS = ['certificate'] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

export class ResidentCredentialRow extends Model<InferAttributes<ResidentCredentialRow>, InferCreationAttributes<ResidentCredentialRow>> {
  declare id: string;
  declare residentId: string;
  declare kind: CredentialKind;
  /** The certificate's serial (hex): how a sign-in finds its credential. */
  declare certificateSerial: string;
  declare certificate: string;
  declare enrolledAt: string;
  declare enrolledBy: string;
  declare revokedAt: string | null;
  declare revokedBy: string | null;
}

export class SignInChallengeRow extends Model<InferAttributes<SignInChallengeRow>, InferCreationAttributes<SignInChallengeRow>> {
  declare challenge: string;
  declare expiresAt: string;
  declare usedAt: string | null;
}

export class ResidentSessionRow extends Model<InferAttributes<ResidentSessionRow>, InferCreationAttributes<ResidentSessionRow>> {
  declare jti: string;
  declare credentialId: string;
  /** The resident's signature over the challenge that opened this session. */
  declare signIn: string;
  declare expiresAt: string;
  declare endedAt: string | null;
}

export function defineResidentPageModels(sequelize: Sequelize) {
  class ResidentCredential extends ResidentCredentialRow {}
  ResidentCredential.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    residentId: { type: DataTypes.STRING(36), allowNull: false },
    kind: { type: DataTypes.STRING(16), allowNull: false },
    certificateSerial: { type: DataTypes.STRING(64), allowNull: false },
    certificate: { type: DataTypes.TEXT, allowNull: false },
    enrolledAt: { type: DataTypes.STRING(30), allowNull: false },
    enrolledBy: { type: DataTypes.STRING(36), allowNull: false },
    revokedAt: { type: DataTypes.STRING(30), allowNull: true },
    revokedBy: { type: DataTypes.STRING(36), allowNull: true },
  }, { sequelize, tableName: 'resident_credentials', timestamps: false });

  class SignInChallenge extends SignInChallengeRow {}
  SignInChallenge.init({
    challenge: { type: DataTypes.STRING(64), primaryKey: true },
    expiresAt: { type: DataTypes.STRING(30), allowNull: false },
    usedAt: { type: DataTypes.STRING(30), allowNull: true },
  }, { sequelize, tableName: 'resident_sign_in_challenges', timestamps: false });

  class ResidentSession extends ResidentSessionRow {}
  ResidentSession.init({
    jti: { type: DataTypes.STRING(64), primaryKey: true },
    credentialId: { type: DataTypes.STRING(36), allowNull: false },
    signIn: { type: DataTypes.TEXT, allowNull: false },
    expiresAt: { type: DataTypes.STRING(30), allowNull: false },
    endedAt: { type: DataTypes.STRING(30), allowNull: true },
  }, { sequelize, tableName: 'resident_sessions', timestamps: false });

  return { ResidentCredential, SignInChallenge, ResidentSession };
}

/** The owning folder adds its tables to the context's models (see context.ts). */
declare module '../context.ts' {
  interface Models extends ReturnType<typeof defineResidentPageModels> {}
}

type ResidentPageModels = ReturnType<typeof defineResidentPageModels>;

/* ---------- repository ---------- */

export interface ResidentCredential {
  id: string;
  residentId: string;
  kind: CredentialKind;
  certificateSerial: string;
  certificate: string;
  enrolledAt: string;
  enrolledBy: string;
  revokedAt: string | null;
  revokedBy: string | null;
}

const toCredential = (r: InferAttributes<ResidentCredentialRow>): ResidentCredential => ({
  id: r.id, residentId: r.residentId, kind: r.kind, certificateSerial: r.certificateSerial, certificate: r.certificate,
  enrolledAt: r.enrolledAt, enrolledBy: r.enrolledBy, revokedAt: r.revokedAt ?? null, revokedBy: r.revokedBy ?? null,
});

export async function insertCredential(M: ResidentPageModels['ResidentCredential'], c: ResidentCredential, transaction: Transaction): Promise<void> {
  await M.create(c, { transaction });
}

export async function findCredential(M: ResidentPageModels['ResidentCredential'], id: string, transaction?: Transaction): Promise<ResidentCredential | null> {
  const row = await M.findByPk(id, { raw: true, transaction });
  return row ? toCredential(row) : null;
}

/** Credentials in force with this certificate serial (at most one: enrolment refuses a second). */
export async function activeCredentialsWithSerial(M: ResidentPageModels['ResidentCredential'], serial: string, transaction?: Transaction): Promise<ResidentCredential[]> {
  return (await M.findAll({ where: { certificateSerial: serial, revokedAt: null }, raw: true, transaction })).map(toCredential);
}

export async function credentialsOf(M: ResidentPageModels['ResidentCredential'], residentId: string, transaction?: Transaction): Promise<ResidentCredential[]> {
  return (await M.findAll({ where: { residentId }, order: [['enrolledAt', 'ASC']], raw: true, transaction })).map(toCredential);
}

export async function markCredentialRevoked(M: ResidentPageModels['ResidentCredential'], id: string, by: string, at: string, transaction: Transaction): Promise<void> {
  await M.update({ revokedAt: at, revokedBy: by }, { where: { id, revokedAt: null }, transaction });
}

/** Removes every credential of a resident and their sessions: the retention rule's path only (docs/DESIGN.md §4.13). */
export async function removeCredentialsOf(M: Pick<ResidentPageModels, 'ResidentCredential' | 'ResidentSession'>, residentId: string, transaction: Transaction): Promise<number> {
  const ids = (await M.ResidentCredential.findAll({ where: { residentId }, attributes: ['id'], raw: true, transaction })).map((c) => c.id);
  if (ids.length > 0) await M.ResidentSession.destroy({ where: { credentialId: { [Op.in]: ids } }, transaction });
  return M.ResidentCredential.destroy({ where: { residentId }, transaction });
}

/** A new challenge; challenges past their expiry are dropped on the way (they refuse nothing an expiry does not). */
export async function insertChallenge(M: ResidentPageModels['SignInChallenge'], challenge: string, expiresAt: string, now: string, transaction: Transaction): Promise<void> {
  await M.destroy({ where: { expiresAt: { [Op.lt]: now } }, transaction });
  await M.create({ challenge, expiresAt, usedAt: null }, { transaction });
}

/**
 * Spends a challenge: true only for one that exists, has not expired and was not used — and then
 * it is used, in `transaction`, so two sign-ins with one challenge cannot both succeed.
 */
export async function spendChallenge(M: ResidentPageModels['SignInChallenge'], challenge: string, now: string, transaction: Transaction): Promise<boolean> {
  const [updated] = await M.update({ usedAt: now }, { where: { challenge, usedAt: null, expiresAt: { [Op.gt]: now } }, transaction });
  return updated === 1;
}

export interface ResidentSession {
  jti: string;
  credentialId: string;
  signIn: string;
  expiresAt: string;
  endedAt: string | null;
}

/** A new session; sessions past their expiry are dropped on the way. */
export async function insertSession(M: ResidentPageModels['ResidentSession'], session: Omit<ResidentSession, 'endedAt'>, now: string, transaction: Transaction): Promise<void> {
  await M.destroy({ where: { expiresAt: { [Op.lt]: now } }, transaction });
  await M.create({ ...session, endedAt: null }, { transaction });
}

export async function findSession(M: ResidentPageModels['ResidentSession'], jti: string, transaction?: Transaction): Promise<ResidentSession | null> {
  const row = await M.findByPk(jti, { raw: true, transaction });
  return row ? { jti: row.jti, credentialId: row.credentialId, signIn: row.signIn, expiresAt: row.expiresAt, endedAt: row.endedAt ?? null } : null;
}

export async function endSession(M: ResidentPageModels['ResidentSession'], jti: string, at: string, transaction: Transaction): Promise<void> {
  await M.update({ endedAt: at }, { where: { jti, endedAt: null }, transaction });
}
