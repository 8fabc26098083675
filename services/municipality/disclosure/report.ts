/**
 * The resident's disclosure report (情報提供等記録): every access to one resident's data at this
 * municipality, including queries other municipalities made about them through the gateway. It
 * shows access metadata (when, who by role and municipality, what, why, on which basis, with what
 * outcome), never the records themselves and never a staff member's name or id.
 */
import { flagsOf, toEntryView } from '../../../shared/access-log/query.ts';
import {
  ACTION_LABELS, ACTOR_TYPE_LABELS, FLAG_LABELS, formatJst, LEGAL_BASIS_LABELS, labelOf, OUTCOME_LABELS, PURPOSE_LABELS, REASON_LABELS, ROLE_LABELS,
} from '../../../shared/access-log/labels.ts';
import type { Transaction } from 'sequelize';
import { inTransaction } from '../../../shared/platform/db.ts';
import { notFound } from '../../../shared/platform/errors.ts';
import type { MunicipalityContext } from '../context.ts';
import { findResidentByAddressee } from '../residents/service.ts';
import { Actions } from '../access-log/actions.ts';
import { logAccessBy, type Accessor } from '../access-log/service.ts';
import { entriesAbout } from '../access-log/model.ts';
import { catchUpNotices, residentNotices, type NoticeView } from '../notices/service.ts';

/** A report longer than this is cut (and says so); a resident's history is far shorter in practice. */
export const DISCLOSURE_LIMIT = 5000;

export interface DisclosureItem {
  /** The log entry's sequence number: the reference a resident quotes when asking about one access. */
  reference: number;
  at: string;
  requestId: string;
  who: {
    type: 'staff' | 'member' | 'system' | 'resident';
    /** The staff role at this municipality (clerk, privacy_officer…); null for other members. */
    role: string | null;
    /** The municipality whose staff or system made the access. */
    municipality: string | null;
  };
  /** True for a query between municipalities: another one asked about the resident, or this one asked another. */
  crossMunicipality: boolean;
  /**
   * The other municipality of a cross-municipality query: the one that asked (when it was
   * answered here) or the one asked (when staff here sent the query or imported its records).
   */
  otherMunicipality: string | null;
  /** asked-here: another municipality asked this one; asked-elsewhere: this one asked another. */
  direction: 'asked-here' | 'asked-elsewhere' | null;
  action: string;
  purpose: string | null;
  legalBasis: string | null;
  outcome: string;
  reason: string | null;
  flags: string[];
}

export interface DisclosureReport {
  municipality: { code: string; name: string };
  addresseeNumber: string;
  generatedAt: string;
  items: DisclosureItem[];
  truncated: boolean;
  /** Notices of every cross-municipality access to the resident's data, with their delivery (docs/DESIGN.md §4.11). */
  notices: NoticeView[];
}

const ACTOR_TYPES = ['staff', 'member', 'system', 'resident'] as const;

/** Actions by which staff here asked another municipality about the resident (details.source = that one). */
const OUTGOING = new Set<string>([Actions.QUERY_SEND, Actions.RECORDS_IMPORT, Actions.EXCEPTION_REQUEST]);

/**
 * Every access to one resident's data in this municipality's log, as the resident reads it. Entries
 * are found by subject: the addressee number (what staff and answered queries record) and the
 * resident's code (what a query refused before the resident was matched records).
 */
export async function disclosureItems(
  ctx: MunicipalityContext, resident: { addresseeNumber: string; code?: string | null }, t: Transaction,
): Promise<{ items: DisclosureItem[]; truncated: boolean }> {
  const self = ctx.config.MUNICIPALITY_CODE;
  const subjects = resident.code ? [resident.addresseeNumber, resident.code] : [resident.addresseeNumber];
  const rows = await entriesAbout(ctx.models.AccessLog, subjects, DISCLOSURE_LIMIT + 1, t);
  const items = rows.slice(0, DISCLOSURE_LIMIT).map(toEntryView).map((e): DisclosureItem => {
    const type = (ACTOR_TYPES as readonly string[]).includes(e.actorType) ? e.actorType as DisclosureItem['who']['type'] : 'system';
    const askedHere = type === 'member' || (e.actingMunicipality !== null && e.actingMunicipality !== self);
    const source = typeof e.details.source === 'string' ? e.details.source : null;
    const askedElsewhere = !askedHere && OUTGOING.has(e.action) && source !== null && source !== self;
    const crossMunicipality = askedHere || askedElsewhere;
    return {
      reference: e.seq, at: e.at, requestId: e.requestId,
      // Another member's actorRole names its staff member; the resident learns the municipality.
      who: { type, role: type === 'staff' || type === 'resident' ? e.actorRole : null, municipality: e.actingMunicipality ?? (type === 'member' ? e.actorId : null) },
      crossMunicipality,
      otherMunicipality: askedHere ? (e.actingMunicipality ?? e.actorId) : askedElsewhere ? source : null,
      direction: askedHere ? 'asked-here' : askedElsewhere ? 'asked-elsewhere' : null,
      action: e.action, purpose: e.purpose, legalBasis: e.legalBasis, outcome: e.outcome, reason: e.reason,
      flags: flagsOf(e),
    };
  });
  return { items, truncated: rows.length > DISCLOSURE_LIMIT };
}

/** Builds the report for one resident and logs that it was produced (by staff, or by the resident at their page), in one transaction. */
export async function disclosureReport(ctx: MunicipalityContext, actor: Accessor, addresseeNumber: string, now = new Date()): Promise<DisclosureReport> {
  // Notices are made from the log; reading it to its head first means the report misses none.
  await catchUpNotices(ctx);
  return inTransaction(ctx.sequelize, async (t) => {
    const resident = await findResidentByAddressee(ctx, addresseeNumber, t);
    if (!resident) throw notFound('Resident');
    const { items, truncated } = await disclosureItems(ctx, resident, t);
    await logAccessBy(ctx, t, actor, { action: Actions.DISCLOSURE_REPORT, subject: resident.addresseeNumber, outcome: 'allowed', details: { items: items.length } });
    return {
      municipality: { code: ctx.config.MUNICIPALITY_CODE, name: ctx.config.MUNICIPALITY_NAME },
      addresseeNumber: resident.addresseeNumber, generatedAt: now.toISOString(), items, truncated,
      notices: await residentNotices(ctx, resident.id, t),
    };
  });
}

/* ---------- printable page ---------- */

const escapeHtml = (value: unknown): string => String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const NOTICE_LABELS: Record<string, string> = {
  'records-released': '接種記録を他自治体へ提供',
  'query-refused': 'あなたについての照会を拒否',
  'records-imported': '接種記録を他自治体から取得',
  'correction-sent': '写しを持つ自治体へ訂正を通知',
  'correction-received': '記録元の自治体から訂正を受領',
};

const DELIVERY_LABELS: Record<string, string> = { pending: '送付待ち', delivered: '送付済み', mail: '郵送', portal: 'ポータル' };

/** A municipality by name where this one knows it (itself), else by its code. */
const municipalityLabel = (code: string | null, self: { code: string; name: string }): string =>
  (code === null ? '—' : code === self.code ? `${self.name}（当自治体）` : `自治体コード ${code}`);

const whoLabel = (item: DisclosureItem, self: { code: string; name: string }): string => {
  if (item.who.type === 'member') return `${escapeHtml(municipalityLabel(item.who.municipality, self))} の職員（ゲートウェイ経由）`;
  const role = escapeHtml(labelOf(ROLE_LABELS, item.who.role));
  if (item.who.type === 'staff' && item.direction === 'asked-elsewhere') {
    return `当自治体の${role} → ${escapeHtml(municipalityLabel(item.otherMunicipality, self))} へ照会（ゲートウェイ経由）`;
  }
  if (item.who.type === 'staff') return `${item.who.municipality === self.code ? '当自治体' : escapeHtml(municipalityLabel(item.who.municipality, self))}の${role}`;
  return escapeHtml(labelOf(ACTOR_TYPE_LABELS, item.who.type));
};

/** A time as the report prints it (JST), with the stored UTC instant kept in `datetime`. */
const timeCell = (iso: string) => `<time datetime="${escapeHtml(iso)}">${escapeHtml(formatJst(iso))}</time>`;

/** The report as a printable HTML page: no script, styles from a same-origin file (CSP 'self'). */
export function disclosureHtml(report: DisclosureReport): string {
  const self = report.municipality;
  const rows = report.items.map((i) => `
      <tr${i.flags.length ? ' class="flagged"' : ''}>
        <td>${escapeHtml(i.reference)}</td>
        <td>${timeCell(i.at)}</td>
        <td>${whoLabel(i, self)}</td>
        <td>${escapeHtml(labelOf(ACTION_LABELS, i.action))}</td>
        <td>${escapeHtml(labelOf(PURPOSE_LABELS, i.purpose))}</td>
        <td>${escapeHtml(labelOf(LEGAL_BASIS_LABELS, i.legalBasis))}</td>
        <td>${escapeHtml(labelOf(OUTCOME_LABELS, i.outcome))}${i.reason ? `（${escapeHtml(labelOf(REASON_LABELS, i.reason))}）` : ''}</td>
        <td>${escapeHtml(i.flags.map((f) => labelOf(FLAG_LABELS, f)).join('、'))}</td>
      </tr>`).join('');
  const notices = report.notices.map((n) => `
      <tr>
        <td>${escapeHtml(n.reference)}</td>
        <td>${timeCell(n.at)}</td>
        <td>${escapeHtml(labelOf(NOTICE_LABELS, n.kind))}</td>
        <td>${escapeHtml(municipalityLabel(n.otherMunicipality ?? null, self))}</td>
        <td>${escapeHtml(labelOf(PURPOSE_LABELS, n.purpose))}</td>
        <td>${escapeHtml(labelOf(DELIVERY_LABELS, n.delivery?.channel))}</td>
        <td>${escapeHtml(labelOf(DELIVERY_LABELS, n.delivery?.status))}</td>
      </tr>`).join('');
  return `<!doctype html>
<html lang="ja">
<head>
  <meta charset="utf-8">
  <title>情報提供等記録 — ${escapeHtml(report.municipality.name)}</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/console/disclosure.css">
</head>
<body>
  <header>
    <h1>情報提供等記録</h1>
    <dl>
      <dt>自治体</dt><dd>${escapeHtml(self.name)}（自治体コード ${escapeHtml(self.code)}）</dd>
      <dt>宛名番号</dt><dd>${escapeHtml(report.addresseeNumber)}</dd>
      <dt>作成日時</dt><dd>${timeCell(report.generatedAt)}</dd>
      <dt>件数</dt><dd>${report.items.length} 件${report.truncated ? '（以降省略）' : ''}</dd>
    </dl>
    <p class="note">日時はすべて日本標準時（JST）です。</p>
  </header>
  <table>
    <caption>あなたの情報へのアクセス</caption>
    <thead><tr>
      <th scope="col">番号</th><th scope="col">日時</th><th scope="col">誰が</th><th scope="col">内容</th>
      <th scope="col">目的</th><th scope="col">根拠</th><th scope="col">結果</th><th scope="col">注意</th>
    </tr></thead>
    <tbody>${rows || '\n      <tr><td colspan="8">記録はありません</td></tr>'}
    </tbody>
  </table>
  <table>
    <caption>他自治体とのやりとりのお知らせ</caption>
    <thead><tr>
      <th scope="col">番号</th><th scope="col">日時</th><th scope="col">内容</th><th scope="col">相手</th>
      <th scope="col">目的</th><th scope="col">送付方法</th><th scope="col">状態</th>
    </tr></thead>
    <tbody>${notices || '\n      <tr><td colspan="7">お知らせはありません</td></tr>'}
    </tbody>
  </table>
  <footer><p>「生命保護」：生命・身体の保護のため、本人の同意なしに提供された記録です。番号は問い合わせの際にお伝えください。</p></footer>
</body>
</html>
`;
}
