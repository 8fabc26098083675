import { verifyPayload } from '../../shared/crypto.ts';
import { inTransaction } from '../../shared/db.ts';
import { AppError, conflict } from '../../shared/errors.ts';
import type { Member } from '../../shared/member-http.ts';
import { attestationSchema, ISSUER_ID, Typ } from '../../shared/protocol.ts';
import { GatewayActions } from '../audit/actions.ts';
import { logMemberAccess } from '../audit/service.ts';
import type { GatewayContext } from '../context.ts';
import { findCorrespondence, insertCorrespondence } from './model.ts';
import type { CorrespondenceInput } from './schemas.ts';

const refused = (rule: string) => new AppError(400, 'invalid-attestation', 'Attestation refused', { field: 'attestation', rule });

/**
 * Records (linkId, municipality, code) as the issuer sent it, after checking that the issuer's
 * own attestation names the same municipality and code (what the answering municipality will
 * check too) and that the municipality is a federation member. Idempotent: the same triple again
 * changes nothing; a different code for a known link, or a code taken by another link, is a 409.
 */
export async function registerCorrespondence(ctx: GatewayContext, issuer: Member, input: CorrespondenceInput): Promise<{ created: boolean }> {
  await ctx.currentDirectory();
  const member = await ctx.directory.entry(input.municipality).catch(() => null);
  if (!member || member.kind !== 'municipality') {
    throw new AppError(400, 'unknown-member', 'Unknown municipality', { field: 'municipality', rule: 'must be a municipality of the federation directory' });
  }
  const { key } = await ctx.directory.signingKey(ISSUER_ID);
  let claims: unknown;
  try {
    claims = await verifyPayload(input.attestation, key, Typ.ATTESTATION);
  } catch {
    throw refused('must be signed by the issuer');
  }
  const attestation = attestationSchema.safeParse(claims);
  if (!attestation.success) throw refused('must carry the attestation claims');
  if (attestation.data.municipality !== input.municipality || attestation.data.code !== input.code) {
    throw refused('must name the same municipality and code');
  }

  const outcome = await inTransaction(ctx.sequelize, async (t): Promise<'created' | 'unchanged' | 'code_taken' | 'link_has_other_code'> => {
    const byCode = await findCorrespondence(ctx.models.Correspondence, { municipality: input.municipality, code: input.code }, t);
    const byLink = await findCorrespondence(ctx.models.Correspondence, { municipality: input.municipality, linkId: input.linkId }, t);
    const entry = { action: GatewayActions.CORRESPONDENCE_REGISTER, actingMunicipality: input.municipality, subject: input.code };
    if (byCode && byCode.linkId === input.linkId) {
      await logMemberAccess(ctx.models.AccessLog, t, issuer, [{ ...entry, outcome: 'allowed', details: { created: false } }]);
      return 'unchanged';
    }
    if (byCode || byLink) {
      // The refusal is logged and committed; the table is left as it was.
      const reason = byCode ? 'code_taken' : 'link_has_other_code';
      await logMemberAccess(ctx.models.AccessLog, t, issuer, [{ ...entry, outcome: 'denied', reason }]);
      return reason;
    }
    await insertCorrespondence(ctx.models.Correspondence, { ...input }, t);
    await logMemberAccess(ctx.models.AccessLog, t, issuer, [{ ...entry, outcome: 'allowed', details: { created: true } }]);
    return 'created';
  });
  if (outcome === 'code_taken') throw conflict('correspondence-conflict', 'Code already recorded for another link', { field: 'code', rule: 'must not belong to another link' });
  if (outcome === 'link_has_other_code') {
    throw conflict('correspondence-conflict', 'Link already has another code here', { field: 'linkId', rule: 'must keep the code already recorded for this municipality' });
  }
  return { created: outcome === 'created' };
}
