/**
 * The move-in capability (docs/DESIGN.md §4.6, docs/PROTOCOL.md §8.2): a query about a resident is allowed only when the resident
 * moved in at the asking municipality, only towards the municipality they came from or an earlier
 * one on their chain of moves, and only within MOVE_IN_QUERY_WINDOW_DAYS of the move-in.
 *
 * Each move-out signs a move link (`MoveLinkClaims`, no addresses) that nests the link the
 * resident brought when they moved in there, so a chain C→A→B is C's link to A inside A's link to
 * B. B checks the rule before signing; the source checks it again on its own: the direct case
 * against its own record (moved out to B, within the window), an earlier source against the chain
 * B seals for it, every link's signature verified with its issuer's CA-verified key.
 */
import type { Transaction } from 'sequelize';
import { CLOCK_SKEW_SECONDS, peekJwt, signPayload, verifyPayload } from '../../../shared/crypto.ts';
import { AppError } from '../../../shared/platform/errors.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import {
  MAX_MOVE_CHAIN, MOVE_OUT_CERTIFICATE_SECONDS, Typ, moveLinkClaimsSchema,
  type MoveLinkClaims, type MoveOutClaims, type SealedIdentity,
} from '../../../shared/federation/protocol.ts';
import type { MunicipalityContext } from '../context.ts';
import { findMoveInOf } from './model.ts';
import type { FederationLink, PeerKeys } from '../federation/link.ts';
import { identityMismatches } from '../residents/identity.ts';

const DAY_MS = 24 * 3600 * 1000;
const SKEW_MS = CLOCK_SKEW_SECONDS * 1000;

/** What B seals for the source as proof of the capability (`SealedIdentity['moveIn']`). */
export type MoveInProof = NonNullable<SealedIdentity['moveIn']>;

export type CapabilityVerdict = { ok: true; proof: MoveInProof } | { ok: false; reason: string };
export type SourceVerdict = { ok: true } | { ok: false; reason: string };

/** A chain that does not hold; `reason` is the stable word logged (`move_chain_invalid:<what>`). */
class ChainRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** Verifies one link with its issuer's CA-verified key. A directory we cannot reach is not the link's fault: that error passes. */
export async function verifyMoveLink(peers: PeerKeys, link: string): Promise<MoveLinkClaims> {
  let issuer: unknown;
  try {
    issuer = peekJwt(link).claims.iss;
  } catch {
    throw new ChainRefused('move_chain_invalid:format');
  }
  if (!isValidMunicipalityCode(issuer)) throw new ChainRefused('move_chain_invalid:issuer');
  let key;
  try {
    key = (await peers.signingKey(issuer)).key;
  } catch (err) {
    if (err instanceof AppError && err.code === 'unknown-member') throw new ChainRefused('move_chain_invalid:issuer');
    throw err;
  }
  let payload: unknown;
  try {
    payload = await verifyPayload(link, key, Typ.MOVE_LINK);
  } catch {
    throw new ChainRefused('move_chain_invalid:signature');
  }
  const parsed = moveLinkClaimsSchema.safeParse(payload);
  if (!parsed.success || parsed.data.iss !== issuer) throw new ChainRefused('move_chain_invalid:claims');
  return parsed.data;
}

/** At a move-in: the certificate's link must be its issuer's own, for this very move and person. */
export async function linkMatchesCertificate(peers: PeerKeys, link: string, certificate: MoveOutClaims, self: string): Promise<boolean> {
  try {
    const l = await verifyMoveLink(peers, link);
    return l.iss === certificate.iss && l.aud === self && l.jti === certificate.jti && l.moveOutDate === certificate.moveOutDate
      && identityMismatches(l.resident, certificate.resident).length === 0;
  } catch (err) {
    if (err instanceof ChainRefused) return false;
    throw err;
  }
}

/**
 * Verifies a whole chain, newest first: link 0 is addressed to `requester`, each next link to the
 * issuer of the one before, all name one person (kana, birth date, sex) and run back in time.
 * Returns the links; throws `ChainRefused` naming what broke.
 */
export async function verifyMoveChain(peers: PeerKeys, link: string, requester: string): Promise<MoveLinkClaims[]> {
  const links: MoveLinkClaims[] = [];
  let current: string | undefined = link;
  while (current !== undefined) {
    if (links.length >= MAX_MOVE_CHAIN) throw new ChainRefused('move_chain_invalid:length');
    const claims = await verifyMoveLink(peers, current);
    const newer = links.at(-1);
    if (claims.aud !== (newer?.iss ?? requester)) throw new ChainRefused('move_chain_invalid:linkage');
    if (newer && claims.iat > newer.iat + CLOCK_SKEW_SECONDS) throw new ChainRefused('move_chain_invalid:order');
    if (links[0] && identityMismatches(claims.resident, links[0].resident).length > 0) throw new ChainRefused('move_chain_invalid:identity');
    links.push(claims);
    current = claims.previous;
  }
  return links;
}

/** Links nested in a chain, counted without verifying (to decide whether one more fits). */
export function chainLength(link: string): number {
  let n = 0;
  let current: unknown = link;
  while (typeof current === 'string' && n <= MAX_MOVE_CHAIN) {
    n += 1;
    try {
      current = peekJwt(current).claims.previous;
    } catch {
      break;
    }
  }
  return n;
}

/**
 * The municipalities a chain of moves names, newest first (each link's issuer), read without
 * verifying: enough to know whom to ask for a resident's trail (docs/DESIGN.md §4.14), since each
 * of them answers only on the resident's own proof and checks it itself.
 */
export function chainIssuers(link: string): string[] {
  const issuers: string[] = [];
  let current: unknown = link;
  while (typeof current === 'string' && issuers.length < MAX_MOVE_CHAIN) {
    let claims: Record<string, unknown>;
    try {
      claims = peekJwt(current).claims;
    } catch {
      break;
    }
    if (isValidMunicipalityCode(claims.iss)) issuers.push(claims.iss);
    current = claims.previous;
  }
  return issuers;
}

/**
 * The link A signs at a move-out to `destination`. When the resident's current residence began
 * with a certified move-in, A nests the link that came with it, unless the chain would exceed
 * MAX_MOVE_CHAIN (a signed chain cannot be trimmed, so it starts afresh).
 */
export async function signMoveLink(
  ctx: MunicipalityContext, fed: FederationLink, t: Transaction,
  resident: { id: string; kana: string; birthDate: string; sex: string; movedInAt?: string | null },
  move: { jti: string; destination: string; moveOutDate: string },
): Promise<string> {
  const moveIn = resident.movedInAt
    ? await findMoveInOf(ctx.models.MoveIn, resident.id, resident.movedInAt, t)
    : null;
  const previous = moveIn?.moveLink && chainLength(moveIn.moveLink) < MAX_MOVE_CHAIN ? moveIn.moveLink : undefined;
  const claims: MoveLinkClaims = {
    iss: ctx.config.MUNICIPALITY_CODE, aud: move.destination, jti: move.jti, iat: Math.floor(Date.now() / 1000), moveOutDate: move.moveOutDate,
    resident: { kana: resident.kana, birthDate: resident.birthDate, sex: resident.sex as MoveLinkClaims['resident']['sex'] },
    ...(previous ? { previous } : {}),
  };
  return signPayload(claims, { key: fed.signer.key, kid: fed.signer.kid, typ: Typ.MOVE_LINK });
}

/**
 * B's check before it signs anything about `resident` for `source`. The current residence must
 * have begun with a move-in (a certified one, or one registered at the counter with the previous
 * municipality and date), within the window; the source must be where they came from or, for a
 * certified move-in, an issuer on the verified chain.
 */
export async function requesterCapability(
  ctx: MunicipalityContext, fed: FederationLink,
  resident: { id: string; movedInAt: string | null; previousMunicipality: string | null },
  source: string, now = new Date(),
): Promise<CapabilityVerdict> {
  if (!resident.movedInAt || !resident.previousMunicipality) return { ok: false, reason: 'no_move_in' };
  const movedInAt = Date.parse(resident.movedInAt);
  if (Number.isNaN(movedInAt)) return { ok: false, reason: 'no_move_in' };
  if (now.getTime() > movedInAt + ctx.config.MOVE_IN_QUERY_WINDOW_DAYS * DAY_MS) return { ok: false, reason: 'move_in_window_passed' };
  const proof: MoveInProof = { movedInAt: new Date(movedInAt).toISOString() };
  if (source === resident.previousMunicipality) return { ok: true, proof };

  const moveIn = await findMoveInOf(ctx.models.MoveIn, resident.id, resident.movedInAt);
  if (!moveIn?.moveLink) return { ok: false, reason: 'source_not_on_move_chain' };
  try {
    const chain = await verifyMoveChain(fed.peers, moveIn.moveLink, ctx.config.MUNICIPALITY_CODE);
    if (!chain.some((l) => l.iss === source)) return { ok: false, reason: 'source_not_on_move_chain' };
  } catch (err) {
    if (err instanceof ChainRefused) return { ok: false, reason: err.reason };
    throw err;
  }
  return { ok: true, proof: { ...proof, link: moveIn.moveLink } };
}

/**
 * The source's own check, before it releases anything to `requester`. Directly: its own record
 * says the resident moved out to the requester. Further back: the sealed chain verifies, contains
 * this municipality's own link, and that link agrees with its record. Either way the move-in date
 * B claims must fall within the validity of the certificate it used, and now within the window
 * after it (without a claim, the window runs from the certificate's issuance).
 */
export async function sourceCapability(
  ctx: MunicipalityContext, fed: FederationLink,
  resident: { status: string; movedOutAt: string | null; moveOutDestination: string | null; kana: string; birthDate: string; sex: string },
  requester: string, claimed: MoveInProof | undefined, now = new Date(),
): Promise<SourceVerdict> {
  const window = ctx.config.MOVE_IN_QUERY_WINDOW_DAYS * DAY_MS;
  const timely = (certifiedAt: number): SourceVerdict => {
    let start = certifiedAt;
    if (claimed) {
      const at = Date.parse(claimed.movedInAt);
      if (!(at >= certifiedAt - SKEW_MS && at <= certifiedAt + MOVE_OUT_CERTIFICATE_SECONDS * 1000 + SKEW_MS && at <= now.getTime() + SKEW_MS)) {
        return { ok: false, reason: 'move_in_date_implausible' };
      }
      start = at;
    }
    return now.getTime() > start + window ? { ok: false, reason: 'move_in_window_passed' } : { ok: true };
  };

  const movedOut = resident.status === 'moved-out' && resident.movedOutAt ? Date.parse(resident.movedOutAt) : NaN;
  if (resident.moveOutDestination === requester && !Number.isNaN(movedOut)) return timely(movedOut);
  if (!claimed?.link) return { ok: false, reason: 'not_moved_to_requester' };

  let chain: MoveLinkClaims[];
  try {
    chain = await verifyMoveChain(fed.peers, claimed.link, requester);
  } catch (err) {
    if (err instanceof ChainRefused) return { ok: false, reason: err.reason };
    throw err;
  }
  const own = chain.find((l) => l.iss === ctx.config.MUNICIPALITY_CODE);
  if (!own) return { ok: false, reason: 'source_not_on_move_chain' };
  // Our own signed link must describe this resident and the move our record holds.
  if (Number.isNaN(movedOut) || resident.moveOutDestination !== own.aud || identityMismatches(own.resident, resident).length > 0) {
    return { ok: false, reason: 'move_chain_not_ours' };
  }
  return timely(chain[0]!.iat * 1000);
}
