/**
 * Correction propagation, the recipient's side (B). A notice the gateway relays is A's own signed
 * message: B verifies A's signature with A's key from its own CA-verified directory, opens the
 * record sealed for it, checks that record is bound to the notice, and stores the new version of
 * its imported copy superseding the old one (importRecords), with provenance. One source record
 * version is applied once, however often it is delivered. A clerk sees what changed.
 */
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { appendAccess } from '../../../shared/access-log/chain.ts';
import { adoptRequestId } from '../../../shared/platform/context.ts';
import { peekJwt, sha256Hex } from '../../../shared/crypto.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { AppError, notFound } from '../../../shared/platform/errors.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import { openMessage, verifyMessage } from '../../../shared/federation/messages.ts';
import {
  CORRECTION_NOTICE_MAX_AGE_SECONDS, GATEWAY_ID, Typ, correctionClaimsSchema, correctionRecordClaimsSchema,
  type CorrectionClaims,
} from '../../../shared/federation/protocol.ts';
import { Actions } from '../access-log/actions.ts';
import { logStaffAccess } from '../access-log/service.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { findResidentWhere, type ResidentRecord } from '../residents/model.ts';
import { fromImmunization, type ImportedImmunization } from '../vaccinations/fhir.ts';
import { currentCopiesOf, findCurrentVersion, type RecordVersion } from '../vaccinations/model.ts';
import { importRecords } from '../vaccinations/service.ts';
import { discloseImmunization } from '../answering/disclosure-policy.ts';
import type { FederationLink } from '../federation/link.ts';
import { findReceivedNotice, insertReceivedNotice, noticesOf, type CopyFields, type NoticeOutcome, type ReceivedNotice } from './model.ts';

export interface ReceiveResult {
  /** `duplicate`: this source version was applied before; nothing changed now. */
  status: NoticeOutcome | 'duplicate';
  /** Local record ids of the copies concerned. */
  recordIds: string[];
}

const COMPARED = ['occurrenceDate', 'vaccineCode', 'lotNumber', 'doseNumber', 'place', 'status'] as const;

const fieldsOf = (v: RecordVersion): CopyFields => ({
  recordId: v.recordId, version: v.version, occurrenceDate: v.occurrenceDate, vaccineCode: v.vaccineCode, lotNumber: v.lotNumber,
  doseNumber: v.doseNumber, place: v.place, status: v.status, sourceVersion: v.sourceVersion,
});

const refused = (status: number, code: string, title: string, field: string, rule: string) => new AppError(status, code, title, { field, rule });

/** Verifies the notice and the record inside it; nothing is read from the database yet. */
async function verifyNotice(ctx: MunicipalityContext, fed: FederationLink, peer: string, noticeJws: string): Promise<{ claims: CorrectionClaims; immunization: ImportedImmunization }> {
  const self = ctx.config.MUNICIPALITY_CODE;
  if (peer !== GATEWAY_ID) throw refused(403, 'forbidden', 'Only the gateway relays correction notices', 'client certificate', 'must be the gateway');
  let source: unknown;
  try {
    source = peekJwt(noticeJws).claims.iss;
  } catch {
    throw refused(400, 'invalid-token', 'Notice is not a readable JWS', 'notice', 'must be a compact JWS');
  }
  if (typeof source !== 'string' || !isValidMunicipalityCode(source) || source === self) {
    throw refused(400, 'invalid-claims', 'Notice issuer malformed', 'notice.iss', 'must be another municipality of the federation');
  }
  // A's own signature, with A's key from our verified directory: the gateway cannot forge a correction.
  const key = (await fed.peers.signingKey(source)).key;
  const verify = { key, issuer: source, audience: self, maxAgeSeconds: CORRECTION_NOTICE_MAX_AGE_SECONDS };
  const claims = await verifyMessage(noticeJws, correctionClaimsSchema, { ...verify, typ: Typ.CORRECTION });
  adoptRequestId(claims.rid);
  const record = await openMessage(claims.record, fed.decryptionKey, correctionRecordClaimsSchema, { ...verify, typ: Typ.CORRECTION_RECORD });
  if (record.noticeJti !== claims.jti || record.rid !== claims.rid || record.sourceRecordId !== claims.sourceRecordId || record.sourceVersion !== claims.sourceVersion) {
    throw refused(400, 'invalid-claims', 'Record not bound to this notice', 'record', 'must name the notice jti, request id, record id and version');
  }
  // The same table as for a release: our copy never holds more than the purpose allows, whatever came.
  const immunization = fromImmunization(discloseImmunization(record.resource, claims.purpose));
  if (immunization.sourceRecordId !== claims.sourceRecordId || immunization.sourceVersion !== claims.sourceVersion) {
    throw refused(400, 'invalid-claims', 'Immunization does not match the notice', 'record.resource', 'id and meta.versionId must equal the notice record id and version');
  }
  if ((claims.change === 'voided') !== (immunization.status === 'entered-in-error')) {
    throw refused(400, 'invalid-claims', 'Change and status disagree', 'change', 'voided must carry status entered-in-error, corrected must not');
  }
  return { claims, immunization };
}

async function logReceipt(ctx: MunicipalityContext, t: Transaction, source: string | null, entry: {
  subject: string | null; outcome: 'allowed' | 'denied'; reason?: string | null; recordIds?: string[]; purpose?: string | null; details: Record<string, unknown>; requestHash: string;
}): Promise<void> {
  await appendAccess(ctx.models.AccessLog, t, {
    actorType: 'member', actorId: source ?? GATEWAY_ID, actorRole: 'source', actingMunicipality: source, action: Actions.CORRECTION_RECEIVE,
    subject: entry.subject, purpose: entry.purpose ?? null, outcome: entry.outcome, reason: entry.reason ?? null, recordIds: entry.recordIds ?? [],
    requestHash: entry.requestHash, details: { via: GATEWAY_ID, ...entry.details },
  });
}

/**
 * Handles one relayed notice (`peer` is the verified client certificate's CN). Applies it to every
 * copy of the source record held here (one resident in practice), logs it, and answers with what
 * happened. Refusals are logged too, then returned as problems (the gateway stops retrying a 4xx).
 */
export async function receiveCorrectionNotice(ctx: MunicipalityContext, fed: FederationLink, peer: string, noticeJws: string): Promise<ReceiveResult> {
  const requestHash = sha256Hex(noticeJws);
  let verified: Awaited<ReturnType<typeof verifyNotice>>;
  try {
    verified = await verifyNotice(ctx, fed, peer, noticeJws);
  } catch (err) {
    const code = err instanceof AppError ? err.code : 'invalid-notice';
    await inTransaction(ctx.sequelize, (t) => logReceipt(ctx, t, null, { subject: null, outcome: 'denied', reason: code, details: { refusedAt: 'notice' }, requestHash }));
    ctx.logger.warn({ peer, code }, 'correction notice refused');
    throw err instanceof AppError ? err : refused(400, 'invalid-notice', 'Correction notice refused', 'notice', 'must be a valid correction notice');
  }
  const { claims, immunization } = verified;
  const noticeDetails = { sourceRecordId: claims.sourceRecordId, sourceVersion: claims.sourceVersion, change: claims.change };

  const result = await inTransaction(ctx.sequelize, async (t): Promise<ReceiveResult | null> => {
    const copies = await currentCopiesOf(ctx.models.VaccinationRecord, claims.iss, claims.sourceRecordId, t);
    if (copies.length === 0) {
      await logReceipt(ctx, t, claims.iss, { subject: null, outcome: 'denied', reason: 'no_imported_copy', purpose: claims.purpose, details: noticeDetails, requestHash });
      return null;
    }
    const out: ReceiveResult = { status: 'duplicate', recordIds: [] };
    for (const copy of copies) {
      out.recordIds.push(copy.recordId);
      const key = { residentId: copy.residentId, source: claims.iss, sourceRecordId: claims.sourceRecordId, sourceVersion: claims.sourceVersion, purpose: claims.purpose };
      if (await findReceivedNotice(ctx.models.CorrectionNotice, key, t)) continue;
      const resident = await findResidentWhere(ctx.models.Resident, { id: copy.residentId }, t);
      const before = await findCurrentVersion(ctx.models.VaccinationRecord, copy.recordId, t);
      const imported = await importRecords(ctx, t, copy.residentId, {
        sourceMunicipality: claims.iss, purpose: claims.purpose, importRequestId: claims.rid, retrievedAt: new Date().toISOString(),
      }, [immunization]);
      const after = (await findCurrentVersion(ctx.models.VaccinationRecord, copy.recordId, t))!;
      const outcome: NoticeOutcome = imported.updated > 0 ? 'applied' : imported.unchanged > 0 ? 'unchanged' : 'stale';
      await insertReceivedNotice(ctx.models.CorrectionNotice, {
        id: randomUUID(), ...key, localRecordId: copy.recordId, change: claims.change, requestId: claims.rid,
        noticeJti: claims.jti, outcome, before: before && outcome === 'applied' ? fieldsOf(before) : null, after: fieldsOf(after),
        receivedAt: new Date().toISOString(),
      }, t);
      await logReceipt(ctx, t, claims.iss, {
        subject: resident?.addresseeNumber ?? null, outcome: 'allowed', purpose: claims.purpose, recordIds: [copy.recordId],
        details: { ...noticeDetails, source: claims.iss, outcome, localVersion: after.version }, requestHash,
      });
      out.status = outcome;
    }
    return out;
  });
  if (!result) throw notFound('Imported copy of the corrected record');
  if (result.status === 'duplicate') ctx.logger.info({ source: claims.iss, ...noticeDetails }, 'correction notice already applied');
  return result;
}

/* ---------- what a clerk sees ---------- */

export interface NoticeView {
  id: string;
  receivedAt: string;
  source: string;
  sourceRecordId: string;
  sourceVersion: number;
  change: ReceivedNotice['change'];
  purpose: string;
  outcome: NoticeOutcome;
  /** The local imported copy. */
  recordId: string;
  /** Fields that differ between the copy before and after (empty when it was already current). */
  changes: { field: string; before: unknown; after: unknown }[];
  before: CopyFields | null;
  after: CopyFields;
}

export function toNoticeView(n: ReceivedNotice): NoticeView {
  const changes = n.before
    ? COMPARED.filter((f) => n.before![f] !== n.after[f]).map((f) => ({ field: f, before: n.before![f], after: n.after[f] }))
    : [];
  return {
    id: n.id, receivedAt: n.receivedAt, source: n.source, sourceRecordId: n.sourceRecordId, sourceVersion: n.sourceVersion,
    change: n.change, purpose: n.purpose, outcome: n.outcome, recordId: n.localRecordId, changes, before: n.before, after: n.after,
  };
}

/** Correction notices received for one resident, oldest first; the reading is logged (it shows record fields). */
export async function readCorrectionNotices(ctx: MunicipalityContext, t: Transaction, resident: ResidentRecord, actor: Actor): Promise<NoticeView[]> {
  const notices = await noticesOf(ctx.models.CorrectionNotice, resident.id, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.CORRECTION_READ, subject: resident.addresseeNumber, outcome: 'allowed', recordIds: [...new Set(notices.map((n) => n.localRecordId))],
  });
  return notices.map(toNoticeView);
}

