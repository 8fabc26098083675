import type { KeyObject } from 'node:crypto';
import { UniqueConstraintError } from 'sequelize';
import { verifyPayload } from '../../shared/crypto.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { AppError, conflict } from '../../shared/platform/errors.ts';
import type { Member } from '../../shared/federation/member-http.ts';
import { attestationSchema, ISSUER_ID, Typ } from '../../shared/federation/protocol.ts';
import type { SignedHead } from '../../shared/federation/messages.ts';
import { keepHeads } from '../../shared/access-log/heads.ts';
import { GatewayActions } from '../access-log/actions.ts';
import { logMemberAccess, type MemberAccess } from '../../shared/access-log/member-access.ts';
import type { GatewayContext } from '../context.ts';
import { findByCodes, findByLinks, insertCorrespondences, moveLink, replaceAttestation, type Correspondence } from './model.ts';
import type { CorrespondenceInput, CorrespondenceOutcome, RekeyInput, RekeyResult } from './schemas.ts';

/** Names a field of item `index` in problems: `attestation` for the single route, `registrations.3.attestation` for a batch. */
export type FieldOf = (index: number, field: keyof CorrespondenceInput) => string;

const refused = (field: string, rule: string) => new AppError(400, 'invalid-attestation', 'Attestation refused', { field, rule });

/**
 * Records (linkId, municipality, code) as the issuer sent it, after checking that the issuer's
 * own attestation names the same municipality and code (what the answering municipality will
 * check too) and that the municipality is a federation member. Idempotent: the same triple again
 * changes nothing; a different code for a known link, or a code taken by another link, is a 409.
 */
export async function registerCorrespondence(ctx: GatewayContext, issuer: Member, input: CorrespondenceInput): Promise<{ created: boolean }> {
  const [outcome] = await registerCorrespondences(ctx, issuer, [input], (_i, field) => field);
  if (outcome === 'code_taken') throw conflict('correspondence-conflict', 'Code already recorded for another link', { field: 'code', rule: 'must not belong to another link' });
  if (outcome === 'link_has_other_code') {
    throw conflict('correspondence-conflict', 'Link already has another code here', { field: 'linkId', rule: 'must keep the code already recorded for this municipality' });
  }
  return { created: outcome === 'created' };
}

/**
 * A batch of registrations in one transaction, with one outcome per item in order. What cannot
 * come from an honest issuer (a municipality outside the directory, an attestation that does not
 * verify or names another municipality or code) refuses the whole batch with a problem naming the
 * item, and records nothing. Conflicts are per item: refused and logged alone, the others recorded.
 */
export async function registerCorrespondences(ctx: GatewayContext, issuer: Member, inputs: CorrespondenceInput[], fieldOf: FieldOf, issuerHead?: SignedHead): Promise<CorrespondenceOutcome[]> {
  await ctx.currentDirectory();
  const municipalities = new Map<string, number>();
  inputs.forEach((input, i) => { if (!municipalities.has(input.municipality)) municipalities.set(input.municipality, i); });
  for (const [municipality, i] of municipalities) {
    const member = await ctx.directory.entry(municipality).catch(() => null);
    if (!member || member.kind !== 'municipality') {
      throw new AppError(400, 'unknown-member', 'Unknown municipality', { field: fieldOf(i, 'municipality'), rule: 'must be a municipality of the federation directory' });
    }
  }
  const { key } = await ctx.directory.signingKey(ISSUER_ID);
  for (const [i, input] of inputs.entries()) {
    const rule = await attestationRefusal(input, key);
    if (rule) throw refused(fieldOf(i, 'attestation'), rule);
  }

  try {
    return await recordBatch(ctx, issuer, inputs, issuerHead);
  } catch (err) {
    // PostgreSQL only (SQLite runs one writer at a time): another batch inserted one of these rows
    // between our read and our insert. Once more, now that its rows are visible.
    if (!(err instanceof UniqueConstraintError)) throw err;
    return recordBatch(ctx, issuer, inputs, issuerHead);
  }
}

/** Why the issuer's attestation does not back this registration, or null when it does. */
async function attestationRefusal(input: CorrespondenceInput, key: KeyObject): Promise<string | null> {
  let claims: unknown;
  try {
    claims = await verifyPayload(input.attestation, key, Typ.ATTESTATION);
  } catch {
    return 'must be signed by the issuer';
  }
  const attestation = attestationSchema.safeParse(claims);
  if (!attestation.success) return 'must carry the attestation claims';
  if (attestation.data.municipality !== input.municipality || attestation.data.code !== input.code) return 'must name the same municipality and code';
  return null;
}

/** Reads the batch's rows (one query per municipality by code, one by link), decides each item in order, writes once and logs once. */
function recordBatch(ctx: GatewayContext, issuer: Member, inputs: CorrespondenceInput[], issuerHead?: SignedHead): Promise<CorrespondenceOutcome[]> {
  const M = ctx.models.Correspondence;
  return inTransaction(ctx.sequelize, async (t) => {
    const byCode = new Map<string, Correspondence>();
    const codesOf = new Map<string, string[]>();
    for (const input of inputs) {
      if (!codesOf.has(input.municipality)) codesOf.set(input.municipality, []);
      codesOf.get(input.municipality)!.push(input.code);
    }
    for (const [municipality, codes] of codesOf) {
      for (const [code, row] of await findByCodes(M, municipality, codes, t)) byCode.set(`${municipality}|${code}`, row);
    }
    // Keyed `${linkId}|${municipality}`.
    const byLink = await findByLinks(M, inputs.map((input) => input.linkId), t);

    const created: Correspondence[] = [];
    const entries: MemberAccess[] = [];
    const outcomes = inputs.map((input): CorrespondenceOutcome => {
      const entry = { action: GatewayActions.CORRESPONDENCE_REGISTER, actingMunicipality: input.municipality, subject: input.code };
      const sameCode = byCode.get(`${input.municipality}|${input.code}`);
      const sameLink = byLink.get(`${input.linkId}|${input.municipality}`);
      if (sameCode && sameCode.linkId === input.linkId) {
        entries.push({ ...entry, outcome: 'allowed', details: { created: false } });
        return 'unchanged';
      }
      if (sameCode || sameLink) {
        // The refusal is logged and committed; the table is left as it was.
        const reason = sameCode ? 'code_taken' : 'link_has_other_code';
        entries.push({ ...entry, outcome: 'denied', reason });
        return reason;
      }
      const row = { linkId: input.linkId, municipality: input.municipality, code: input.code, attestation: input.attestation };
      // A repeat later in the same batch finds this one.
      byCode.set(`${input.municipality}|${input.code}`, row);
      byLink.set(`${input.linkId}|${input.municipality}`, row);
      created.push(row);
      entries.push({ ...entry, outcome: 'allowed', details: { created: true } });
      return 'created';
    });
    await insertCorrespondences(M, created, t);
    await logMemberAccess(ctx.models.AccessLog, t, issuer, entries);
    if (issuerHead) await keepHeads(ctx.models.WitnessedHead, t, [{ member: issuer.id, head: issuerHead.head, exchange: 'registration', message: issuerHead.message }]);
    return outcomes;
  });
}

/* ---------- blind derivation and the migration of old codes (docs/DESIGN.md §4.2) ---------- */

/**
 * k_G·P for each point of a municipality's batch (already checked on the curve), in order. Only a
 * municipality may ask (the route's rule): the issuer, which holds k_I, cannot use the gateway to
 * evaluate My Numbers of its own choosing. One access-log entry per batch, with the count.
 */
export async function evaluateForMunicipality(ctx: GatewayContext, member: Member, blinded: string[], sender: SignedHead): Promise<string[]> {
  const evaluated = blinded.map((point) => ctx.oprf.evaluate(point));
  await inTransaction(ctx.sequelize, async (t) => {
    await logMemberAccess(ctx.models.AccessLog, t, member, [{
      action: GatewayActions.CODE_EVALUATE, actingMunicipality: member.id, outcome: 'allowed', details: { points: blinded.length },
    }]);
    await keepHeads(ctx.models.WitnessedHead, t, [{ member: member.id, head: sender.head, exchange: 'registration', message: sender.message }]);
  });
  return evaluated;
}

/**
 * The issuer's rekeys, in one transaction: for each (municipality, code), every row of its link (the
 * person's codes at every municipality) moves to the new linkId, codes unchanged. Already there →
 * `unchanged`; no such code → `unknown_code`; a municipality with a row on both links under two
 * different codes → `link_has_other_code` (nothing moves). Each result lists every code now on
 * the new link, which the issuer attests anew.
 */
export async function rekeyCorrespondences(ctx: GatewayContext, issuer: Member, inputs: RekeyInput[], issuerHead?: SignedHead): Promise<RekeyResult[]> {
  const M = ctx.models.Correspondence;
  return inTransaction(ctx.sequelize, async (t) => {
    const results: RekeyResult[] = [];
    const entries: MemberAccess[] = [];
    for (const input of inputs) {
      const entry = { action: GatewayActions.CORRESPONDENCE_REKEY, actingMunicipality: input.municipality, subject: input.code };
      const own = (await findByCodes(M, input.municipality, [input.code], t)).get(input.code);
      if (!own) {
        results.push({ code: input.code, status: 'refused', reason: 'unknown_code' });
        entries.push({ ...entry, outcome: 'denied', reason: 'unknown_code' });
        continue;
      }
      const rows = await findByLinks(M, [own.linkId, input.linkId], t);
      const onOld = [...rows.values()].filter((r) => r.linkId === own.linkId);
      const clash = own.linkId !== input.linkId && onOld.some((r) => {
        const there = rows.get(`${input.linkId}|${r.municipality}`);
        return there !== undefined && there.code !== r.code;
      });
      if (clash) {
        results.push({ code: input.code, status: 'refused', reason: 'link_has_other_code' });
        entries.push({ ...entry, outcome: 'denied', reason: 'link_has_other_code' });
        continue;
      }
      const moved = own.linkId === input.linkId ? 0 : await moveLink(M, own.linkId, input.linkId, t);
      const codes = new Map<string, { municipality: string; code: string }>();
      for (const r of rows.values()) codes.set(`${r.municipality}|${r.code}`, { municipality: r.municipality, code: r.code });
      results.push({ code: input.code, status: moved > 0 ? 'moved' : 'unchanged', codes: [...codes.values()] });
      entries.push({ ...entry, outcome: 'allowed', details: { rows: moved } });
    }
    await logMemberAccess(ctx.models.AccessLog, t, issuer, entries);
    if (issuerHead) await keepHeads(ctx.models.WitnessedHead, t, [{ member: issuer.id, head: issuerHead.head, exchange: 'registration', message: issuerHead.message }]);
    return results;
  });
}

/**
 * New attestations of rows already recorded (after a rekey): each must verify with the issuer's key
 * (else the whole batch is `400 invalid-attestation` naming `attestations.N`, nothing replaced);
 * each replaces the attestation of its (municipality, code), or is `unknown` when no row has them.
 */
export async function replaceAttestations(ctx: GatewayContext, issuer: Member, attestations: string[], issuerHead?: SignedHead): Promise<{ municipality: string; code: string; status: 'replaced' | 'unknown' }[]> {
  const { key } = await ctx.directory.signingKey(ISSUER_ID);
  const claims: { municipality: string; code: string }[] = [];
  for (const [i, jws] of attestations.entries()) {
    let payload: unknown;
    try {
      payload = await verifyPayload(jws, key, Typ.ATTESTATION);
    } catch {
      throw refused(`attestations.${i}`, 'must be signed by the issuer');
    }
    const parsed = attestationSchema.safeParse(payload);
    if (!parsed.success) throw refused(`attestations.${i}`, 'must carry the attestation claims');
    claims.push({ municipality: parsed.data.municipality, code: parsed.data.code });
  }
  return inTransaction(ctx.sequelize, async (t) => {
    const results = [];
    for (const [i, c] of claims.entries()) {
      const replaced = await replaceAttestation(ctx.models.Correspondence, { ...c, attestation: attestations[i]! }, t);
      results.push({ ...c, status: replaced ? 'replaced' as const : 'unknown' as const });
    }
    await logMemberAccess(ctx.models.AccessLog, t, issuer, results.map((r) => ({
      action: GatewayActions.CORRESPONDENCE_ATTEST, actingMunicipality: r.municipality, subject: r.code,
      ...(r.status === 'replaced' ? { outcome: 'allowed' as const } : { outcome: 'denied' as const, reason: 'unknown_code' }),
    })));
    if (issuerHead) await keepHeads(ctx.models.WitnessedHead, t, [{ member: issuer.id, head: issuerHead.head, exchange: 'registration', message: issuerHead.message }]);
    return results;
  });
}
