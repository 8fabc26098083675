/**
 * Reading an access log for a privacy officer: filters, paging and CSV export over the
 * `access_log` table, shared by every member that serves a console (municipalities, gateway).
 */
import { Op, type Transaction, type WhereOptions } from 'sequelize';
import { z } from 'zod';
import { requestIdSchema, withoutMyNumber } from '../platform/validation.ts';
import { dateTimeFilter } from '../platform/dates.ts';
import type { AccessLogModel, AccessLogRow } from './chain.ts';

/** The flags a privacy officer filters on; each one is read from the entry, not only from `flags`. */
export const FILTER_FLAGS = ['life-protection', 'identity_mismatch', 'denied'] as const;
export type FilterFlag = (typeof FILTER_FLAGS)[number];

export const MAX_PAGE = 200;

const token = (max: number, rule: string) => z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`).regex(/^[\w.:@+\-]+$/u, rule)
  .superRefine(withoutMyNumber);
const time = dateTimeFilter();

/**
 * Query-string filters of GET /audit/entries and /audit/export.csv. Unknown parameters are
 * refused (a misspelt filter must not silently widen the result).
 */
export const accessFilterSchema = z.object({
  /** Addressee number at a municipality, code at the gateway. Never a My Number. */
  subject: token(64, 'must be letters, digits or . _ : @ + -')
    .optional(),
  /**
   * A resident's name or kana (part of either), at a municipality: the entries about every
   * resident it finds. Never logged as typed (the reading records how many residents matched).
   */
  resident: z.string().transform((s) => s.normalize('NFKC').trim()).pipe(z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters'))
    .superRefine(withoutMyNumber).optional(),
  /** Staff id, or member id for federation requests. */
  actor: token(64, 'must be letters, digits or . _ : @ + -').optional(),
  action: z.string().regex(/^[a-z_]+(\.[a-z_]+)*$/, 'must be an action name such as resident.read').max(64, 'must be at most 64 characters').optional(),
  purpose: token(64, 'must be a purpose word such as next-dose-scheduling').optional(),
  legalBasis: token(64, 'must be a legal basis word such as consent').optional(),
  outcome: z.enum(['allowed', 'denied'], { error: 'must be allowed or denied' }).optional(),
  flag: z.enum(FILTER_FLAGS, { error: `must be one of ${FILTER_FLAGS.join(', ')}` }).optional(),
  actingMunicipality: z.string().regex(/^[\w-]{1,32}$/, 'must be a municipality code or member id').optional(),
  requestId: requestIdSchema.optional(),
  from: time.optional(),
  to: time.optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(MAX_PAGE, `must be at most ${MAX_PAGE}`).default(50),
  /** Seq of the last entry of the previous page; the next page holds older entries. */
  cursor: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').optional(),
}).strict().refine((f) => !f.from || !f.to || f.from <= f.to, { message: 'must not be before from', path: ['to'] });

export type AccessFilter = z.infer<typeof accessFilterSchema> & {
  /** The subjects a `resident` name search found (set by the console, never by a query string). */
  subjects?: string[];
};

/** An entry as the API shows it: listed fields, JSON columns parsed. */
export interface AccessEntryView {
  seq: number;
  at: string;
  requestId: string;
  actorType: string;
  actorId: string;
  actorRole: string | null;
  actingMunicipality: string | null;
  subject: string | null;
  action: string;
  purpose: string | null;
  legalBasis: string | null;
  consentId: string | null;
  outcome: string;
  reason: string | null;
  recordIds: string[];
  requestHash: string | null;
  flags: string[];
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** A JSON column as stored; a row edited by hand may hold anything, so parsing never throws. */
function parseJson<T>(text: unknown, fallback: T): T {
  try {
    const value = JSON.parse(String(text));
    return value ?? fallback;
  } catch {
    return fallback;
  }
}

export function toEntryView(row: AccessLogRow | Record<string, unknown>): AccessEntryView {
  const r = row as AccessLogRow;
  return {
    seq: Number(r.seq), at: r.at, requestId: r.requestId, actorType: r.actorType, actorId: r.actorId,
    actorRole: r.actorRole ?? null, actingMunicipality: r.actingMunicipality ?? null, subject: r.subject ?? null,
    action: r.action, purpose: r.purpose ?? null, legalBasis: r.legalBasis ?? null, consentId: r.consentId ?? null,
    outcome: r.outcome, reason: r.reason ?? null, recordIds: parseJson<string[]>(r.recordIds, []), requestHash: r.requestHash ?? null,
    flags: parseJson<string[]>(r.flags, []), details: parseJson<Record<string, unknown>>(r.details, {}), prevHash: r.prevHash, hash: r.hash,
  };
}

/** The flags an entry carries, including those implied by its basis, reason and outcome. */
export function flagsOf(entry: Pick<AccessEntryView, 'flags' | 'legalBasis' | 'reason' | 'outcome'>): string[] {
  const flags = new Set(entry.flags);
  if (entry.legalBasis === 'life-protection') flags.add('life-protection');
  if (entry.reason === 'identity_mismatch') flags.add('identity_mismatch');
  if (entry.outcome === 'denied') flags.add('denied');
  return [...flags];
}

function flagWhere(flag: FilterFlag): WhereOptions {
  const inFlags = { flags: { [Op.like]: `%${JSON.stringify(flag)}%` } };
  switch (flag) {
    case 'life-protection': return { [Op.or]: [{ legalBasis: 'life-protection' }, inFlags] };
    case 'identity_mismatch': return { [Op.or]: [{ reason: 'identity_mismatch' }, inFlags] };
    case 'denied': return { [Op.or]: [{ outcome: 'denied' }, inFlags] };
  }
}

/** The WHERE clause of a filter (without the cursor). */
export function whereOf(filter: Omit<AccessFilter, 'limit' | 'cursor'>): WhereOptions {
  const and: WhereOptions[] = [];
  if (filter.subject) and.push({ subject: filter.subject });
  if (filter.subjects) and.push({ subject: { [Op.in]: filter.subjects } });
  if (filter.actor) and.push({ actorId: filter.actor });
  if (filter.action) and.push({ action: filter.action });
  if (filter.purpose) and.push({ purpose: filter.purpose });
  if (filter.legalBasis) and.push({ legalBasis: filter.legalBasis });
  if (filter.outcome) and.push({ outcome: filter.outcome });
  if (filter.actingMunicipality) and.push({ actingMunicipality: filter.actingMunicipality });
  if (filter.requestId) and.push({ requestId: filter.requestId });
  if (filter.flag) and.push(flagWhere(filter.flag));
  // `at` is stored as ISO 8601 UTC text, so text order is time order.
  if (filter.from) and.push({ at: { [Op.gte]: filter.from } });
  if (filter.to) and.push({ at: { [Op.lte]: filter.to } });
  return { [Op.and]: and };
}

export interface EntryPage {
  entries: AccessEntryView[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: number | null;
}

/** One page of entries, newest first. Keyset paging on seq: stable while new entries arrive. */
export async function listEntries(log: AccessLogModel, filter: AccessFilter, transaction?: Transaction): Promise<EntryPage> {
  const where = filter.cursor ? { [Op.and]: [whereOf(filter), { seq: { [Op.lt]: filter.cursor } }] } : whereOf(filter);
  const rows = await log.findAll({ where, order: [['seq', 'DESC']], limit: filter.limit + 1, raw: true, transaction });
  const page = rows.slice(0, filter.limit).map(toEntryView);
  return { entries: page, nextCursor: rows.length > filter.limit ? page[page.length - 1]!.seq : null };
}

/** Every matching entry, newest first, read page by page (for exports of any size). */
export async function* iterateEntries(log: AccessLogModel, filter: Omit<AccessFilter, 'limit' | 'cursor'>, pageSize = 500): AsyncGenerator<AccessEntryView> {
  let cursor: number | undefined;
  for (;;) {
    const page = await listEntries(log, { ...filter, limit: pageSize, cursor } as AccessFilter);
    yield* page.entries;
    if (page.nextCursor === null) return;
    cursor = page.nextCursor;
  }
}

export async function findEntry(log: AccessLogModel, seq: number, transaction?: Transaction): Promise<AccessEntryView | null> {
  const row = await log.findOne({ where: { seq }, raw: true, transaction });
  return row ? toEntryView(row) : null;
}

/** Every entry of one request id (one trace across hops), in the order written. */
export async function entriesOfRequest(log: AccessLogModel, requestId: string, transaction?: Transaction): Promise<AccessEntryView[]> {
  const rows = await log.findAll({ where: { requestId }, order: [['seq', 'ASC']], limit: 1000, raw: true, transaction });
  return rows.map(toEntryView);
}

/* ---------- CSV (RFC 4180) ---------- */

export const CSV_COLUMNS = [
  'seq', 'at', 'requestId', 'actorType', 'actorId', 'actorRole', 'actingMunicipality', 'subject', 'action', 'purpose',
  'legalBasis', 'consentId', 'outcome', 'reason', 'flags', 'recordIds', 'requestHash', 'details', 'hash',
] as const;

/**
 * One CSV cell. A cell that a spreadsheet would run as a formula (starting with = + - @, or a tab
 * or carriage return before one) gets a leading apostrophe (OWASP CSV injection); then RFC 4180
 * quoting: a cell with a comma, quote or line break is quoted, quotes doubled.
 */
export function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV record with its CRLF terminator (RFC 4180 §2.1). */
export const csvRow = (values: unknown[]): string => `${values.map(csvCell).join(',')}\r\n`;

export const csvHeader = (): string => csvRow([...CSV_COLUMNS]);

export function entryCsvRow(entry: AccessEntryView): string {
  return csvRow(CSV_COLUMNS.map((c) => {
    if (c === 'flags') return flagsOf(entry).join(' ');
    if (c === 'recordIds') return entry.recordIds.join(' ');
    return entry[c];
  }));
}
