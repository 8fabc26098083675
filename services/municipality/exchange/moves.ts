/**
 * Move-out at A and move-in at B (flows 2 and 3). A resident is never deleted at A: the status
 * changes and A signs a move-out certificate (転出証明書情報) without any My Number. B verifies it
 * against A's CA-verified key, creates the resident, queues the code registration and records consent.
 */
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { AppError, badRequest, conflict } from '../../../shared/errors.ts';
import { peekJwt } from '../../../shared/crypto.ts';
import { signMessage, verifyMessage } from '../../../shared/messages.ts';
import { MOVE_OUT_CERTIFICATE_SECONDS, Typ, moveOutClaimsSchema, type MoveOutClaims } from '../../../shared/protocol.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import { Actions } from '../audit/actions.ts';
import { logStaffAccess } from '../audit/service.ts';
import type { Actor } from '../auth/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { recordConsent } from '../consents/service.ts';
import { createResident, setResidentStatus } from '../residents/service.ts';
import type { FederationLink } from './federation.ts';
import type { MoveInInput, MoveOutInput } from './schemas.ts';

interface ResidentForMove {
  id: string;
  addresseeNumber: string;
  name: string;
  kana: string;
  birthDate: string;
  sex: string;
  address: string;
  status: string;
}

export async function moveOut(
  ctx: MunicipalityContext, fed: FederationLink, t: Transaction, resident: ResidentForMove, input: MoveOutInput, actor: Actor,
): Promise<{ certificate: string; claims: MoveOutClaims }> {
  if (resident.status !== 'resident') {
    throw conflict('resident-not-active', 'Only a current resident can move out', { field: 'addresseeNumber', rule: 'resident must have status resident' });
  }
  if (input.destination === ctx.config.MUNICIPALITY_CODE) throw badRequest('destination', 'must be another municipality');
  if (input.moveOutDate < resident.birthDate) throw badRequest('moveOutDate', 'must not be before the birth date');
  const claims = {
    aud: input.destination,
    jti: randomUUID(),
    resident: {
      name: resident.name, kana: resident.kana, birthDate: resident.birthDate,
      sex: resident.sex as MoveOutClaims['resident']['sex'], previousAddress: resident.address,
    },
    moveOutDate: input.moveOutDate,
    destinationAddress: input.destinationAddress,
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

/** Verifies a move-out certificate addressed to us with its issuer's CA-verified signing key. */
export async function verifyMoveOutCertificate(ctx: MunicipalityContext, fed: FederationLink, certificate: string): Promise<MoveOutClaims> {
  let issuer: unknown;
  try {
    issuer = peekJwt(certificate).claims.iss;
  } catch {
    throw badRequest('certificate', 'must be a compact JWS move-out certificate');
  }
  if (!isValidMunicipalityCode(issuer)) throw badRequest('certificate', 'issuer must be a municipality code');
  let key;
  try {
    key = (await fed.peers.signingKey(issuer)).key;
  } catch {
    throw new AppError(422, 'unknown-municipality', 'The certificate names a municipality outside the federation', { field: 'certificate', rule: 'issuer must be a federation member' });
  }
  return verifyMessage(certificate, moveOutClaimsSchema, {
    key, issuer, audience: ctx.config.MUNICIPALITY_CODE, typ: Typ.MOVE_OUT, maxAgeSeconds: MOVE_OUT_CERTIFICATE_SECONDS,
  });
}

export async function moveIn(
  ctx: MunicipalityContext, fed: FederationLink, t: Transaction, claims: MoveOutClaims, input: MoveInInput, actor: Actor,
) {
  const used = await ctx.models.MoveIn.findOne({ where: { certificateJti: claims.jti }, transaction: t, raw: true });
  if (used) throw conflict('certificate-used', 'This move-out certificate was already used for a move-in', { field: 'certificate', rule: 'must be used once' });
  const now = new Date().toISOString();
  const resident = await createResident(ctx, t, {
    name: claims.resident.name,
    kana: claims.resident.kana,
    birthDate: claims.resident.birthDate,
    sex: claims.resident.sex,
    address: input.address,
    myNumber: input.myNumber,
    previousMunicipality: claims.iss,
    movedInAt: now,
  }, actor);
  await ctx.models.MoveIn.create({
    id: randomUUID(), residentId: resident.id, fromMunicipality: claims.iss, certificateJti: claims.jti,
    moveOutDate: claims.moveOutDate, movedInAt: now, recordedBy: actor.staffId,
  }, { transaction: t });
  await logStaffAccess(ctx, t, actor, {
    action: Actions.MOVE_IN, subject: resident.addresseeNumber, outcome: 'allowed',
    details: { from: claims.iss, moveOutDate: claims.moveOutDate, certificateJti: claims.jti },
  });
  const consent = input.consent
    ? await recordConsent(ctx, t, { id: resident.id, addresseeNumber: resident.addresseeNumber, status: 'resident' }, { ...input.consent, sources: [claims.iss] }, actor)
    : null;
  return { resident, consent, from: claims.iss };
}
