import type { Transaction } from 'sequelize';
import { appendAccess, appendAccessBatch, type AccessInput } from '../../../shared/access-log/chain.ts';
import type { AuditConsole, ReconcileRange } from '../../../shared/access-log/console.ts';
import { reconcileEntries, selectReconcileEntries, type HeldCheckpoint, type ReconcileEntry } from '../../../shared/access-log/verify.ts';
import { checkpointAndWitness, runEvery, type GatewayEntryView, type PeriodicTask, type Witness } from '../../../shared/access-log/witness.ts';
import { AppError } from '../../../shared/platform/errors.ts';
import type { Signer } from '../../../shared/federation/messages.ts';
import { GATEWAY_ID } from '../../../shared/federation/protocol.ts';
import type { StaffActor } from '../../../shared/staff/auth.ts';
import type { MunicipalityContext } from '../context.ts';
import { Actions } from './actions.ts';

export type StaffAccess = Omit<AccessInput, 'actorType' | 'actorId' | 'actorRole' | 'actingMunicipality'>;

/**
 * Logs a staff member's access to resident data at this municipality, in the transaction of
 * the access itself. Subjects are addressee numbers (local), never My Numbers.
 */
export async function logStaffAccess(ctx: MunicipalityContext, t: Transaction, actor: StaffActor, entry: StaffAccess) {
  return (await logStaffAccessBatch(ctx, t, actor, [entry]))[0]!;
}

/** `logStaffAccess` for several entries of one staff member, in one append (in the order given). */
export function logStaffAccessBatch(ctx: MunicipalityContext, t: Transaction, actor: StaffActor, entries: StaffAccess[]) {
  return appendAccessBatch(ctx.models.AccessLog, t, entries.map((entry) => ({
    ...entry,
    actorType: 'staff' as const,
    actorId: actor.staffId,
    actorRole: actor.role,
    actingMunicipality: ctx.config.MUNICIPALITY_CODE,
  })));
}

/**
 * A resident signed in at their own page (docs/DESIGN.md §4.14): the access log names them by the
 * credential they signed in with (actor id) and their addressee number (subject), never by name.
 */
export interface ResidentActor {
  kind: 'resident';
  credentialId: string;
  residentId: string;
  addresseeNumber: string;
}

/** Whoever made an access here: a staff member in a session, or a resident at their own page. */
export type Accessor = StaffActor | ResidentActor;

export const isResidentActor = (who: Accessor): who is ResidentActor => 'kind' in who && who.kind === 'resident';

/** Logs an access by staff or by the resident themselves, in the transaction of the access. */
export function logAccessBy(ctx: MunicipalityContext, t: Transaction, who: Accessor, entry: StaffAccess) {
  if (!isResidentActor(who)) return logStaffAccess(ctx, t, who, entry);
  return appendAccess(ctx.models.AccessLog, t, {
    ...entry,
    actorType: 'resident',
    actorId: who.credentialId,
    actorRole: 'resident',
    actingMunicipality: ctx.config.MUNICIPALITY_CODE,
  });
}

/* ---------- the privacy officer's reading of the log (docs/DESIGN.md §5.3) ---------- */

/** Federation parts the audit capability uses; absent (no federation), those actions answer 503. */
export interface AuditHooks {
  /** This municipality's signing identity, to sign checkpoints of its log head. */
  signer?: Signer;
  /** Sends a checkpoint to the gateway for countersigning. */
  witness?: Witness;
  /** Checkpoints of this municipality's log that the gateway holds (so a rewrite here cannot hide). */
  gatewayCheckpoints?: () => Promise<HeldCheckpoint[]>;
  /** Heads of this municipality's log that the gateway and peers saw in its messages. */
  witnessedHeads?: AuditConsole['witnessedHeads'];
  /** Fetches the gateway's newest checkpoints of its own log and keeps countersigned copies here. */
  keepGatewayCheckpoints?: () => Promise<{ kept: number; contradictions: { seq: number; rule: string }[] }>;
  /** The gateway's entries about this municipality's exchanges (metadata only). */
  gatewayEntries?: (q: { requestId?: string; from?: string; to?: string }) => Promise<GatewayEntryView[]>;
  /** Finds residents by name or kana for the console's resident filter (the residents capability sits above this one). */
  residentSubjects?: AuditConsole['residentSubjects'];
}

/** The console over this municipality's log, with the gateway as the other hop and the witness. */
export function municipalityConsole(ctx: MunicipalityContext, hooks: AuditHooks = {}): AuditConsole {
  const { gatewayEntries } = hooks;
  return {
    member: ctx.config.MUNICIPALITY_CODE,
    sequelize: ctx.sequelize,
    AccessLog: ctx.models.AccessLog,
    Checkpoints: ctx.models.Checkpoint,
    Staff: ctx.models.Staff,
    residentSubjects: hooks.residentSubjects,
    WitnessedHeads: ctx.models.WitnessedHead,
    logger: ctx.logger,
    actions: {
      read: Actions.LOG_READ, verify: Actions.LOG_VERIFY, export: Actions.LOG_EXPORT, checkpoint: Actions.LOG_CHECKPOINT, reconcile: Actions.LOG_RECONCILE,
    },
    logAccess: (t, actor, entry) => logStaffAccess(ctx, t, actor, entry),
    signer: hooks.signer,
    witness: hooks.witness,
    remoteCheckpoints: hooks.gatewayCheckpoints,
    witnessedHeads: hooks.witnessedHeads,
    remoteTrace: gatewayEntries ? async (requestId) => [{ member: GATEWAY_ID, entries: await gatewayEntries({ requestId }) }] : undefined,
    reconcile: gatewayEntries ? (range) => reconcileWithGateway(ctx, range, gatewayEntries) : undefined,
  };
}

const asReconcileEntry = (e: GatewayEntryView): ReconcileEntry => ({
  seq: e.seq, requestId: e.requestId, ref: e.ref, at: e.at, action: e.action, note: e.status ?? e.reason,
  ...(e.wholeRequest ? { wholeRequest: true } : {}),
});

/**
 * Reconciles this municipality's exchange entries with the gateway's, in both directions:
 * incoming — every subject the gateway forwarded here (and heard back about) must be in our log
 * as answered, and every answer we logged must be one the gateway forwarded; outgoing — every
 * subject we sent must be in the gateway's log as received, and vice versa. Entries match by
 * request id and the subject's `details.ref`; anything one-sided is reported with its seq.
 */
export async function reconcileWithGateway(ctx: MunicipalityContext, range: ReconcileRange, gatewayEntries: NonNullable<AuditHooks['gatewayEntries']>) {
  const remote = await gatewayEntries(range);
  const [answered, sent] = await Promise.all([
    selectReconcileEntries(ctx.sequelize, {
      actions: [Actions.QUERY_ANSWER], ...range,
      // A forward refused as a whole is one entry here for all its subjects.
      wholeRequest: (e) => e.details.refusedAt === 'envelope',
      note: (e) => (typeof e.details.status === 'string' ? e.details.status : e.reason),
    }),
    // Subjects refused here before anything was signed never left: only those sent take part.
    selectReconcileEntries(ctx.sequelize, { actions: [Actions.QUERY_SEND], where: (e) => e.outcome === 'allowed', ...range }),
  ]);
  const self = ctx.config.MUNICIPALITY_CODE;
  const incoming = reconcileEntries(answered, remote.filter((e) => e.counterpart === 'forwarded').map(asReconcileEntry), { local: self, remote: GATEWAY_ID });
  const outgoing = reconcileEntries(sent, remote.filter((e) => e.counterpart === 'received').map(asReconcileEntry), { local: self, remote: GATEWAY_ID });
  const summary = {
    matched: incoming.matched + outgoing.matched,
    onlyLocal: incoming.onlyLocal.length + outgoing.onlyLocal.length,
    onlyRemote: incoming.onlyRemote.length + outgoing.onlyRemote.length,
  };
  return { ok: incoming.ok && outgoing.ok, summary, incoming, outgoing };
}

/**
 * The periodic checkpoint (CHECKPOINT_INTERVAL_SECONDS): sign the head when it moved and have
 * the gateway countersign it, then keep copies of the gateway's own newest checkpoints. Runs
 * only when federated (the signing key and the witness are the federation's).
 */
export function startCheckpointSchedule(ctx: MunicipalityContext, hooks: AuditHooks, seconds: number): PeriodicTask | undefined {
  const { signer } = hooks;
  if (!signer) return undefined;
  return runEvery(seconds, async () => {
    await checkpointAndWitness({ sequelize: ctx.sequelize, Checkpoints: ctx.models.Checkpoint, WitnessedHeads: ctx.models.WitnessedHead, signer, witness: hooks.witness, logger: ctx.logger, skipUnchanged: true });
    if (hooks.keepGatewayCheckpoints) {
      const kept = await hooks.keepGatewayCheckpoints();
      if (kept.contradictions.length) throw new AppError(409, 'checkpoint-contradiction', `gateway checkpoints contradict copies held here at seq ${kept.contradictions.map((c) => c.seq).join(', ')}`);
    }
  }, ctx.logger, 'periodic checkpoint');
}
