/**
 * Correction propagation, the source's side (A). When A corrects or voids a record that another
 * municipality imported, a notice to each such municipality is queued in the same transaction as
 * the correction (so no correction is committed without its notices), then sent through the
 * gateway: signed by A, the new version encrypted for the recipient, disclosed as for the purpose
 * of the original release. Who received which record is read from A's own access log: every
 * release is a QUERY_ANSWER entry naming the record versions it released.
 */
import { deliverToGateway, nextAttemptAt, type Delivery } from '../federation/deliver.ts';
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { appendAccess } from '../../../shared/access-log/chain.ts';
import { currentHead } from '../../../shared/access-log/heads.ts';
import { runEvery, type PeriodicTask } from '../../../shared/access-log/witness.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { sealMessage, signMessage } from '../../../shared/federation/messages.ts';
import { CORRECTION_NOTICE_MAX_AGE_SECONDS, GATEWAY_ID, PURPOSES, Typ, type Purpose } from '../../../shared/federation/protocol.ts';
import { Actions } from '../access-log/actions.ts';
import type { MunicipalityContext } from '../context.ts';
import { findResidentWhere, type ResidentRecord } from '../residents/model.ts';
import { allowedEntriesAbout } from '../access-log/model.ts';
import { toImmunization } from '../vaccinations/fhir.ts';
import { findVersions, type RecordVersion } from '../vaccinations/model.ts';
import { DISCLOSURE_POLICY, discloseImmunization } from '../answering/disclosure-policy.ts';
import type { FederationLink } from '../federation/link.ts';
import { dueOutboxItems, insertOutboxItems, updateOutboxItem, type CorrectionChange, type OutboxItem } from './model.ts';

/** The actor of the sender's log entries: the outbox worker, not a staff member. */
export const CORRECTION_ACTOR = 'system:corrections';
/** Where the gateway takes correction notices (mTLS). */
export const GATEWAY_CORRECTIONS_PATH = '/corrections';

interface Release {
  recipient: string;
  purpose: string;
  requestId: string;
}

/**
 * Every (municipality, purpose) under which any version of `recordId` was released, with the
 * request of the latest such release. Read from the access log by the resident's addressee
 * number (indexed). One notice per purpose: each copy is corrected with the fields its purpose
 * allowed, no more.
 */
export async function releasesOf(ctx: MunicipalityContext, t: Transaction, addresseeNumber: string, recordId: string): Promise<Release[]> {
  const rows = await allowedEntriesAbout(ctx.models.AccessLog, addresseeNumber, Actions.QUERY_ANSWER, t);
  const latest = new Map<string, Release>();
  for (const row of rows) {
    const ids = JSON.parse(row.recordIds) as string[];
    if (!row.actingMunicipality || !row.purpose || !ids.some((id) => id.split('@')[0] === recordId)) continue;
    latest.set(`${row.actingMunicipality}|${row.purpose}`, { recipient: row.actingMunicipality, purpose: row.purpose, requestId: row.requestId });
  }
  return [...latest.values()];
}

/**
 * Queues one correction notice per municipality that imported the record, in the transaction of
 * the correction or void (`version` is the new version). Returns the recipients.
 */
export async function enqueueCorrectionNotices(
  ctx: MunicipalityContext, t: Transaction, resident: Pick<ResidentRecord, 'id' | 'addresseeNumber'>, version: Pick<RecordVersion, 'recordId' | 'version'>, change: CorrectionChange,
): Promise<string[]> {
  const releases = (await releasesOf(ctx, t, resident.addresseeNumber, version.recordId)).filter((r) => r.recipient !== ctx.config.MUNICIPALITY_CODE);
  const now = new Date().toISOString();
  await insertOutboxItems(ctx.models.CorrectionOutbox, releases.map((r) => ({
    id: randomUUID(), residentId: resident.id, recordId: version.recordId, version: version.version, recipient: r.recipient,
    purpose: r.purpose, change, releaseRequestId: r.requestId, nextAttemptAt: now,
  })), t);
  return releases.map((r) => r.recipient);
}

/**
 * The record as the recipient may see it for `purpose`: the same mapping and the same minimal
 * disclosure table as a release, so a correction never discloses more than the release it corrects.
 */
function disclosedResource(version: RecordVersion, purpose: Purpose): { resource: Record<string, unknown>; elements: string[] } {
  return {
    resource: discloseImmunization(toImmunization(version) as unknown as Record<string, unknown>, purpose),
    elements: [...DISCLOSURE_POLICY[purpose]],
  };
}

/** Builds the signed notice for one outbox item: outer JWS for the gateway to read, record sealed for the recipient. */
export async function buildCorrectionNotice(ctx: MunicipalityContext, fed: FederationLink, item: OutboxItem, code: string): Promise<string> {
  const [version] = await findVersions(ctx.models.VaccinationRecord, { recordId: item.recordId, version: item.version });
  if (!version) throw new Error(`record version ${item.recordId}@${item.version} not found`);
  const purpose = (PURPOSES as readonly string[]).includes(item.purpose) ? item.purpose as Purpose : PURPOSES[0];
  const disclosed = disclosedResource(version, purpose);
  const recipient = await fed.peers.encryptionKey(item.recipient);
  // The outbox id is the notice's jti and trace id: every retry is the same notice on every log.
  const record = await sealMessage({
    aud: item.recipient, jti: randomUUID(), rid: item.id, noticeJti: item.id, sourceRecordId: item.recordId, sourceVersion: item.version,
    resource: disclosed.resource, elements: disclosed.elements,
  }, fed.signer, Typ.CORRECTION_RECORD, recipient, CORRECTION_NOTICE_MAX_AGE_SECONDS);
  return signMessage({
    aud: item.recipient, jti: item.id, rid: item.id, sub: code, sourceRecordId: item.recordId, sourceVersion: item.version,
    change: item.change, purpose, record, head: await currentHead(ctx.sequelize),
  }, fed.signer, Typ.CORRECTION, CORRECTION_NOTICE_MAX_AGE_SECONDS);
}

export interface OutboxRun {
  sent: number;
  refused: number;
  deferred: number;
}

/**
 * Sends due notices to the gateway. Accepted (the gateway delivers or queues it) → `sent`;
 * refused for good (4xx) → `refused`; the gateway down → retried with backoff. Each final outcome
 * is logged with the state change, in one transaction.
 */
export async function processCorrectionOutbox(ctx: MunicipalityContext, fed: FederationLink, options: { now?: Date; limit?: number } = {}): Promise<OutboxRun> {
  const run: OutboxRun = { sent: 0, refused: 0, deferred: 0 };
  const due = await dueOutboxItems(ctx.models.CorrectionOutbox, options.now ?? new Date(), options.limit ?? 100);
  for (const item of due) {
    const resident = await findResidentWhere(ctx.models.Resident, { id: item.residentId });
    const outcome: Delivery = resident?.code
      ? await deliverToGateway(fed, GATEWAY_CORRECTIONS_PATH, async () => ({ notice: await buildCorrectionNotice(ctx, fed, item, resident.code!) }), item.id, 'accepted')
      : { status: 'refused', detail: 'no_code' };
    if ('retry' in outcome) {
      const attempts = item.attempts + 1;
      await updateOutboxItem(ctx.models.CorrectionOutbox, item.id, { attempts, lastError: outcome.retry.slice(0, 200), nextAttemptAt: nextAttemptAt(attempts, outcome.retryAfter) });
      ctx.logger.warn({ notice: item.id, recipient: item.recipient, attempts, error: outcome.retry }, 'correction notice deferred');
      run.deferred += 1;
      continue;
    }
    const final = outcome;
    await inTransaction(ctx.sequelize, async (t) => {
      await updateOutboxItem(ctx.models.CorrectionOutbox, item.id, {
        status: final.status, attempts: item.attempts + 1, lastError: final.status === 'refused' ? final.detail : null,
        sentAt: final.status === 'sent' ? new Date().toISOString() : null,
      }, t);
      await appendAccess(ctx.models.AccessLog, t, {
        requestId: item.id, actorType: 'system', actorId: CORRECTION_ACTOR, actingMunicipality: ctx.config.MUNICIPALITY_CODE,
        subject: resident?.addresseeNumber ?? null, action: Actions.CORRECTION_SEND, purpose: item.purpose,
        outcome: final.status === 'sent' ? 'allowed' : 'denied', reason: final.status === 'sent' ? null : final.detail,
        recordIds: [`${item.recordId}@${item.version}`],
        details: { recipient: item.recipient, change: item.change, releaseRequestId: item.releaseRequestId, via: GATEWAY_ID, gateway: final.detail },
      });
    });
    run[final.status === 'sent' ? 'sent' : 'refused'] += 1;
  }
  return run;
}

/** Sends queued notices every `seconds` (runNow sends at once, e.g. after a correction). */
export function startCorrectionOutbox(ctx: MunicipalityContext, fed: FederationLink, seconds = 2): PeriodicTask {
  return runEvery(seconds, async () => {
    const run = await processCorrectionOutbox(ctx, fed);
    if (run.sent || run.refused) ctx.logger.info({ ...run }, 'correction notices sent');
  }, ctx.logger, 'correction outbox');
}
