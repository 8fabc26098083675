/**
 * The privacy officer's reading of one member's access log — list, open, trace, verify, export,
 * checkpoint, reconcile — and the console page that drives it. One implementation for every member
 * that has privacy officers: each municipality and the gateway build an `AuditConsole` from their
 * own database and federation parts and mount `auditConsoleRoutes` behind their own staff login.
 * Every use of the log is itself logged, in the same transaction as the reading.
 */
import { once } from 'node:events';
import { createPublicKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import express, { Router, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Sequelize, Transaction } from 'sequelize';
import { z } from 'zod';
import { dateTimeFilter } from '../platform/dates.ts';
import type { AccessInput, AccessLogModel } from './chain.ts';
import {
  accessFilterSchema, csvHeader, entriesOfRequest, entryCsvRow, findEntry, iterateEntries, listEntries,
  type AccessEntryView, type AccessFilter, type EntryPage,
} from './query.ts';
import { heldCheckpoints, listCheckpoints, verifyChain, type CheckpointModel, type CheckpointView, type HeldCheckpoint, type VerifyReport } from './verify.ts';
import { checkpointAndWitness, type Witness } from './witness.ts';
import type { HeadSource, WitnessedHeadModel } from './heads.ts';
import { inTransaction } from '../platform/db.ts';
import { AppError, notFound } from '../platform/errors.ts';
import type { Signer } from '../federation/messages.ts';
import { staffActorOf, staffDisplayNames, type StaffActor, type StaffModel } from '../staff/auth.ts';
import { LOG_LABELS } from './labels.ts';
import { parseInput, requestIdSchema } from '../platform/validation.ts';

/** The console's static files (no build step), served by every member that has privacy officers. */
export const CONSOLE_DIR = fileURLToPath(new URL('./console/', import.meta.url));

/** The access-log actions a console writes about its own use; each member names them in its own constants. */
export interface ConsoleActions {
  read: string;
  verify: string;
  export: string;
  checkpoint: string;
  reconcile: string;
}

/** One hop of a request's trace: a member and its entries under that request id. */
export interface TraceHop {
  member: string;
  /** Entries as that member reports them (another member's are metadata only). */
  entries: unknown[];
  /** Set when the member could not be asked. */
  unavailable?: string;
}

/** Everything the console needs of one member; optional parts absent make their actions 503. */
export interface AuditConsole {
  /** This member's id: a municipality code, or `gateway`. */
  member: string;
  sequelize: Sequelize;
  AccessLog: AccessLogModel;
  Checkpoints: CheckpointModel;
  /** This member's staff accounts: entries name a staff actor by display name (the id stays beside it). */
  Staff: StaffModel;
  /**
   * The subjects of the residents whose name or kana contains `text` (a municipality's residents
   * table; members without residents leave it out, and a `resident` filter is refused there).
   */
  residentSubjects?: (text: string, t: Transaction) => Promise<string[]>;
  /** Heads of other members' logs held here (the witness's head from a countersignature goes here). */
  WitnessedHeads: WitnessedHeadModel;
  logger: Logger;
  actions: ConsoleActions;
  /** Appends a staff member's use of the log in transaction `t` (the member's own staff-log helper). */
  logAccess(t: Transaction, actor: StaffActor, entry: Omit<AccessInput, 'actorType' | 'actorId' | 'actorRole' | 'actingMunicipality'>): Promise<unknown>;
  /** This member's signing identity, to sign checkpoints of its head. */
  signer?: Signer;
  /** Sends a checkpoint for countersigning (the gateway, for municipalities and the issuer). */
  witness?: Witness;
  /** Checkpoints of this member's log that others hold (so a rewrite here cannot hide). */
  remoteCheckpoints?: () => Promise<HeldCheckpoint[]>;
  /** Heads of this member's log that others saw in its messages, fetched from each (the tail since the last checkpoint). */
  witnessedHeads?: () => Promise<{ held: HeldCheckpoint[]; sources: HeadSource[] }>;
  /** The other hops of a request (the gateway's entries, for a municipality). */
  remoteTrace?: (requestId: string) => Promise<TraceHop[]>;
  /** Reconciliation with another member's log, where the member has a counterpart. */
  reconcile?: (range: ReconcileRange) => Promise<{ ok: boolean } & Record<string, unknown>>;
  /** Why reconciliation is unavailable here, as a problem (field and rule). */
  reconcileUnavailable?: { field: string; rule: string };
}

const time = dateTimeFilter();

/** Time range of a reconciliation; both ends optional (the whole log). */
export const reconcileSchema = z.object({ from: time.optional(), to: time.optional() }).strict()
  .refine((r) => !r.from || !r.to || r.from <= r.to, { message: 'must not be before from', path: ['to'] });
export type ReconcileRange = z.infer<typeof reconcileSchema>;

export const seqParamSchema = z.object({
  seq: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1'),
});

export const requestIdParamSchema = z.object({
  requestId: requestIdSchema,
});

const filterDetails = (filter: Partial<AccessFilter>) => {
  const { limit: _l, cursor: _c, ...rest } = filter;
  return rest;
};

/**
 * A `resident` name or kana becomes the subjects it finds; the name itself is never logged, only
 * how many residents matched.
 */
async function resolveResident(c: AuditConsole, filter: AccessFilter, t: Transaction): Promise<{ filter: AccessFilter; logged: Record<string, unknown> }> {
  const { resident, ...rest } = filter;
  if (resident === undefined) return { filter, logged: filterDetails(filter) };
  if (!c.residentSubjects) throw new AppError(400, 'validation-failed', 'Invalid query', { field: 'resident', rule: 'residents are searched by name at a municipality; here, filter by subject' });
  const subjects = await c.residentSubjects(resident, t);
  return { filter: { ...rest, subjects }, logged: { ...filterDetails(rest), residentSearch: { matched: subjects.length } } };
}

/** An entry as the console shows it: a staff actor's display name beside the id. */
export type ConsoleEntryView = AccessEntryView & { actorName?: string };

async function withActorNames(c: AuditConsole, entries: AccessEntryView[], t: Transaction): Promise<ConsoleEntryView[]> {
  const names = await staffDisplayNames(c.Staff, entries.filter((e) => e.actorType === 'staff').map((e) => e.actorId), t);
  return entries.map((e) => (e.actorType === 'staff' && names.has(e.actorId) ? { ...e, actorName: names.get(e.actorId)! } : e));
}

/** One page of the log; the reading is itself logged in the same transaction. */
export function readEntries(c: AuditConsole, actor: StaffActor, query: AccessFilter): Promise<EntryPage & { entries: ConsoleEntryView[] }> {
  return inTransaction(c.sequelize, async (t) => {
    const { filter, logged } = await resolveResident(c, query, t);
    const page = await listEntries(c.AccessLog, filter, t);
    await c.logAccess(t, actor, {
      action: c.actions.read, subject: filter.subject ?? null, outcome: 'allowed',
      details: { filter: logged, cursor: filter.cursor ?? null, returned: page.entries.length },
    });
    return { ...page, entries: await withActorNames(c, page.entries, t) };
  });
}

export function readEntry(c: AuditConsole, actor: StaffActor, seq: number): Promise<ConsoleEntryView> {
  return inTransaction(c.sequelize, async (t) => {
    const entry = await findEntry(c.AccessLog, seq, t);
    if (!entry) throw notFound('Access-log entry');
    await c.logAccess(t, actor, { action: c.actions.read, subject: entry.subject, outcome: 'allowed', details: { seq } });
    return (await withActorNames(c, [entry], t))[0]!;
  });
}

/**
 * One request followed across hops: this member's entries, then the other members' (when they
 * can be asked). Unknown everywhere is a 404; a hop that cannot be asked says so.
 */
export async function traceRequest(c: AuditConsole, actor: StaffActor, requestId: string): Promise<{ requestId: string; hops: TraceHop[] }> {
  const remote = c.remoteTrace
    ? await c.remoteTrace(requestId).catch((err: Error): TraceHop[] => {
      c.logger.warn({ err: err.message }, 'remote trace unavailable');
      return [{ member: 'gateway', entries: [], unavailable: err.message }];
    })
    : [];
  return inTransaction(c.sequelize, async (t) => {
    const entries = await entriesOfRequest(c.AccessLog, requestId, t);
    const returned = entries.length + remote.reduce((n, h) => n + h.entries.length, 0);
    if (returned === 0) throw notFound('Request id');
    await c.logAccess(t, actor, { action: c.actions.read, outcome: 'allowed', details: { trace: requestId, returned } });
    return { requestId, hops: [{ member: c.member, entries: await withActorNames(c, entries, t) }, ...remote] };
  });
}

/**
 * Logs the export first, then yields matching entries page by page: the export of a large log
 * streams instead of loading, and a failed download still leaves its trace.
 */
export async function exportEntries(c: AuditConsole, actor: StaffActor, query: AccessFilter): Promise<AsyncGenerator<AccessEntryView>> {
  const filter = await inTransaction(c.sequelize, async (t) => {
    const resolved = await resolveResident(c, query, t);
    await c.logAccess(t, actor, {
      action: c.actions.export, subject: resolved.filter.subject ?? null, outcome: 'allowed', details: { filter: resolved.logged, format: 'csv' },
    });
    return resolved.filter;
  });
  const { limit: _l, cursor: _c, ...rest } = filter;
  return iterateEntries(c.AccessLog, rest);
}

export type VerifyResult = VerifyReport & {
  checkpointsRejected: number;
  remoteCheckpoints: 'checked' | 'unavailable' | 'none';
  /** The heads others hold of this log, per holder (a holder that could not be asked says why). */
  witnessedHeads: { checked: number; sources: HeadSource[] };
};

/**
 * Verifies this member's chain against every checkpoint it can see: its own (signatures checked),
 * the ones a witness countersigned, and the copies others hold. The walk runs outside a
 * transaction so it never holds the write lock over a million rows; its result is logged after.
 */
export async function verifyLog(c: AuditConsole, actor: StaffActor): Promise<VerifyResult> {
  const ownKey = c.signer ? createPublicKey(c.signer.key) : undefined;
  const own = await heldCheckpoints(c.Checkpoints, c.member, c.member, ownKey ? () => ownKey : undefined);
  let remote: HeldCheckpoint[] = [];
  let remoteCheckpoints: VerifyResult['remoteCheckpoints'] = 'none';
  if (c.remoteCheckpoints) {
    try {
      remote = await c.remoteCheckpoints();
      remoteCheckpoints = 'checked';
    } catch (err) {
      remoteCheckpoints = 'unavailable';
      c.logger.warn({ err: (err as Error).message }, 'checkpoints held elsewhere unavailable; verifying against local ones only');
    }
  }
  let heads: { held: HeldCheckpoint[]; sources: HeadSource[] } = { held: [], sources: [] };
  if (c.witnessedHeads) {
    try {
      heads = await c.witnessedHeads();
    } catch (err) {
      c.logger.warn({ err: (err as Error).message }, 'witnessed heads unavailable; verifying against checkpoints only');
    }
  }
  const report = await verifyChain(c.sequelize, { member: c.member, checkpoints: [...own.checkpoints, ...remote, ...heads.held] });
  await inTransaction(c.sequelize, (t) => c.logAccess(t, actor, {
    action: c.actions.verify, outcome: 'allowed',
    details: {
      ok: report.ok, entries: report.entries, witnessedHeads: heads.held.length,
      ...(report.broken ? { brokenSeq: report.broken.seq, kind: report.broken.kind } : {}),
    },
  }));
  return { ...report, checkpointsRejected: own.rejected.length, remoteCheckpoints, witnessedHeads: { checked: heads.held.length, sources: heads.sources } };
}

/** Signs the current head now and, when a witness is wired, has it countersigned; logged as the officer's act. */
export async function makeCheckpoint(c: AuditConsole, actor: StaffActor): Promise<{ checkpoint: CheckpointView; witnessed: CheckpointView | null }> {
  if (!c.signer) throw new AppError(503, 'signing-key-unavailable', 'This member has no signing key configured', { field: 'CERT_DIR', rule: 'must hold the member signing key' });
  const made = await checkpointAndWitness({ sequelize: c.sequelize, Checkpoints: c.Checkpoints, WitnessedHeads: c.WitnessedHeads, signer: c.signer, witness: c.witness, logger: c.logger });
  await inTransaction(c.sequelize, (t) => c.logAccess(t, actor, {
    action: c.actions.checkpoint, outcome: 'allowed',
    details: { seq: made.checkpoint.seq, hash: made.checkpoint.hash, witnessedBy: made.witnessed?.witnessedBy ?? null },
  }));
  return made;
}

/** Runs the member's reconciliation and logs it with its result counts. */
export async function reconcileLog(c: AuditConsole, actor: StaffActor, range: ReconcileRange) {
  if (!c.reconcile) {
    // A member that never reconciles (the gateway) has no such operation: 404, not a server fault.
    // A municipality without its gateway configured is unavailable until it is: 503.
    const status = c.reconcileUnavailable ? 404 : 503;
    const why = c.reconcileUnavailable ?? { field: 'GATEWAY_URL', rule: 'must be configured and reachable' };
    throw new AppError(status, 'reconciliation-unavailable', 'Reconciliation needs a counterpart log, and none is configured here', why);
  }
  const result = await c.reconcile(range);
  await inTransaction(c.sequelize, (t) => c.logAccess(t, actor, {
    action: c.actions.reconcile, outcome: 'allowed', details: { ...range, ok: result.ok, ...('summary' in result ? { summary: result.summary } : {}) },
  }));
  return result;
}

/**
 * The console page and the log API, behind `guard` (the member's login and the privacy-officer
 * role): only a privacy officer reads, verifies, exports and checkpoints the log, as a clerk reads
 * records and not logs.
 */
export function auditConsoleRoutes(c: AuditConsole, guard: RequestHandler[]): Router {
  const router = Router();
  // What the log's codes mean in Japanese (shared/access-log/labels.ts): no personal data, so before the guard.
  router.get('/console/labels.json', (_req, res) => {
    res.json(LOG_LABELS);
  });
  router.use('/console', express.static(CONSOLE_DIR, { index: 'index.html', dotfiles: 'ignore' }));
  router.use('/audit', ...guard);

  router.get('/audit/entries', async (req, res) => {
    const filter = parseInput(accessFilterSchema, req.query, 'query');
    res.json(await readEntries(c, staffActorOf(req), filter));
  });

  router.get('/audit/entries/:seq', async (req, res) => {
    const { seq } = parseInput(seqParamSchema, req.params, 'seq');
    res.json(await readEntry(c, staffActorOf(req), seq));
  });

  router.get('/audit/trace/:requestId', async (req, res) => {
    const { requestId } = parseInput(requestIdParamSchema, req.params, 'requestId');
    res.json(await traceRequest(c, staffActorOf(req), requestId));
  });

  router.post('/audit/verify', async (req, res) => {
    res.json(await verifyLog(c, staffActorOf(req)));
  });

  router.get('/audit/export.csv', async (req, res) => {
    const { limit: _ignored, ...query } = req.query as Record<string, unknown>;
    const filter = parseInput(accessFilterSchema, query, 'query');
    const entries = await exportEntries(c, staffActorOf(req), filter);
    const day = new Date().toISOString().slice(0, 10);
    res.status(200).type('text/csv; charset=utf-8').attachment(`access-log-${c.member}-${day}.csv`);
    // A BOM lets spreadsheet software read the UTF-8 (Japanese) text correctly.
    res.write(`\uFEFF${csvHeader()}`);
    try {
      for await (const entry of entries) {
        if (!res.write(entryCsvRow(entry))) await once(res, 'drain');
      }
      res.end();
    } catch (err) {
      c.logger.error({ err }, 'CSV export failed mid-stream');
      res.destroy(err as Error);
    }
  });

  router.get('/audit/checkpoints', async (_req, res) => {
    const held = await listCheckpoints(c.Checkpoints);
    res.json({ checkpoints: held.map((k) => ({ id: k.id, member: k.member, seq: k.seq, hash: k.hash, at: k.at, witnessedBy: k.witnessedBy, jws: k.jws, countersignature: k.countersignature })) });
  });

  router.post('/audit/checkpoints', async (req, res) => {
    const { checkpoint, witnessed } = await makeCheckpoint(c, staffActorOf(req));
    res.status(201).json({
      checkpoint: { member: checkpoint.member, seq: checkpoint.seq, hash: checkpoint.hash, at: checkpoint.at, jws: checkpoint.jws },
      witnessedBy: witnessed?.witnessedBy ?? null,
    });
  });

  router.post('/audit/reconcile', async (req, res) => {
    const range = parseInput(reconcileSchema, req.body ?? {});
    res.json(await reconcileLog(c, staffActorOf(req), range));
  });

  return router;
}
