/**
 * Move-out at A and move-in at B (flows 2 and 3). A resident is never deleted at A: the status
 * changes and A signs a move-out certificate (転出証明書情報) without any My Number. B verifies it
 * against A's CA-verified key, creates the resident, queues the code registration and records consent.
 */
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { AppError, badRequest, conflict } from '../../../shared/platform/errors.ts';
import { peekJwt, sha256Hex } from '../../../shared/crypto.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { signMessage, verifyMessage } from '../../../shared/federation/messages.ts';
import { MOVE_OUT_CERTIFICATE_SECONDS, Typ, moveOutClaimsSchema, type MoveOutClaims } from '../../../shared/federation/protocol.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import { Actions } from '../access-log/actions.ts';
import { logStaffAccess } from '../access-log/service.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { recordConsent } from '../consents/service.ts';
import { createResident, findResidentsByMyNumber, setResidentStatus, updateResident } from '../residents/service.ts';
import { linkMatchesCertificate, signMoveLink } from './capability.ts';
import type { FederationLink } from '../federation/link.ts';
import type { MoveInInput, MoveOutInput } from './schemas.ts';
import { findMoveInByCertificate, insertMoveIn } from './model.ts';

interface ResidentForMove {
  id: string;
  addresseeNumber: string;
  name: string;
  kana: string;
  birthDate: string;
  sex: string;
  address: string;
  status: string;
  /** When the current residence began; a certified move-in then contributes its link to the chain. */
  movedInAt?: string | null;
}

export async function moveOut(
  ctx: MunicipalityContext, fed: FederationLink, t: Transaction, resident: ResidentForMove, input: MoveOutInput, actor: Actor,
): Promise<{ certificate: string; claims: MoveOutClaims }> {
  if (resident.status !== 'resident') {
    throw conflict('resident-not-active', 'Only a current resident can move out', { field: 'addresseeNumber', rule: 'resident must have status resident' });
  }
  if (input.destination === ctx.config.MUNICIPALITY_CODE) throw badRequest('destination', 'must be another municipality');
  if (input.moveOutDate < resident.birthDate) throw badRequest('moveOutDate', 'must not be before the birth date');
  const jti = randomUUID();
  const moveLink = await signMoveLink(ctx, fed, t, resident, { jti, destination: input.destination, moveOutDate: input.moveOutDate });
  const claims = {
    aud: input.destination,
    jti,
    resident: {
      name: resident.name, kana: resident.kana, birthDate: resident.birthDate,
      sex: resident.sex as MoveOutClaims['resident']['sex'], previousAddress: resident.address,
    },
    moveOutDate: input.moveOutDate,
    destinationAddress: input.destinationAddress,
    moveLink,
  };
  const certificate = await signMessage(claims, fed.signer, Typ.MOVE_OUT, MOVE_OUT_CERTIFICATE_SECONDS);
  await setResidentStatus(ctx, t, resident.id, 'moved-out', {
    movedOutAt: new Date().toISOString(), moveOutDestination: input.destination,
  }, actor);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.MOVE_OUT, subject: resident.addresseeNumber, outcome: 'allowed',
    details: { destination: input.destination, moveOutDate: input.moveOutDate, certificateJti: claims.jti },
  });
  return { certificate, claims: moveOutClaimsSchema.parse({ ...claims, iss: ctx.config.MUNICIPALITY_CODE, iat: 0, exp: 0 }) };
}

const refused = (rule: string, status = 422) =>
  new AppError(status, 'move-out-certificate-refused', 'Move-out certificate refused', { field: 'certificate', rule });

/**
 * Verifies a move-out certificate addressed to us with its issuer's CA-verified signing key. Every
 * refusal is a problem on the field `certificate` (never a 401: the clerk's session is fine).
 */
export async function verifyMoveOutCertificate(ctx: MunicipalityContext, fed: FederationLink, certificate: string): Promise<MoveOutClaims> {
  const self = ctx.config.MUNICIPALITY_CODE;
  let peeked: ReturnType<typeof peekJwt>;
  try {
    peeked = peekJwt(certificate);
  } catch {
    throw badRequest('certificate', 'must be a compact JWS move-out certificate');
  }
  const issuer = peeked.claims.iss;
  if (!isValidMunicipalityCode(issuer)) throw badRequest('certificate', 'issuer must be a municipality code');
  if (issuer === self) throw refused('must be issued by the municipality the resident left, not by this one');
  const audience = peeked.claims.aud;
  if (audience !== self) throw refused('must be addressed to this municipality');
  let key;
  try {
    key = (await fed.peers.signingKey(issuer)).key;
  } catch (err) {
    // Only an unknown issuer is the certificate's fault; a directory we cannot fetch is a 503.
    if (!(err instanceof AppError) || err.code !== 'unknown-member') throw err;
    throw new AppError(422, 'unknown-municipality', 'The certificate names a municipality outside the federation', { field: 'certificate', rule: 'issuer must be a federation member' });
  }
  let claims: MoveOutClaims;
  try {
    claims = await verifyMessage(certificate, moveOutClaimsSchema, {
      key, issuer, audience: self, typ: Typ.MOVE_OUT, maxAgeSeconds: MOVE_OUT_CERTIFICATE_SECONDS,
    });
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    if (err.code === 'invalid-claims') throw refused(`${String(err.extra.field ?? 'claims')} ${String(err.extra.rule ?? 'is malformed')}`, 400);
    throw refused(String(err.extra.rule ?? 'must be signed by the issuing municipality'));
  }
  // The link is kept for later queries (move-in capability); it must be the issuer's own, for this move.
  if (claims.moveLink && !(await linkMatchesCertificate(fed.peers, claims.moveLink, claims, self))) {
    throw refused('moveLink must be signed by the issuer for this move and person');
  }
  return claims;
}

/**
 * A move-in at the counter from a certificate: verify, then create the resident (and consent) in
 * one transaction. A refused certificate is logged too (who tried, why, which certificate by
 * hash), in its own transaction after the refused one has rolled back.
 */
export async function acceptMoveIn(ctx: MunicipalityContext, fed: FederationLink, input: MoveInInput, actor: Actor) {
  try {
    const claims = await verifyMoveOutCertificate(ctx, fed, input.certificate);
    return await inTransaction(ctx.sequelize, (t) => moveIn(ctx, fed, t, claims, input, actor));
  } catch (err) {
    if (err instanceof AppError && err.status < 500) {
      let from: unknown;
      try { from = peekJwt(input.certificate).claims.iss; } catch { from = undefined; }
      await inTransaction(ctx.sequelize, (t) => logStaffAccess(ctx, t, actor, {
        action: Actions.MOVE_IN, outcome: 'denied', reason: err.code,
        details: {
          ...(isValidMunicipalityCode(from) ? { from } : {}), field: err.extra.field ?? null, rule: err.extra.rule ?? null,
          certificateSha256: sha256Hex(input.certificate),
        },
      }));
    }
    throw err;
  }
}

export async function moveIn(
  ctx: MunicipalityContext, fed: FederationLink, t: Transaction, claims: MoveOutClaims, input: MoveInInput, actor: Actor,
) {
  const used = await findMoveInByCertificate(ctx.models.MoveIn, claims.jti, t);
  if (used) throw conflict('certificate-used', 'This move-out certificate was already used for a move-in', { field: 'certificate', rule: 'must be used once' });
  const now = new Date().toISOString();
  const resident = await returningResident(ctx, t, claims, input, now, actor) ?? await createResident(ctx, t, {
    name: claims.resident.name,
    kana: claims.resident.kana,
    birthDate: claims.resident.birthDate,
    sex: claims.resident.sex,
    address: input.address,
    myNumber: input.myNumber,
    previousMunicipality: claims.iss,
    movedInAt: now,
  }, actor);
  await insertMoveIn(ctx.models.MoveIn, {
    id: randomUUID(), residentId: resident.id, fromMunicipality: claims.iss, certificateJti: claims.jti,
    moveOutDate: claims.moveOutDate, movedInAt: now, recordedBy: actor.staffId, moveLink: claims.moveLink ?? null,
  }, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.MOVE_IN, subject: resident.addresseeNumber, outcome: 'allowed',
    details: { from: claims.iss, moveOutDate: claims.moveOutDate, certificateJti: claims.jti },
  });
  const consent = input.consent
    ? await recordConsent(ctx, t, { id: resident.id, addresseeNumber: resident.addresseeNumber, status: 'resident' }, { ...input.consent, sources: [claims.iss] }, actor)
    : null;
  return { resident, consent, from: claims.iss };
}

/**
 * A resident who once lived here and moved away comes back as the same resident (same addressee
 * number, same code, their records with them), not as a second row sharing one code: the earlier
 * move-out stays readable in the resident's history.
 */
async function returningResident(ctx: MunicipalityContext, t: Transaction, claims: MoveOutClaims, input: MoveInInput, now: string, actor: Actor) {
  const earlier = (await findResidentsByMyNumber(ctx, input.myNumber, t)).filter((r) => r.status === 'moved-out').at(-1);
  if (!earlier) return null;
  const view = await setResidentStatus(ctx, t, earlier.id, 'resident', {
    movedInAt: now, previousMunicipality: claims.iss, reason: `moved back in from ${claims.iss}`,
  }, actor);
  const changes = {
    ...(view.address !== input.address ? { address: input.address } : {}),
    ...(view.name !== claims.resident.name ? { name: claims.resident.name } : {}),
    ...(view.kana !== claims.resident.kana ? { kana: claims.resident.kana } : {}),
  };
  const current = Object.keys(changes).length > 0
    ? await updateResident(ctx, t, view.addresseeNumber, { ...changes, reason: `move-in from ${claims.iss}` }, actor)
    : view;
  return { ...current, id: earlier.id };
}
