/**
 * What the access log's code values mean, in Japanese, and its times in Japan Standard Time: one
 * table for every screen that shows the log to a person (the privacy officers' consoles, the
 * resident's disclosure report). The log itself keeps the stable English codes and UTC; only what
 * a person reads is translated (docs/DESIGN.md §5). A code without a label is shown as it is.
 */
import type { AlertKind } from './alerts.ts';

/** Access-log actions of every member (the constants of each member's actions file). */
export const ACTION_LABELS: Readonly<Record<string, string>> = {
  'resident.create': '住民登録',
  'resident.read': '住民情報の閲覧',
  'resident.search': '住民検索',
  'resident.update': '住民情報の更新',
  'resident.status': '住民の状態変更',
  'resident.my_number.reveal': '個人番号の表示',
  'resident.move_out': '転出',
  'resident.move_in': '転入',
  'resident.credential.enroll': '本人ページの認証手段の登録',
  'resident.credential.read': '本人ページの認証手段の閲覧',
  'resident.credential.withdraw': '本人ページの認証手段の廃止',
  'resident.sign_in': '本人ページへのログイン',
  'resident.sign_out': '本人ページからのログアウト',
  'resident.self.read': '本人による記録の閲覧',
  'exchange.trail.request': '本人のためのアクセス記録の取り寄せ',
  'exchange.trail.answer': '本人の請求によるアクセス記録の提供',
  'vaccination.create': '接種記録の登録',
  'vaccination.read': '接種記録の閲覧',
  'vaccination.correct': '接種記録の訂正',
  'vaccination.void': '接種記録の取消',
  'ticket.register': '予診票の登録',
  'ticket.review': '予診票の確認',
  'ticket.issue': '接種券の発行',
  'ticket.read': '予診票の閲覧',
  'ticket.review.read': '確認待ち予診票の閲覧',
  'ticket.review.resolve': '予診票の確認結果',
  'consent.record': '同意の記録',
  'consent.revoke': '同意の撤回',
  'consent.read': '同意の閲覧',
  'exchange.consent_revocation.send': '同意撤回の通知（送付）',
  'exchange.consent_revocation.receive': '同意撤回の通知（受領）',
  'exchange.query.send': '他自治体への照会',
  'exchange.exception.request': '同意によらない照会の申請',
  'exchange.exception.approve': '同意によらない照会の承認',
  'exchange.query.answer': '他自治体からの照会への回答',
  'exchange.query.interrupted': '中断された照会の整理',
  'exchange.records.import': '照会結果の取込',
  'exchange.bulk.create': '一括照会の作成',
  'exchange.bulk.read': '一括照会の閲覧',
  'exchange.bulk.retry': '一括照会の再試行',
  'exchange.correction.send': '訂正の通知（送付）',
  'exchange.correction.receive': '訂正の通知（受領）',
  'exchange.correction.read': '訂正通知の閲覧',
  'audit.read': 'アクセス記録の閲覧',
  'audit.verify': 'アクセス記録の検証',
  'audit.export': 'アクセス記録の出力',
  'audit.checkpoint': 'チェックポイントの作成',
  'audit.reconcile': 'ゲートウェイとの照合',
  'audit.disclosure': '情報提供等記録の作成',
  'audit.member_read': '自治体による記録の参照',
  'alert.raise': '注意喚起の発生',
  'alert.read': '注意喚起の閲覧',
  'alert.run': '注意喚起の検出',
  'notice.read': 'お知らせの閲覧',
  'fhir.export.request': 'FHIR一括出力の依頼',
  'fhir.export.run': 'FHIR一括出力の実行',
  'fhir.export.download': 'FHIR一括出力の取得',
  'fhir.export.cancel': 'FHIR一括出力の取消',
  'certificate.issue': '接種証明書の発行',
  'retention.remove': '保存期間満了による削除',
  'retention.run': '保存期間満了の削除処理の実行',
  'retention.read': '保存期間満了による削除の一覧の閲覧',
  'staff.sign_in': '職員のログイン',
  'staff.lockout': 'アカウントのロック',
  'staff.unlock': 'ロックの解除',
  'staff.sign_out': '職員のログアウト',
  'staff.password_change': 'パスワードの変更',
  'staff.disable': 'アカウントの停止',
  'correspondence.register': '符号の対応付けの登録',
  'correspondence.rekey': '符号の対応付けの移行',
  'correspondence.attest': '符号の証明書の更新',
  'query.refuse': '照会の拒否',
  'query.route': '照会の中継',
  'query.answer': '回答の中継',
  'trail.route': '本人のアクセス記録の請求の中継',
  'trail.disclose': 'ゲートウェイの記録の本人への開示',
  'correction.relay': '訂正通知の受付',
  'correction.deliver': '訂正通知の配送',
  'consent_revocation.record': '同意撤回の受付',
  'consent_revocation.relay': '同意撤回の配送',
  'code.issue': '符号の発行',
  'code.evaluate': '符号導出の秘匿評価',
  'code.send': '符号の対応登録の送付',
  'code.rekey': '符号の導出方式の移行',
};

export const PURPOSE_LABELS: Readonly<Record<string, string>> = {
  'next-dose-scheduling': '次回接種の計画',
  'certificate-issuance': '接種証明書の発行',
  'adverse-event-follow-up': '副反応の追跡',
};

export const LEGAL_BASIS_LABELS: Readonly<Record<string, string>> = {
  consent: '本人同意',
  'life-protection': '生命・身体の保護',
};

export const OUTCOME_LABELS: Readonly<Record<string, string>> = { allowed: '許可', denied: '拒否' };

export const FLAG_LABELS: Readonly<Record<string, string>> = {
  'life-protection': '生命保護',
  identity_mismatch: '本人不一致',
  denied: '拒否',
};

export const ROLE_LABELS: Readonly<Record<string, string>> = {
  clerk: '窓口職員',
  privacy_officer: '個人情報保護担当',
  operator: '運用担当',
  admin: '管理者',
  municipality: '自治体',
  gateway: 'ゲートウェイ',
  issuer: '符号発行機関',
  resident: '住民本人',
};

export const ACTOR_TYPE_LABELS: Readonly<Record<string, string>> = {
  staff: '職員',
  member: '連携先',
  system: 'システム',
  resident: '住民本人',
};

/** The refusal reasons a person meets most; the others are shown as their code. */
export const REASON_LABELS: Readonly<Record<string, string>> = {
  identity_mismatch: '本人確認の不一致',
  no_matching_consent: '該当する同意なし',
  consent_revoked: '同意撤回済み',
  consent_expired: '同意の期限切れ',
  consent_term_too_long: '同意期間が長すぎる',
  no_consent_terms: '同意内容の記載なし',
  not_moved_to_requester: '照会元への転入なし',
  source_not_on_move_chain: '転居経路外の自治体',
  move_in_window_passed: '照会可能期間の経過',
  no_move_in: '転入記録なし',
  not_a_current_resident: '現住民ではない',
  exception_unjustified: '理由の記載なし',
  exception_self_approved: '申請者本人による承認',
  exception_not_yet_approved: '未承認',
  exception_used: '承認は使用済み',
  gateway_unavailable: 'ゲートウェイに接続できない',
  source_unavailable: '照会先に接続できない',
  'wrong-password': 'パスワード誤り',
  'unknown-user': '未登録のユーザー',
  'account-locked': 'アカウントがロック中',
  'address-throttled': '同一端末からの試行制限',
  'repeated-failures': 'ログイン失敗の反復',
  logout: 'ログアウト',
  certificate_invalid: '証明書が無効',
  signature_invalid: '署名が検証できない',
  audience_mismatch: '他自治体あての署名',
  credential_unknown: '未登録の証明書',
  challenge_invalid: 'チャレンジが無効または使用済み',
  resident_sign_in_too_old: '本人の署名が古い',
  resident_signature_invalid: '本人の署名が検証できない',
  resident_certificate_invalid: '本人の証明書が無効',
};

export const ALERT_LABELS: Readonly<Record<AlertKind, string>> = {
  resident_multi_requester: '複数自治体からの照会',
  staff_query_volume: '職員の照会件数が突出',
  identity_mismatch_requester: '本人不一致の反復',
  life_protection_volume: '生命保護照会の多発',
  staff_sign_in_failures: 'ログイン失敗の集中',
};

/** Every table above, as the consoles fetch it (`GET /console/labels.json`). */
export const LOG_LABELS = {
  actions: ACTION_LABELS, purposes: PURPOSE_LABELS, legalBases: LEGAL_BASIS_LABELS, outcomes: OUTCOME_LABELS, flags: FLAG_LABELS,
  roles: ROLE_LABELS, actorTypes: ACTOR_TYPE_LABELS, reasons: REASON_LABELS, alerts: ALERT_LABELS,
} as const;

/** A code's label, or the code itself when it has none. */
export const labelOf = (table: Readonly<Record<string, string>>, code: string | null | undefined): string => (code ? table[code] ?? code : '—');

const JST_OFFSET_MS = 9 * 60 * 60 * 1000;

/** An ISO 8601 instant as Japan Standard Time, `2026-12-07 08:35:56 JST` (Japan keeps no summer time). */
export function formatJst(iso: string | Date): string {
  const at = typeof iso === 'string' ? new Date(iso) : iso;
  if (Number.isNaN(at.getTime())) return String(iso);
  return `${new Date(at.getTime() + JST_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ')} JST`;
}
