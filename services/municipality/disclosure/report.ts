/**
 * The resident's disclosure report (情報提供等記録): every access to one resident's data at this
 * municipality, including queries other municipalities made about them through the gateway. It
 * shows access metadata (when, who by role and municipality, what, why, on which basis, with what
 * outcome), never the records themselves and never a staff member's name or id.
 */
import { flagsOf, toEntryView } from '../../../shared/access-log/query.ts';
import { inTransaction } from '../../../shared/platform/db.ts';
import { notFound } from '../../../shared/platform/errors.ts';
import type { Actor } from '../staff/roles.ts';
import type { MunicipalityContext } from '../context.ts';
import { findResidentByAddressee } from '../residents/service.ts';
import { Actions } from '../access-log/actions.ts';
import { logStaffAccess } from '../access-log/service.ts';
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
  /** Notices of every cross-municipality access to the resident's data, with their delivery (issue 9). */
  notices: NoticeView[];
}

const ACTOR_TYPES = ['staff', 'member', 'system', 'resident'] as const;

/** Actions by which staff here asked another municipality about the resident (details.source = that one). */
const OUTGOING = new Set<string>([Actions.QUERY_SEND, Actions.RECORDS_IMPORT, Actions.EXCEPTION_REQUEST]);

/**
 * Builds the report for one resident and logs that it was produced, in one transaction. Entries
 * are found by subject: the addressee number (what staff and answered queries record) and the
 * resident's code (what a query refused before the resident was matched records).
 */
export async function disclosureReport(ctx: MunicipalityContext, actor: Actor, addresseeNumber: string, now = new Date()): Promise<DisclosureReport> {
  const self = ctx.config.MUNICIPALITY_CODE;
  // Notices are made from the log; reading it to its head first means the report misses none.
  await catchUpNotices(ctx);
  return inTransaction(ctx.sequelize, async (t) => {
    const resident = await findResidentByAddressee(ctx, addresseeNumber, t);
    if (!resident) throw notFound('Resident');
    const code = (resident as { code?: string | null }).code;
    const subjects = code ? [resident.addresseeNumber, code] : [resident.addresseeNumber];
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
        who: { type, role: type === 'staff' ? e.actorRole : null, municipality: e.actingMunicipality ?? (type === 'member' ? e.actorId : null) },
        crossMunicipality,
        otherMunicipality: askedHere ? (e.actingMunicipality ?? e.actorId) : askedElsewhere ? source : null,
        direction: askedHere ? 'asked-here' : askedElsewhere ? 'asked-elsewhere' : null,
        action: e.action, purpose: e.purpose, legalBasis: e.legalBasis, outcome: e.outcome, reason: e.reason,
        flags: flagsOf(e),
      };
    });
    await logStaffAccess(ctx, t, actor, { action: Actions.DISCLOSURE_REPORT, subject: resident.addresseeNumber, outcome: 'allowed', details: { items: items.length } });
    return {
      municipality: { code: self, name: ctx.config.MUNICIPALITY_NAME },
      addresseeNumber: resident.addresseeNumber, generatedAt: now.toISOString(), items, truncated: rows.length > DISCLOSURE_LIMIT,
      notices: await residentNotices(ctx, resident.id, t),
    };
  });
}

/* ---------- printable page ---------- */

const escapeHtml = (value: unknown): string => String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const ACTION_LABELS: Record<string, string> = {
  'resident.read': '住民情報の閲覧 / resident viewed',
  'resident.create': '住民登録 / resident registered',
  'resident.update': '住民情報の更新 / resident updated',
  'resident.search': '住民検索 / resident search',
  'vaccination.read': '接種記録の閲覧 / records viewed',
  'vaccination.create': '接種記録の登録 / record added',
  'vaccination.correct': '接種記録の訂正 / record corrected',
  'exchange.query.send': '他自治体への照会 / query sent to another municipality',
  'exchange.query.answer': '他自治体からの照会への回答 / query from another municipality answered',
  'exchange.records.import': '照会結果の取込 / records imported',
  'consent.record': '同意の記録 / consent recorded',
  'consent.revoke': '同意の撤回 / consent revoked',
  'exchange.correction.send': '訂正の通知（送付）/ correction sent to a municipality holding a copy',
  'exchange.correction.receive': '訂正の通知（受領）/ correction received from the source municipality',
};

const NOTICE_LABELS: Record<string, string> = {
  'records-released': '接種記録を提供 / records released to another municipality',
  'query-refused': '照会を拒否 / a query about you was refused',
  'records-imported': '接種記録を取得 / records received from another municipality',
  'correction-sent': '訂正を通知 / correction sent to a municipality holding a copy',
  'correction-received': '訂正を受領 / correction received from the source municipality',
};

const whoLabel = (item: DisclosureItem, self: string): string => {
  if (item.who.type === 'member') return `${escapeHtml(item.who.municipality)} の職員（ゲートウェイ経由）/ staff of ${escapeHtml(item.who.municipality)} via the gateway`;
  if (item.who.type === 'staff' && item.direction === 'asked-elsewhere') {
    return `当自治体 ${escapeHtml(item.who.role)} → ${escapeHtml(item.otherMunicipality)} へ照会 / asked ${escapeHtml(item.otherMunicipality)} via the gateway`;
  }
  if (item.who.type === 'staff') return `${item.who.municipality === self ? '当自治体' : escapeHtml(item.who.municipality)} ${escapeHtml(item.who.role)}`;
  return escapeHtml(item.who.type);
};

/** The report as a printable HTML page: no script, styles from a same-origin file (CSP 'self'). */
export function disclosureHtml(report: DisclosureReport): string {
  const self = report.municipality.code;
  const rows = report.items.map((i) => `
      <tr${i.flags.length ? ' class="flagged"' : ''}>
        <td>${escapeHtml(i.reference)}</td>
        <td><time datetime="${escapeHtml(i.at)}">${escapeHtml(i.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))}</time></td>
        <td>${whoLabel(i, self)}</td>
        <td>${escapeHtml(ACTION_LABELS[i.action] ?? i.action)}</td>
        <td>${escapeHtml(i.purpose ?? '—')}</td>
        <td>${escapeHtml(i.legalBasis ?? '—')}</td>
        <td>${escapeHtml(i.outcome)}${i.reason ? ` (${escapeHtml(i.reason)})` : ''}</td>
        <td>${escapeHtml(i.flags.join(', '))}</td>
      </tr>`).join('');
  const notices = report.notices.map((n) => `
      <tr>
        <td>${escapeHtml(n.reference)}</td>
        <td><time datetime="${escapeHtml(n.at)}">${escapeHtml(n.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))}</time></td>
        <td>${escapeHtml(NOTICE_LABELS[n.kind] ?? n.kind)}</td>
        <td>${escapeHtml(n.otherMunicipality ?? '—')}</td>
        <td>${escapeHtml(n.purpose ?? '—')}</td>
        <td>${escapeHtml(n.delivery?.channel ?? '—')}</td>
        <td>${escapeHtml(n.delivery?.status ?? '—')}</td>
      </tr>`).join('');
  return `<!doctype html>
<html lang="ja">
<head>
  <meta charset="utf-8">
  <title>情報提供等記録 / Disclosure report — ${escapeHtml(report.municipality.name)}</title>
  <link rel="stylesheet" href="/console/disclosure.css">
</head>
<body>
  <header>
    <h1>情報提供等記録 <span lang="en">Disclosure report</span></h1>
    <dl>
      <dt>自治体 / Municipality</dt><dd>${escapeHtml(report.municipality.name)} (${escapeHtml(self)})</dd>
      <dt>宛名番号 / Addressee number</dt><dd>${escapeHtml(report.addresseeNumber)}</dd>
      <dt>作成日時 / Generated</dt><dd>${escapeHtml(report.generatedAt)}</dd>
      <dt>件数 / Entries</dt><dd>${report.items.length}${report.truncated ? ' (以降省略 / truncated)' : ''}</dd>
    </dl>
  </header>
  <table>
    <caption>あなたの情報へのアクセス / Every access to your data</caption>
    <thead><tr>
      <th scope="col">番号 / Ref.</th><th scope="col">日時 / When</th><th scope="col">誰が / Who</th><th scope="col">内容 / Action</th>
      <th scope="col">目的 / Purpose</th><th scope="col">根拠 / Basis</th><th scope="col">結果 / Outcome</th><th scope="col">注意 / Flags</th>
    </tr></thead>
    <tbody>${rows || '\n      <tr><td colspan="8">記録はありません / No access recorded</td></tr>'}
    </tbody>
  </table>
  <table>
    <caption>他自治体とのやりとりのお知らせ / Notices of access between municipalities</caption>
    <thead><tr>
      <th scope="col">番号 / Ref.</th><th scope="col">日時 / When</th><th scope="col">内容 / What</th><th scope="col">相手 / Other municipality</th>
      <th scope="col">目的 / Purpose</th><th scope="col">送付 / Sent by</th><th scope="col">状態 / Delivery</th>
    </tr></thead>
    <tbody>${notices || '\n      <tr><td colspan="7">お知らせはありません / No notices</td></tr>'}
    </tbody>
  </table>
  <footer><p>life-protection: 生命・身体の保護のため本人同意なしに提供された記録 / shared without consent to protect life or body.</p></footer>
</body>
</html>
`;
}
