import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { appendAccess, type AccessInput } from '../../../shared/audit.ts';
import {
  entriesOfRequest, findEntry, iterateEntries, listEntries, type AccessEntryView, type AccessFilter, type EntryPage,
} from '../../../shared/audit-query.ts';
import {
  createCheckpoint, heldCheckpoints, reconcileEntries, recordCountersignature, selectReconcileEntries, verifyChain,
  type CheckpointView, type HeldCheckpoint, type ReconcileEntry, type VerifyReport,
} from '../../../shared/audit-verify.ts';
import { inTransaction } from '../../../shared/db.ts';
import { AppError, notFound } from '../../../shared/errors.ts';
import type { Signer } from '../../../shared/messages.ts';
import { GATEWAY_ID } from '../../../shared/protocol.ts';
import type { Actor } from '../auth/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { Actions } from './actions.ts';

export type StaffAccess = Omit<AccessInput, 'actorType' | 'actorId' | 'actorRole' | 'actingMunicipality'>;

/**
 * Logs a staff member's access to resident data at this municipality, in the transaction of
 * the access itself. Subjects are addressee numbers (local), never My Numbers.
 */
export function logStaffAccess(ctx: MunicipalityContext, t: Transaction, actor: Actor, entry: StaffAccess) {
  return appendAccess(ctx.models.AccessLog, t, {
    ...entry,
    actorType: 'staff',
    actorId: actor.staffId,
    actorRole: actor.role,
    actingMunicipality: ctx.config.MUNICIPALITY_CODE,
  });
}

/* ---------- the privacy officer's reading of the log (issue 5) ---------- */

/** Federation parts the audit capability uses once they exist; absent, those actions answer 503. */
export interface AuditHooks {
  /** This municipality's signing identity, to sign checkpoints of its log head. */
  signer?: Signer;
  /** Sends a checkpoint to the gateway for witnessing; resolves with the gateway's countersignature. */
  witness?: (jws: string) => Promise<{ countersignature: string; witnessId: string; witnessKey: KeyObject }>;
  /** Checkpoints of this municipality's log that the gateway holds (so a rewrite here cannot hide). */
  gatewayCheckpoints?: () => Promise<HeldCheckpoint[]>;
  /**
   * The gateway's entries about exchanges with this municipality in a time range: `forwarded` =
   * queries it forwarded to us (our QUERY_ANSWER side), `received` = queries we sent (QUERY_SEND).
   */
  gatewayEntries?: (range: { from?: string; to?: string }) => Promise<{ forwarded: ReconcileEntry[]; received: ReconcileEntry[] }>;
}

const filterDetails = (filter: Partial<AccessFilter>) => {
  const { limit: _l, cursor: _c, ...rest } = filter;
  return rest;
};

/** One page of the log for a privacy officer; the reading is itself logged in the same transaction. */
export function readEntries(ctx: MunicipalityContext, actor: Actor, filter: AccessFilter): Promise<EntryPage> {
  return inTransaction(ctx.sequelize, async (t) => {
    const page = await listEntries(ctx.models.AccessLog, filter, t);
    await logStaffAccess(ctx, t, actor, {
      action: Actions.LOG_READ, subject: filter.subject ?? null, outcome: 'allowed',
      details: { filter: filterDetails(filter), cursor: filter.cursor ?? null, returned: page.entries.length },
    });
    return page;
  });
}

export function readEntry(ctx: MunicipalityContext, actor: Actor, seq: number): Promise<AccessEntryView> {
  return inTransaction(ctx.sequelize, async (t) => {
    const entry = await findEntry(ctx.models.AccessLog, seq, t);
    if (!entry) throw notFound('Access-log entry');
    await logStaffAccess(ctx, t, actor, { action: Actions.LOG_READ, subject: entry.subject, outcome: 'allowed', details: { seq } });
    return entry;
  });
}

/** Every local entry of one request id: the trace of one query through this member. */
export function traceRequest(ctx: MunicipalityContext, actor: Actor, requestId: string): Promise<AccessEntryView[]> {
  return inTransaction(ctx.sequelize, async (t) => {
    const entries = await entriesOfRequest(ctx.models.AccessLog, requestId, t);
    if (entries.length === 0) throw notFound('Request id');
    await logStaffAccess(ctx, t, actor, { action: Actions.LOG_READ, outcome: 'allowed', details: { trace: requestId, returned: entries.length } });
    return entries;
  });
}

/**
 * Logs the export first, then yields matching entries page by page: the export of a large log
 * streams instead of loading, and a failed download still leaves its trace.
 */
export async function exportEntries(ctx: MunicipalityContext, actor: Actor, filter: AccessFilter): Promise<AsyncGenerator<AccessEntryView>> {
  await inTransaction(ctx.sequelize, (t) => logStaffAccess(ctx, t, actor, {
    action: Actions.LOG_EXPORT, subject: filter.subject ?? null, outcome: 'allowed', details: { filter: filterDetails(filter), format: 'csv' },
  }));
  return iterateEntries(ctx.models.AccessLog, filterDetails(filter));
}

/**
 * Verifies this municipality's chain against every checkpoint it can see: its own, the ones a
 * witness countersigned, and (when the gateway is reachable) the gateway's copies. The walk runs
 * outside a transaction so it never holds the write lock over a million rows; its result is
 * logged afterwards.
 */
export async function verifyLog(ctx: MunicipalityContext, actor: Actor, hooks: AuditHooks = {}): Promise<VerifyReport & { checkpointsRejected: number; gatewayCheckpoints: 'checked' | 'unavailable' }> {
  const self = ctx.config.MUNICIPALITY_CODE;
  const ownKey = hooks.signer ? createPublicKey(hooks.signer.key) : undefined;
  const own = await heldCheckpoints(ctx.models.Checkpoint, self, self, ownKey ? () => ownKey : undefined);
  let remote: HeldCheckpoint[] = [];
  let gatewayCheckpoints: 'checked' | 'unavailable' = 'unavailable';
  if (hooks.gatewayCheckpoints) {
    try {
      remote = await hooks.gatewayCheckpoints();
      gatewayCheckpoints = 'checked';
    } catch (err) {
      ctx.logger.warn({ err }, 'gateway checkpoints unavailable; verifying against local checkpoints only');
    }
  }
  const report = await verifyChain(ctx.sequelize, { member: self, checkpoints: [...own.checkpoints, ...remote] });
  await inTransaction(ctx.sequelize, (t) => logStaffAccess(ctx, t, actor, {
    action: Actions.LOG_VERIFY, outcome: 'allowed',
    details: { ok: report.ok, entries: report.entries, ...(report.broken ? { brokenSeq: report.broken.seq, kind: report.broken.kind } : {}) },
  }));
  return { ...report, checkpointsRejected: own.rejected.length, gatewayCheckpoints };
}

/** Signs the current head now and, when a witness is wired, has it countersigned. */
export async function makeCheckpoint(ctx: MunicipalityContext, actor: Actor, hooks: AuditHooks = {}): Promise<{ checkpoint: CheckpointView; witnessed: CheckpointView | null }> {
  if (!hooks.signer) throw new AppError(503, 'signing-key-unavailable', 'This municipality has no signing key configured', { field: 'CERT_DIR', rule: 'must hold the member signing key' });
  const checkpoint = await createCheckpoint(ctx.sequelize, ctx.models.Checkpoint, hooks.signer);
  let witnessed: CheckpointView | null = null;
  if (hooks.witness) {
    try {
      const answer = await hooks.witness(checkpoint.jws);
      witnessed = await recordCountersignature({ Checkpoints: ctx.models.Checkpoint, jws: checkpoint.jws, ...answer });
    } catch (err) {
      // The checkpoint stands on its own; witnessing is retried with the next one.
      ctx.logger.warn({ err }, 'checkpoint not witnessed');
    }
  }
  await inTransaction(ctx.sequelize, (t) => logStaffAccess(ctx, t, actor, {
    action: Actions.LOG_CHECKPOINT, outcome: 'allowed', details: { seq: checkpoint.seq, hash: checkpoint.hash, witnessedBy: witnessed?.witnessedBy ?? null },
  }));
  return { checkpoint, witnessed };
}

/**
 * Reconciles this municipality's exchange entries with the gateway's: every query the gateway
 * forwarded here must be in our log as answered, every query we sent must be in the gateway's
 * log as received, and each side's extra entries are reported. Entries match by request id and
 * the subject's `details.ref`.
 */
export async function reconcileWithGateway(ctx: MunicipalityContext, actor: Actor, range: { from?: string; to?: string }, hooks: AuditHooks = {}) {
  if (!hooks.gatewayEntries) throw new AppError(503, 'gateway-unavailable', 'Reconciliation needs the gateway\'s log, and no gateway is configured', { field: 'GATEWAY_URL', rule: 'must be configured and reachable' });
  const remote = await hooks.gatewayEntries(range);
  const [answered, sent] = await Promise.all([
    selectReconcileEntries(ctx.sequelize, { actions: [Actions.QUERY_ANSWER], ...range }),
    selectReconcileEntries(ctx.sequelize, { actions: [Actions.QUERY_SEND], ...range }),
  ]);
  const self = ctx.config.MUNICIPALITY_CODE;
  const incoming = reconcileEntries(answered, remote.forwarded, { local: self, remote: GATEWAY_ID });
  const outgoing = reconcileEntries(sent, remote.received, { local: self, remote: GATEWAY_ID });
  const ok = incoming.ok && outgoing.ok;
  await inTransaction(ctx.sequelize, (t) => logStaffAccess(ctx, t, actor, {
    action: Actions.LOG_RECONCILE, outcome: 'allowed',
    details: { ...range, ok, onlyLocal: incoming.onlyLocal.length + outgoing.onlyLocal.length, onlyRemote: incoming.onlyRemote.length + outgoing.onlyRemote.length },
  }));
  return { ok, incoming, outgoing };
}
