/**
 * Search parameters of the FHIR API (FHIR R4 §3.1.1 search.html): the table below is what the
 * routes parse and what metadata.ts advertises, so the CapabilityStatement cannot promise a
 * parameter the server ignores. Unknown parameters are refused (400 naming them) rather than
 * silently ignored, so a client never mistakes an unfiltered answer for a filtered one.
 */
import { AppError } from '../../../shared/platform/errors.ts';
import { calendarDate } from '../../../shared/platform/dates.ts';
import { badParameter } from './outcomes.ts';

export interface SearchParamDefinition {
  name: string;
  type: 'reference' | 'date' | 'token' | 'number' | 'string';
  definition?: string;
  documentation: string;
}

/** Immunization search parameters (R4 Immunization search parameters). */
export const IMMUNIZATION_SEARCH_PARAMS: SearchParamDefinition[] = [
  {
    name: 'patient', type: 'reference', definition: 'http://hl7.org/fhir/SearchParameter/Immunization-patient',
    documentation: 'Required: Patient/{id}, {id} or the absolute URL of a Patient this server serves. Searches are per resident.',
  },
  {
    name: 'date', type: 'date', definition: 'http://hl7.org/fhir/SearchParameter/clinical-date',
    documentation: 'occurrenceDateTime; prefixes eq, ne, gt, lt, ge, le, sa, eb; YYYY, YYYY-MM or YYYY-MM-DD; repeat for a range (AND).',
  },
];

/** Result parameters this server honours (FHIR R4 §3.1.1.5). */
export const RESULT_PARAMS = {
  _count: 'Page size, 1–100 (default 20).',
  _offset: 'Index of the first match on this page (the next/previous links carry it).',
  _summary: 'count only: a Bundle with total and no entry.',
  _elements: 'Comma-separated top-level elements; mandatory elements are always returned and the resource is tagged SUBSETTED.',
} as const;

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 100;

const DATE_PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb'] as const;
type DatePrefix = (typeof DATE_PREFIXES)[number];
const DATE_VALUE = new RegExp(`^(${DATE_PREFIXES.join('|')})?(\\d{4})(?:-(\\d{2})(?:-(\\d{2}))?)?$`);

export interface DateFilter {
  prefix: DatePrefix;
  /** The value as written (for the self link). */
  raw: string;
  /** First and last calendar day the value covers (its implicit range, FHIR R4 §3.1.1.4.2). */
  start: string;
  end: string;
}

const lastDayOfMonth = (year: number, month: number): number => new Date(Date.UTC(year, month, 0)).getUTCDate();

/** The range's first and last day, each checked by the project's one date validator (shared/platform/dates.ts). */
function checkedRange(start: string, end: string): { start: string; end: string } {
  for (const day of [start, end]) {
    const issue = calendarDate().safeParse(day).error?.issues[0];
    if (issue) throw badParameter('date', issue.message);
  }
  return { start, end };
}

/**
 * Parses one `date` value: an optional prefix, then YYYY, YYYY-MM or YYYY-MM-DD. Its implicit
 * range is the whole year, month or day, whose first and last days must be calendar dates in the
 * project's plausible range (no year 0000 or 0001, no 2021-02-30). A time part is refused:
 * occurrences are calendar days.
 */
export function parseDateFilter(raw: string): DateFilter {
  const m = DATE_VALUE.exec(raw);
  const rule = `must be [${DATE_PREFIXES.join('|')}]YYYY[-MM[-DD]]`;
  if (!m) throw badParameter('date', rule);
  const prefix = (m[1] ?? 'eq') as DatePrefix;
  const year = Number(m[2]);
  if (m[4] !== undefined) {
    const day = `${m[2]}-${m[3]}-${m[4]}`;
    return { prefix, raw, ...checkedRange(day, day) };
  }
  if (m[3] !== undefined) {
    const month = Number(m[3]);
    if (month < 1 || month > 12) throw badParameter('date', 'month must be 01–12');
    return { prefix, raw, ...checkedRange(`${m[2]}-${m[3]}-01`, `${m[2]}-${m[3]}-${String(lastDayOfMonth(year, month)).padStart(2, '0')}`) };
  }
  return { prefix, raw, ...checkedRange(`${m[2]}-01-01`, `${m[2]}-12-31`) };
}

/**
 * Whether a calendar day (YYYY-MM-DD, itself a one-day range) matches a date filter, by the
 * range comparisons of FHIR R4 §3.1.1.4.2 (for a one-day target, sa = gt and eb = lt).
 */
export function matchesDate(day: string, f: DateFilter): boolean {
  switch (f.prefix) {
    case 'eq': return day >= f.start && day <= f.end;
    case 'ne': return day < f.start || day > f.end;
    case 'gt': case 'sa': return day > f.end;
    case 'lt': case 'eb': return day < f.start;
    case 'ge': return day >= f.start;
    case 'le': return day <= f.end;
  }
}

export interface ResultParams {
  count: number;
  offset: number;
  summaryCount: boolean;
  elements: string[] | null;
}

const single = (query: Record<string, unknown>, name: string): string | undefined => {
  const v = query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badParameter(name, 'must be given once');
  return v;
};

/** `_count`, `_offset`, `_summary`, `_elements` (and `_format`, accepted for JSON only). */
export function parseResultParams(query: Record<string, unknown>, elementNames: readonly string[]): ResultParams {
  const count = single(query, '_count');
  const offset = single(query, '_offset');
  const summary = single(query, '_summary');
  const elements = single(query, '_elements');
  const format = single(query, '_format');
  if (count !== undefined && !(/^\d{1,3}$/.test(count) && Number(count) >= 1 && Number(count) <= MAX_COUNT)) {
    throw badParameter('_count', `must be a whole number from 1 to ${MAX_COUNT}`);
  }
  if (offset !== undefined && !/^\d{1,6}$/.test(offset)) throw badParameter('_offset', 'must be a whole number from 0');
  if (summary !== undefined && summary !== 'count' && summary !== 'false') throw badParameter('_summary', 'only count (or false) is supported');
  if (format !== undefined && !['json', 'application/json', 'application/fhir+json'].includes(format)) {
    throw badParameter('_format', 'only json is supported');
  }
  let list: string[] | null = null;
  if (elements !== undefined) {
    list = elements.split(',').map((e) => e.trim()).filter(Boolean);
    const unknown = list.find((e) => !elementNames.includes(e));
    if (list.length === 0 || unknown !== undefined) throw badParameter('_elements', `must list elements of ${elementNames.join(', ')}`);
  }
  return { count: count === undefined ? DEFAULT_COUNT : Number(count), offset: offset === undefined ? 0 : Number(offset), summaryCount: summary === 'count', elements: list };
}

/** Refuses any parameter not in `known` (400 naming it). */
export function refuseUnknownParams(query: Record<string, unknown>, known: readonly string[]): void {
  const unknown = Object.keys(query).find((k) => !known.includes(k));
  if (unknown !== undefined) throw badParameter(unknown, `is not a supported parameter here (supported: ${known.join(', ')})`);
}

/**
 * The resource id a `patient` reference names: `{id}`, `Patient/{id}` or `{base}/Patient/{id}`.
 * A reference to another server, or to another type, is a 400.
 */
export function patientIdOf(value: string, base: string): string {
  const local = value.startsWith(`${base}/`) ? value.slice(base.length + 1) : value;
  const m = /^(?:Patient\/)?([A-Za-z0-9\-.]{1,64})$/.exec(local);
  if (!m) throw badParameter('patient', 'must be {id}, Patient/{id} or the absolute URL of a Patient of this server');
  return m[1]!;
}

/** `_elements` applied to a resource (R4 §3.1.1.5.9): the listed elements and the mandatory ones, tagged SUBSETTED. */
export function subset<T extends { resourceType: string; id: string; meta: object }>(resource: T, elements: string[], mandatory: readonly string[]): Partial<T> {
  const keep = new Set(['resourceType', 'id', 'meta', ...mandatory, ...elements]);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resource)) if (keep.has(k)) out[k] = v;
  const meta = resource.meta as { tag?: unknown[] };
  out.meta = { ...meta, tag: [...(meta.tag ?? []), { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' }] };
  return out as Partial<T>;
}

export interface BundleLink { relation: string; url: string }

/**
 * A searchset Bundle (R4 §3.1.1.3): `total` always, `entry` only when there is a match on the page
 * (an empty array is not valid FHIR JSON), and self/first/previous/next links a client can follow.
 */
export function searchsetBundle(options: {
  total: number;
  entries: { fullUrl: string; resource: unknown }[];
  page: ResultParams;
  /** The search URL without the paging parameters. */
  url: (paging: { count: number; offset: number }) => string;
}) {
  const { total, entries, page, url } = options;
  const link: BundleLink[] = [{ relation: 'self', url: url({ count: page.count, offset: page.offset }) }];
  if (!page.summaryCount) {
    link.push({ relation: 'first', url: url({ count: page.count, offset: 0 }) });
    if (page.offset > 0) link.push({ relation: 'previous', url: url({ count: page.count, offset: Math.max(0, page.offset - page.count) }) });
    if (page.offset + page.count < total) link.push({ relation: 'next', url: url({ count: page.count, offset: page.offset + page.count }) });
  }
  return {
    resourceType: 'Bundle' as const,
    type: 'searchset' as const,
    total,
    link,
    ...(entries.length > 0 ? { entry: entries.map((e) => ({ ...e, search: { mode: 'match' as const } })) } : {}),
  };
}

/** Rejects a query value that Express parsed into an array or object where one string belongs. */
export function stringValues(query: Record<string, unknown>, name: string): string[] {
  const v = query[name];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x): x is string => typeof x === 'string')) throw new AppError(400, 'validation', `Invalid parameter ${name}`, { field: name, rule: 'must be a string' });
  return list;
}
