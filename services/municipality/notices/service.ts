/**
 * Resident notification (issue 9): no cross-municipality access to a resident's data is silent.
 * Notices are made from the tamper-evident access log itself — every release to another
 * municipality (QUERY_ANSWER), every import from one (RECORDS_IMPORT), every correction sent or
 * received — so a code path cannot forget one: whatever was logged is noticed. A cursor records
 * how far the log has been read; one entry makes at most one notice (unique seq). Each notice has
 * an outbox entry that a delivery worker hands to a pluggable sender (post or portal) and marks
 * delivered. The disclosure report catches up first, so it always shows every notice.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { runEvery, type PeriodicTask } from '../../../shared/access-log/witness.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { isValidMunicipalityCode } from '../../../shared/identifiers.ts';
import { Actions } from '../access-log/actions.ts';
import { entriesAfter } from '../access-log/model.ts';
import { residentsByIds, residentsBySubjects } from '../residents/model.ts';
import type { MunicipalityContext } from '../context.ts';
import { backoffSeconds } from '../../../shared/platform/backoff.ts';
import {
  dueDeliveries, insertNotices, markDelivered, noticesOfResident, readCursor, updateDelivery, writeCursor,
  type NoticeChannel, type NoticeDeliveryState, type NoticeKind, type ResidentNotice,
} from './model.ts';

/** The access-log actions that are a cross-municipality access to a resident's data. */
const NOTICED_ACTIONS = [Actions.QUERY_ANSWER, Actions.RECORDS_IMPORT, Actions.CORRECTION_SEND, Actions.CORRECTION_RECEIVE];

interface LogEntry {
  seq: number;
  at: string;
  requestId: string;
  actorId: string;
  actingMunicipality: string | null;
  subject: string | null;
  action: string;
  purpose: string | null;
  legalBasis: string | null;
  outcome: string;
  recordIds: string;
  details: string;
}

const parse = (text: string): Record<string, unknown> => {
  try {
    return (JSON.parse(text) as Record<string, unknown>) ?? {};
  } catch {
    return {};
  }
};
const municipalityOr = (value: unknown): string | null => (typeof value === 'string' && isValidMunicipalityCode(value) ? value : null);

/** What kind of notice an entry makes, and the other municipality; null when it makes none. */
function classify(e: LogEntry): { kind: NoticeKind; other: string | null } | null {
  const details = parse(e.details);
  switch (e.action) {
    case Actions.QUERY_ANSWER: {
      const requester = municipalityOr(e.actorId);
      // A forward refused as a whole names no resident; a refusal of one subject does.
      if (!requester) return null;
      return { kind: e.outcome === 'allowed' ? 'records-released' : 'query-refused', other: requester };
    }
    case Actions.RECORDS_IMPORT:
      return { kind: 'records-imported', other: municipalityOr(details.source) };
    case Actions.CORRECTION_SEND:
      return e.outcome === 'allowed' ? { kind: 'correction-sent', other: municipalityOr(details.recipient) } : null;
    case Actions.CORRECTION_RECEIVE:
      return e.outcome === 'allowed' ? { kind: 'correction-received', other: municipalityOr(e.actingMunicipality) } : null;
    default:
      return null;
  }
}

/**
 * Turns access-log entries past the cursor into notices and outbox entries, a batch per
 * transaction, until the log is read to its head. Returns how many notices were made.
 */
export async function catchUpNotices(ctx: MunicipalityContext, batch = 500): Promise<number> {
  let made = 0;
  for (;;) {
    const read = await inTransaction(ctx.sequelize, async (t) => {
      const from = await readCursor(ctx.models.NoticeCursor, t);
      const entries = await entriesAfter(ctx.models.AccessLog, from, NOTICED_ACTIONS, batch, t) as unknown as LogEntry[];
      if (entries.length === 0) return 0;
      const subjects = [...new Set(entries.map((e) => e.subject).filter((s): s is string => Boolean(s)))];
      // Subjects are addressee numbers, or our code for the resident when a query was refused before matching.
      const residents = await residentsBySubjects(ctx.models.Resident, subjects, t);
      const bySubject = new Map<string, string>();
      for (const r of residents) {
        bySubject.set(r.addresseeNumber, r.id);
        if (r.code) bySubject.set(r.code, r.id);
      }
      const notices: ResidentNotice[] = [];
      for (const e of entries) {
        const residentId = e.subject ? bySubject.get(e.subject) : undefined;
        const kind = classify(e);
        if (!residentId || !kind) continue;
        notices.push({
          id: randomUUID(), accessSeq: Number(e.seq), residentId, kind: kind.kind, otherMunicipality: kind.other, purpose: e.purpose,
          legalBasis: e.legalBasis, outcome: e.outcome, requestId: e.requestId, recordCount: (JSON.parse(e.recordIds) as unknown[]).length,
          occurredAt: e.at,
        });
      }
      await insertNotices(ctx.models, notices, ctx.config.NOTICE_CHANNEL, new Date().toISOString(), randomUUID, t);
      await writeCursor(ctx.models.NoticeCursor, Number(entries[entries.length - 1]!.seq), t);
      made += notices.length;
      return entries.length;
    });
    if (read < batch) return made;
  }
}

/* ---------- delivery ---------- */

/** What a sender receives: the addressee number and the access metadata, no other personal data. */
export interface NoticeDelivery {
  noticeId: string;
  channel: NoticeChannel;
  addresseeNumber: string;
  kind: NoticeKind;
  otherMunicipality: string | null;
  purpose: string | null;
  legalBasis: string | null;
  outcome: string;
  occurredAt: string;
}

/** Delivers one notice (prints a letter, posts to the portal…); throwing leaves it pending for a retry. */
export interface NoticeSender {
  send(delivery: NoticeDelivery): Promise<void>;
}

/** The default sender: one line in the member's own log per notice (a print shop or portal would read these). */
export function logNoticeSender(logger: Logger): NoticeSender {
  return {
    async send(d) {
      logger.info({ notice: d }, 'resident notice dispatched');
    },
  };
}

export interface DeliveryRun {
  made: number;
  delivered: number;
  deferred: number;
}

/** Makes notices from the log, then hands due deliveries to the sender. */
export async function deliverNotices(ctx: MunicipalityContext, sender: NoticeSender, options: { now?: Date; limit?: number } = {}): Promise<DeliveryRun> {
  const made = await catchUpNotices(ctx);
  const due = await dueDeliveries(ctx.models, options.now ?? new Date(), options.limit ?? 200);
  const residents = due.length ? await residentsByIds(ctx.models.Resident, [...new Set(due.map((d) => d.notice.residentId))]) : [];
  const addressee = new Map(residents.map((r) => [r.id, r.addresseeNumber]));
  const run: DeliveryRun = { made, delivered: 0, deferred: 0 };
  const delivered: string[] = [];
  for (const { delivery, notice } of due) {
    try {
      await sender.send({
        noticeId: notice.id, channel: delivery.channel, addresseeNumber: addressee.get(notice.residentId) ?? 'unknown', kind: notice.kind,
        otherMunicipality: notice.otherMunicipality, purpose: notice.purpose, legalBasis: notice.legalBasis, outcome: notice.outcome,
        occurredAt: notice.occurredAt,
      });
      delivered.push(delivery.id);
      run.delivered += 1;
    } catch (err) {
      const attempts = delivery.attempts + 1;
      await updateDelivery(ctx.models.NoticeOutbox, delivery.id, {
        attempts, lastError: String((err as Error).message ?? err).slice(0, 200), nextAttemptAt: new Date(Date.now() + backoffSeconds(attempts) * 1000).toISOString(),
      });
      run.deferred += 1;
    }
  }
  // Delivery is at least once: a crash before this line hands this round's notices over again.
  await markDelivered(ctx.models.NoticeOutbox, delivered, new Date().toISOString());
  return run;
}

/** Runs a round every NOTICE_INTERVAL_SECONDS (0 = on demand only: POST /notices/outbox/run). */
export function startNoticeWorker(ctx: MunicipalityContext, sender: NoticeSender): PeriodicTask {
  return runEvery(ctx.config.NOTICE_INTERVAL_SECONDS, async () => {
    const run = await deliverNotices(ctx, sender);
    if (run.made || run.delivered || run.deferred) ctx.logger.info({ ...run }, 'resident notices');
  }, ctx.logger, 'resident notices');
}

/* ---------- views ---------- */

export interface NoticeView {
  id: string;
  /** The access-log entry the notice reports (the reference in the disclosure report). */
  reference: number;
  at: string;
  kind: NoticeKind;
  otherMunicipality: string | null;
  purpose: string | null;
  legalBasis: string | null;
  outcome: string;
  requestId: string;
  recordCount: number;
  delivery: Pick<NoticeDeliveryState, 'channel' | 'status' | 'deliveredAt' | 'attempts'> | null;
}

/** A resident's notices with their delivery state (the caller logs the reading). */
export async function residentNotices(ctx: MunicipalityContext, residentId: string, t?: Parameters<typeof noticesOfResident>[2]): Promise<NoticeView[]> {
  return (await noticesOfResident(ctx.models, residentId, t)).map((n) => ({
    id: n.id, reference: n.accessSeq, at: n.occurredAt, kind: n.kind, otherMunicipality: n.otherMunicipality, purpose: n.purpose,
    legalBasis: n.legalBasis, outcome: n.outcome, requestId: n.requestId, recordCount: n.recordCount,
    delivery: n.delivery ? { channel: n.delivery.channel, status: n.delivery.status, deliveredAt: n.delivery.deliveredAt, attempts: n.delivery.attempts } : null,
  }));
}
