/**
 * The vaccination certificate (接種証明書) as a SMART Health Card, issued at the counter by a
 * clerk for one resident (docs/DESIGN.md §4.11). It holds the resident's name and birth date and
 * the current version of each dose that is not voided — never a My Number or an addressee
 * number — signed with this municipality's own ES256 key, whose public half is served at
 * `GET /.well-known/jwks.json`. Each issuance is an access, logged in its own transaction (§5.1).
 */
import type { KeyObject } from 'node:crypto';
import { healthCardPublicJwk, type HealthCardPublicJwk } from '../../../shared/crypto.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { AppError, unprocessable } from '../../../shared/platform/errors.ts';
import { Actions } from '../access-log/actions.ts';
import { logAccessBy, type Accessor } from '../access-log/service.ts';
import type { MunicipalityContext } from '../context.ts';
import { requireResident } from '../residents/service.ts';
import { CATALOGUE_SYSTEM, CVX_SYSTEM, findProduct, publishedCodings } from '../vaccinations/catalogue.ts';
import { currentVersionsOf, type RecordVersion } from '../vaccinations/model.ts';
import { cardBundle, healthCardPayload, requireSingleQr, signCard, type CardCoding } from './shc.ts';

/** The setting that holds the signing key (services/municipality/config.ts). */
export const SIGNING_KEY_SETTING = 'SHC_SIGNING_KEY';

interface SigningKey {
  key: KeyObject;
  jwk: HealthCardPublicJwk;
}

/**
 * This municipality's signing key and its public JWK. Without one configured, the certificate
 * routes answer 503 naming the setting: the member keeps serving everything else.
 */
function signingKeyOf(ctx: MunicipalityContext): SigningKey {
  const key = ctx.config.SHC_SIGNING_KEY;
  if (!key) {
    throw new AppError(503, 'certificate-signing-not-configured', 'Vaccination certificates are not configured at this municipality', {
      detail: `${SIGNING_KEY_SETTING} is not set: the municipality has no key to sign SMART Health Cards with`,
      setting: SIGNING_KEY_SETTING,
      rule: `set ${SIGNING_KEY_SETTING} to an EC P-256 private key (PKCS#8 PEM or a private JWK) and restart`,
    });
  }
  return { key, jwk: healthCardPublicJwk(key) };
}

/** Refuses early (503) when no signing key is configured, before any resident is read. */
export function requireSigningKey(ctx: MunicipalityContext): void {
  signingKeyOf(ctx);
}

/** The JWKS served at `/.well-known/jwks.json`: the one public key this municipality signs cards with. */
export function publishedKeys(ctx: MunicipalityContext): { keys: HealthCardPublicJwk[] } {
  return { keys: [signingKeyOf(ctx).jwk] };
}

/**
 * The dose's codes for the card: CVX first (what SMART Health Cards verifiers read), then the
 * Japanese lists the catalogue cites (HOT9, YJ); a product with no published code keeps our
 * catalogue's own code, so every Immunization still names its vaccine by a coding.
 */
function codingsOf(vaccineCode: string): CardCoding[] {
  const product = findProduct(vaccineCode);
  const published = product ? publishedCodings(product) : [];
  const ordered = [...published.filter((c) => c.system === CVX_SYSTEM), ...published.filter((c) => c.system !== CVX_SYSTEM)];
  return ordered.length ? ordered.map((c) => ({ system: c.system, code: c.code })) : [{ system: CATALOGUE_SYSTEM, code: vaccineCode }];
}

/** A certificate's two forms: the `.smart-health-card` file, or one QR code. */
export type CertificateForm = 'file' | 'qr';

export interface IssuedCertificate {
  jws: string;
  doses: number;
}

export interface IssueOptions {
  /** The card's `iss`: the base URL where this municipality's JWKS is served. */
  issuer: string;
  form: CertificateForm;
  now?: Date;
}

/**
 * Issues a resident's certificate and logs the issuance (CERTIFICATE_ISSUE: the addressee number
 * as subject, the records certified, the number of doses — no name, no birth date) in one
 * transaction. The doses are the current version of each record, local or imported, that is not
 * voided: a corrected dose appears as corrected, a voided one not at all.
 * @throws 503 without a signing key, 404 for an unknown resident, 422 without a dose to certify
 *   or (form `qr`) when the card is too long for one QR code — nothing is logged as issued then.
 */
export async function issueCertificate(ctx: MunicipalityContext, actor: Accessor, addresseeNumber: string, options: IssueOptions): Promise<IssuedCertificate> {
  const { key, jwk } = signingKeyOf(ctx);
  const now = options.now ?? new Date();
  return inTransaction(ctx.sequelize, async (t) => {
    const resident = await requireResident(ctx, addresseeNumber, t);
    const doses: RecordVersion[] = (await currentVersionsOf(ctx.models.VaccinationRecord, resident.id, t)).filter((v) => v.status === 'completed');
    if (doses.length === 0) {
      throw unprocessable('no-doses-to-certify', 'The resident has no dose to certify', {
        field: 'addresseeNumber', rule: 'a certificate needs at least one recorded dose that is not voided',
      });
    }
    const bundle = cardBundle(
      { name: resident.name, birthDate: resident.birthDate },
      doses.map((d) => ({ codings: codingsOf(d.vaccineCode), occurrenceDate: d.occurrenceDate, lotNumber: d.lotNumber, place: d.place })),
    );
    const jws = await signCard(healthCardPayload(options.issuer, now, bundle), key, jwk.kid);
    if (options.form === 'qr') requireSingleQr(jws);
    await logAccessBy(ctx, t, actor, {
      action: Actions.CERTIFICATE_ISSUE, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: doses.map((d) => d.recordId),
      details: { doses: doses.length, form: options.form, kid: jwk.kid },
    });
    return { jws, doses: doses.length };
  });
}
