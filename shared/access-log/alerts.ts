/**
 * Anomaly alerts (docs/DESIGN.md §4.12): patterns in a member's own access log that a privacy officer must
 * see. Each member runs its own detectors over its own log (services/municipality/alerts,
 * gateway/alerts) and keeps what they find here: an append-only table, listed at GET /alerts for
 * privacy officers only, computed periodically and on demand. A pattern already raised within the
 * window is not raised again, so a periodic run does not repeat itself.
 */
import { randomUUID } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import {
  DataTypes, Model, Op, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type Transaction,
} from 'sequelize';
import { z } from 'zod';
import { dateTimeFilter } from '../platform/dates.ts';
import type { AccessLogModel } from './chain.ts';
import { inTransaction } from '../platform/db.ts';
import { staffActorOf, type StaffActor } from '../staff/auth.ts';
import { parseInput } from '../platform/validation.ts';

export const ALERT_KINDS = [
  /** One resident asked about by several requesting municipalities within the window. */
  'resident_multi_requester',
  /** One staff member sent far more queries than their peers (municipality). */
  'staff_query_volume',
  /** Repeated identity mismatches in queries from one requester. */
  'identity_mismatch_requester',
  /** Life-protection (no-consent) queries above a threshold. */
  'life_protection_volume',
  /** A burst of refused staff sign-ins from one client address (password guessing, credential stuffing). */
  'staff_sign_in_failures',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const ALERT_TABLE = 'alerts';
/** Evidence kept per alert: the access-log entries that make up the pattern (the newest ones). */
const MAX_EVIDENCE = 100;

/** Thresholds every member's detectors share; members add their own (config fields, env names). */
export const alertConfigShape = {
  /** Seconds between detector runs; 0 = on demand only (POST /alerts/run). */
  ALERT_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
  /** How far back each detector looks, and how long a raised pattern stays raised. */
  ALERT_WINDOW_SECONDS: z.coerce.number().int().min(60).max(30 * 86_400).default(86_400),
  /** Distinct requesting municipalities about one resident that raise an alert. */
  ALERT_MULTI_REQUESTER_THRESHOLD: z.coerce.number().int().min(2).max(1000).default(2),
  /** Identity mismatches in queries from one requester that raise an alert. */
  ALERT_IDENTITY_MISMATCH_THRESHOLD: z.coerce.number().int().min(1).max(100_000).default(3),
  /** Life-protection queries (per requester, or sent by this municipality) that raise an alert. */
  ALERT_LIFE_PROTECTION_THRESHOLD: z.coerce.number().int().min(1).max(100_000).default(3),
  /** Refused staff sign-ins from one client address within ALERT_SIGNIN_WINDOW_SECONDS that raise an alert. */
  ALERT_SIGNIN_FAILURE_THRESHOLD: z.coerce.number().int().min(1).max(100_000).default(20),
  /** The burst window of that detector (shorter than ALERT_WINDOW_SECONDS: guessing is fast). */
  ALERT_SIGNIN_WINDOW_SECONDS: z.coerce.number().int().min(60).max(30 * 86_400).default(900),
};

export class AlertRow extends Model<InferAttributes<AlertRow>, InferCreationAttributes<AlertRow>> {
  declare id: string;
  declare kind: string;
  /** What the pattern is about, e.g. `requester:112241`; with `kind`, what a repeat is. */
  declare key: string;
  /** The subject as this member's log names it (addressee number, code, staff id or member), or null. */
  declare subject: string | null;
  declare count: number;
  declare threshold: number;
  declare windowFrom: string;
  declare windowTo: string;
  /** JSON metadata of the finding (requesters, peers' median…); never personal data. */
  declare details: string;
  /** JSON array of the access-log seqs that make up the pattern. */
  declare evidence: string;
  declare raisedAt: string;
  declare createdAt: CreationOptional<Date>;
}

export type AlertModel = typeof AlertRow;

/** The alerts table of one member's database (a fresh class per database). Protect it with protectAppendOnly. */
export function defineAlerts(sequelize: Sequelize): AlertModel {
  class Alert extends AlertRow {}
  Alert.init({
    id: { type: DataTypes.STRING(36), primaryKey: true },
    kind: { type: DataTypes.STRING(40), allowNull: false },
    key: { type: DataTypes.STRING(120), allowNull: false },
    subject: { type: DataTypes.STRING(64), allowNull: true },
    count: { type: DataTypes.INTEGER, allowNull: false },
    threshold: { type: DataTypes.FLOAT, allowNull: false },
    windowFrom: { type: DataTypes.STRING(30), allowNull: false },
    windowTo: { type: DataTypes.STRING(30), allowNull: false },
    details: { type: DataTypes.TEXT, allowNull: false },
    evidence: { type: DataTypes.TEXT, allowNull: false },
    raisedAt: { type: DataTypes.STRING(30), allowNull: false },
    createdAt: DataTypes.DATE,
  }, { sequelize, tableName: ALERT_TABLE, updatedAt: false, indexes: [{ fields: ['kind', 'key', 'raisedAt'] }, { fields: ['raisedAt'] }] });
  return Alert;
}

/* ---------- reading the window ---------- */

/** The part of an access-log entry detectors look at (JSON columns parsed). */
export interface WindowEntry {
  seq: number;
  at: string;
  actorType: string;
  actorId: string;
  actingMunicipality: string | null;
  subject: string | null;
  action: string;
  legalBasis: string | null;
  outcome: string;
  reason: string | null;
  flags: string[];
  details: Record<string, unknown>;
}

const parse = <T>(text: unknown, fallback: T): T => {
  try {
    return (JSON.parse(String(text)) as T) ?? fallback;
  } catch {
    return fallback;
  }
};

/** Entries of the given actions in [from, to] (ISO text order is time order), oldest first. */
export async function entriesInWindow(log: AccessLogModel, actions: string[], window: { from: string; to: string }): Promise<WindowEntry[]> {
  if (actions.length === 0) return [];
  const rows = await log.findAll({
    where: { at: { [Op.gte]: window.from, [Op.lte]: window.to }, action: { [Op.in]: actions } },
    attributes: ['seq', 'at', 'actorType', 'actorId', 'actingMunicipality', 'subject', 'action', 'legalBasis', 'outcome', 'reason', 'flags', 'details'],
    order: [['seq', 'ASC']], raw: true,
  }) as unknown as Record<string, unknown>[];
  return rows.map((r) => ({
    seq: Number(r.seq), at: String(r.at), actorType: String(r.actorType), actorId: String(r.actorId),
    actingMunicipality: (r.actingMunicipality as string | null) ?? null, subject: (r.subject as string | null) ?? null,
    action: String(r.action), legalBasis: (r.legalBasis as string | null) ?? null, outcome: String(r.outcome),
    reason: (r.reason as string | null) ?? null, flags: parse<string[]>(r.flags, []), details: parse<Record<string, unknown>>(r.details, {}),
  }));
}

/** The window ending at `now`. */
export const windowEnding = (now: Date, seconds: number): { from: string; to: string } =>
  ({ from: new Date(now.getTime() - seconds * 1000).toISOString(), to: now.toISOString() });

/* ---------- findings ---------- */

/** One pattern a detector found; stored as an alert unless raised within the window already. */
export interface AlertFinding {
  kind: AlertKind;
  key: string;
  subject: string | null;
  count: number;
  threshold: number;
  details: Record<string, unknown>;
  evidence: number[];
}

export function groupBy<T>(items: T[], keyOf: (item: T) => string | null): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    if (key === null) continue;
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One finding per group whose size reaches `threshold`. */
export function countingFindings(
  groups: Map<string, WindowEntry[]>, threshold: number,
  make: (key: string, entries: WindowEntry[]) => Omit<AlertFinding, 'count' | 'threshold' | 'evidence'>,
): AlertFinding[] {
  const found: AlertFinding[] = [];
  for (const [key, entries] of groups) {
    if (entries.length < threshold) continue;
    found.push({ ...make(key, entries), count: entries.length, threshold, evidence: evidenceOf(entries) });
  }
  return found;
}

export const evidenceOf = (entries: WindowEntry[]): number[] => entries.map((e) => e.seq).slice(-MAX_EVIDENCE);

/** Life-protection is read from the basis or the flags, as the console's filter does. */
export const isLifeProtection = (e: WindowEntry): boolean => e.legalBasis === 'life-protection' || e.flags.includes('life-protection');

/**
 * Refused sign-ins grouped by client address (the entries of the member's sign-in, lockout and
 * password-change actions): one finding per address with at least `threshold` refusals. Details
 * count the accounts aimed at and the unknown names, never a name itself.
 */
export function signInFailureFindings(entries: WindowEntry[], threshold: number): AlertFinding[] {
  const refused = entries.filter((e) => e.outcome === 'denied');
  return countingFindings(groupBy(refused, (e) => (typeof e.details.address === 'string' ? e.details.address : null)), threshold, (address, group) => ({
    kind: 'staff_sign_in_failures', key: `address:${address}`, subject: null,
    details: {
      address,
      accounts: new Set(group.filter((e) => e.actorId !== 'unknown').map((e) => e.actorId)).size,
      unknownNames: new Set(group.filter((e) => e.actorId === 'unknown').map((e) => String(e.details.name ?? ''))).size,
      lockouts: group.filter((e) => e.reason === 'repeated-failures').length,
    },
  }));
}

/* ---------- storing and reading alerts ---------- */

export interface AlertView {
  id: string;
  kind: string;
  key: string;
  subject: string | null;
  count: number;
  threshold: number;
  window: { from: string; to: string };
  details: Record<string, unknown>;
  evidence: number[];
  raisedAt: string;
}

const toView = (r: InferAttributes<AlertRow>): AlertView => ({
  id: r.id, kind: r.kind, key: r.key, subject: r.subject ?? null, count: Number(r.count), threshold: Number(r.threshold),
  window: { from: r.windowFrom, to: r.windowTo }, details: parse<Record<string, unknown>>(r.details, {}),
  evidence: parse<number[]>(r.evidence, []), raisedAt: r.raisedAt,
});

export interface StoreOptions {
  sequelize: Sequelize;
  Alerts: AlertModel;
  windowSeconds: number;
  window: { from: string; to: string };
  now: Date;
  /** Logs one raised alert in the member's access log, in the transaction that stores it. */
  logRaised(t: Transaction, alert: AlertView): Promise<unknown>;
}

/** Stores the findings not raised within the window already; returns the alerts raised now. */
export function storeFindings(findings: AlertFinding[], o: StoreOptions): Promise<AlertView[]> {
  if (findings.length === 0) return Promise.resolve([]);
  return inTransaction(o.sequelize, async (t) => {
    const since = new Date(o.now.getTime() - o.windowSeconds * 1000).toISOString();
    const raised: AlertView[] = [];
    for (const f of findings) {
      const repeat = await o.Alerts.findOne({ where: { kind: f.kind, key: f.key, raisedAt: { [Op.gte]: since } }, attributes: ['id'], raw: true, transaction: t });
      if (repeat) continue;
      const row = {
        id: randomUUID(), kind: f.kind, key: f.key.slice(0, 120), subject: f.subject, count: f.count, threshold: f.threshold,
        windowFrom: o.window.from, windowTo: o.window.to, details: JSON.stringify(f.details), evidence: JSON.stringify(f.evidence),
        raisedAt: o.now.toISOString(),
      };
      await o.Alerts.create(row, { transaction: t });
      const view = toView(row as InferAttributes<AlertRow>);
      await o.logRaised(t, view);
      raised.push(view);
    }
    return raised;
  });
}

const time = dateTimeFilter();

/** Query string of GET /alerts. */
export const alertFilterSchema = z.object({
  kind: z.enum(ALERT_KINDS, { error: `must be one of ${ALERT_KINDS.join(', ')}` }).optional(),
  from: time.optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(500, 'must be at most 500').default(100),
}).strict();
export type AlertFilter = z.infer<typeof alertFilterSchema>;

/** Alerts, newest first. */
export async function listAlerts(Alerts: AlertModel, filter: AlertFilter, transaction?: Transaction): Promise<AlertView[]> {
  const where: Record<string, unknown> = {};
  if (filter.kind) where.kind = filter.kind;
  if (filter.from) where.raisedAt = { [Op.gte]: filter.from };
  const rows = await Alerts.findAll({ where, order: [['raisedAt', 'DESC'], ['id', 'ASC']], limit: filter.limit, raw: true, transaction });
  return rows.map(toView);
}

/** What a member's alert capability offers its privacy officers. */
export interface AlertConsole {
  /** Lists alerts and logs the reading, in one transaction. */
  list(actor: StaffActor, filter: AlertFilter): Promise<AlertView[]>;
  /** Runs the detectors now (logged as the officer's act) and returns the alerts raised. */
  run(actor: StaffActor): Promise<AlertView[]>;
}

/** GET /alerts and POST /alerts/run behind `guard` (the member's login and the privacy-officer role). */
export function alertRoutes(c: AlertConsole, guard: RequestHandler[]): Router {
  const router = Router();
  router.get('/alerts', ...guard, async (req, res) => {
    const filter = parseInput(alertFilterSchema, req.query, 'query');
    res.json({ alerts: await c.list(staffActorOf(req), filter) });
  });
  router.post('/alerts/run', ...guard, async (req, res) => {
    res.json({ raised: await c.run(staffActorOf(req)) });
  });
  return router;
}
