import type { Transaction } from 'sequelize';
import { appendAccess, type AccessInput, type AccessLogModel } from '../../shared/access-log/chain.ts';
import { logMemberAccess } from '../../shared/access-log/member-access.ts';
import type { AuditConsole } from '../../shared/access-log/console.ts';
import { listCheckpoints, witnessCheckpoint, type CheckpointView, type WitnessResult } from '../../shared/access-log/verify.ts';
import { checkpointAndWitness } from '../../shared/access-log/witness.ts';
import { currentHead, federationHeadHolders, fetchHeldHeads } from '../../shared/access-log/heads.ts';
import { inTransaction } from '../../shared/platform/db.ts';
import { forbidden } from '../../shared/platform/errors.ts';
import type { Member } from '../../shared/federation/member-http.ts';
import { GATEWAY_ID } from '../../shared/federation/protocol.ts';
import type { StaffActor } from '../../shared/staff/auth.ts';
import type { GatewayContext } from '../context.ts';
import { GatewayActions } from './actions.ts';
import type { GatewayEntryView } from '../../shared/access-log/witness.ts';
import { entriesConcerning } from './model.ts';
import type { MemberEntriesQuery } from './schemas.ts';

/** Logs a gateway privacy officer's use of the gateway's own log. */
export function logGatewayStaffAccess(log: AccessLogModel, t: Transaction, actor: StaffActor, entry: Omit<AccessInput, 'actorType' | 'actorId' | 'actorRole' | 'actingMunicipality'>) {
  return appendAccess(log, t, { ...entry, actorType: 'staff', actorId: actor.staffId, actorRole: actor.role, actingMunicipality: GATEWAY_ID });
}

/** Witnesses a member's checkpoint (the member is its certificate's CN) and countersigns it. */
export async function witnessMemberCheckpoint(ctx: GatewayContext, member: Member, jws: string): Promise<WitnessResult> {
  if (member.kind === 'gateway') throw forbidden('The gateway does not witness itself');
  const { key } = await ctx.directory.signingKey(member.id);
  return witnessCheckpoint({ Checkpoints: ctx.models.Checkpoint, witness: ctx.credentials.signer, from: member.id, memberKey: key, jws, head: await currentHead(ctx.sequelize) });
}

/**
 * What the gateway holds about `member`'s log: for `gateway`, its own signed checkpoints (which
 * members keep copies of); for anyone else, that member's checkpoints the gateway countersigned.
 * Checkpoints are hashes and sequence numbers only, so any member may read any of them. The
 * newest 500 from `fromSeq` on (inclusive: a member re-reading its newest copy would see it re-signed).
 */
export async function publishedCheckpoints(ctx: GatewayContext, member: string, fromSeq: number): Promise<CheckpointView[]> {
  const held = await listCheckpoints(ctx.models.Checkpoint, member);
  const mine = member === GATEWAY_ID ? held.filter((c) => c.witnessedBy === null) : held.filter((c) => c.witnessedBy === GATEWAY_ID);
  return mine.filter((c) => c.seq >= fromSeq).slice(-500);
}

/**
 * The gateway's entries about one municipality's exchanges, for that municipality's privacy
 * officer (reconciliation and traces). A municipality reads only its own: the `member` it names
 * must be its certificate's CN. The reading is logged at the gateway.
 */
export function entriesForMember(ctx: GatewayContext, asker: Member, q: MemberEntriesQuery): Promise<{ entries: GatewayEntryView[]; nextAfter: number | null }> {
  if (q.member !== asker.id) throw forbidden('A municipality may read only the gateway\'s entries about its own exchanges');
  return inTransaction(ctx.sequelize, async (t) => {
    const page = await entriesConcerning(ctx.models.AccessLog, asker.id, q, t);
    await logMemberAccess(ctx.models.AccessLog, t, asker, [{
      action: GatewayActions.MEMBER_LOG_READ, actingMunicipality: asker.id, outcome: 'allowed',
      details: { requestId: q.requestId ?? null, from: q.from ?? null, to: q.to ?? null, after: q.after, returned: page.entries.length },
    }]);
    return page;
  });
}

/** Signs the gateway's head (periodic run: only when it moved since the last checkpoint). Members fetch and keep it. */
export function gatewayCheckpoint(ctx: GatewayContext, periodic: boolean) {
  return checkpointAndWitness({
    sequelize: ctx.sequelize, Checkpoints: ctx.models.Checkpoint, signer: ctx.credentials.signer, logger: ctx.logger, skipUnchanged: periodic,
  });
}

/** The gateway's privacy-officer console over its own log (metadata only: codes, never personal data). */
export function gatewayConsole(ctx: GatewayContext): AuditConsole {
  return {
    member: GATEWAY_ID,
    sequelize: ctx.sequelize,
    AccessLog: ctx.models.AccessLog,
    Checkpoints: ctx.models.Checkpoint,
    Staff: ctx.models.Staff,
    WitnessedHeads: ctx.models.WitnessedHead,
    logger: ctx.logger,
    actions: {
      read: GatewayActions.LOG_READ, verify: GatewayActions.LOG_VERIFY, export: GatewayActions.LOG_EXPORT,
      checkpoint: GatewayActions.LOG_CHECKPOINT, reconcile: GatewayActions.LOG_RECONCILE,
    },
    logAccess: (t, actor, entry) => logGatewayStaffAccess(ctx.models.AccessLog, t, actor, entry),
    signer: ctx.credentials.signer,
    reconcileUnavailable: { field: 'member', rule: 'reconciliation runs at a municipality, against the gateway\'s entries about it' },
    // Every member that exchanged with the gateway holds heads of its log: the tail is checked against them.
    witnessedHeads: async () => fetchHeldHeads(ctx.client, GATEWAY_ID, await federationHeadHolders(ctx.directory, GATEWAY_ID), { timeoutMs: 5000 }),
  };
}
