// The resident's own page (docs/DESIGN.md §4.14). No build step; every value is put in the page as
// text (textContent), never as markup.

const $ = (id) => document.getElementById(id);
let labels = { actions: {}, purposes: {}, legalBases: {}, outcomes: {}, flags: {}, roles: {}, actorTypes: {}, reasons: {} };
let names = {};
let self = { code: '', name: '' };

const label = (table, code) => (code ? table[code] ?? code : '—');
const JST = 9 * 3600 * 1000;
const jst = (iso) => {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return String(iso);
  return `${new Date(at.getTime() + JST).toISOString().slice(0, 19).replace('T', ' ')} JST`;
};
const municipality = (code) => (code === null || code === undefined ? '—'
  : code === self.code ? `${self.name}（お住まいの自治体）` : names[code] ? `${names[code]}（${code}）` : `自治体コード ${code}`);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function details(pairs) {
  const dl = el('dl');
  for (const [k, v] of pairs) if (v !== null && v !== undefined && v !== '') dl.append(el('dt', {}, k), el('dd', {}, v));
  return dl;
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method, credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get('content-type') ?? '';
  const data = type.includes('json') ? await res.json() : null;
  if (!res.ok) {
    const err = new Error(data?.title ?? `HTTP ${res.status}`);
    err.status = res.status;
    err.problem = data;
    throw err;
  }
  return data;
}

/* ---------- signing in: the challenge signed by the resident's key, in this browser ---------- */

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const textB64url = (text) => b64url(new TextEncoder().encode(text));

function pemBody(pem, kind) {
  const match = pem.match(new RegExp(`-----BEGIN ${kind}-----([\\s\\S]+?)-----END ${kind}-----`));
  if (!match) throw new Error(kind === 'PRIVATE KEY' ? '鍵ファイルの形式が違います（PKCS#8 の PEM）' : '証明書ファイルの形式が違います');
  return Uint8Array.from(atob(match[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0));
}

/** ES256: WebCrypto's ECDSA signature is already the raw r‖s a JWS carries (RFC 7518 §3.4). */
async function signChallenge(keyPem, audience, nonce) {
  const key = await crypto.subtle.importKey('pkcs8', pemBody(keyPem, 'PRIVATE KEY'), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const input = `${textB64url(JSON.stringify({ alg: 'ES256', typ: 'resident-sign-in+jwt' }))}.${textB64url(JSON.stringify({ aud: audience, nonce, iat: Math.floor(Date.now() / 1000) }))}`;
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, new TextEncoder().encode(input));
  return `${input}.${b64url(signature)}`;
}

async function signIn(event) {
  event.preventDefault();
  $('sign-in-error').textContent = '';
  try {
    const certificate = await $('certificate-file').files[0].text();
    const keyPem = await $('key-file').files[0].text();
    pemBody(certificate, 'CERTIFICATE');
    const { challenge, audience } = await api('POST', '/resident/sign-in/challenge');
    const signature = await signChallenge(keyPem, audience, challenge);
    await api('POST', '/resident/sign-in', { certificate, signature });
    await load();
  } catch (err) {
    $('sign-in-error').textContent = err.status === 401 ? `ログインできませんでした：${err.problem?.title ?? ''}` : `ログインできませんでした：${err.message}`;
  }
}

/* ---------- the page ---------- */

function whoText(item) {
  const role = label(labels.roles, item.who.role);
  if (item.who.type === 'resident') return 'あなた（本人）';
  if (item.action === 'exchange.trail.answer') return `あなたの請求により${municipality(item.who.municipality)}へ（ゲートウェイ経由）`;
  if (item.who.type === 'member') return `${municipality(item.who.municipality)}の職員（ゲートウェイ経由）`;
  if (item.who.type === 'staff' && item.direction === 'asked-elsewhere') return `${municipality(item.who.municipality)}の${role} → ${municipality(item.otherMunicipality)}へ照会`;
  if (item.who.type === 'staff') return `${municipality(item.who.municipality)}の${role}`;
  return label(labels.actorTypes, item.who.type);
}

function renderRecords(records) {
  const list = $('record-list');
  list.replaceChildren();
  if (records.length === 0) list.append(el('li', {}, '記録はありません'));
  for (const r of records) {
    list.append(el('li', { class: 'record' },
      el('div', { class: 'what' }, `${r.vaccine.display}（${r.doseNumber}回目）`),
      details([
        ['接種日', r.occurrenceDate], ['種類', r.vaccine.series], ['ロット', r.lotNumber], ['場所', r.place],
        ['記録元', r.source ? `${municipality(r.source.municipality)}から取得` : municipality(self.code)],
      ])));
  }
}

const TRAIL_STATUS_TEXT = {
  not_found: 'この自治体にはあなたの記録が見つかりませんでした',
  identity_mismatch: '本人確認が一致しなかったため、記録は提供されませんでした',
  denied: '記録は提供されませんでした',
  source_unavailable: '現在この自治体に接続できません。しばらくしてから再度お試しください',
};

function renderTrail(items, truncated, elsewhere = [], gateway = null) {
  const list = $('trail-list');
  list.replaceChildren();
  list.append(el('li', { class: 'heading' }, `${municipality(self.code)}での記録`));
  appendTrailItems(list, items, truncated, self.code);
  for (const g of elsewhere) {
    list.append(el('li', { class: 'heading', 'data-municipality': g.municipality }, `${municipality(g.municipality)}での記録`));
    if (g.status !== 'ok') list.append(el('li', { class: 'unavailable' }, TRAIL_STATUS_TEXT[g.status] ?? g.status));
    else appendTrailItems(list, g.items, g.truncated, g.municipality);
  }
  if (gateway) appendGatewayItems(list, gateway);
}

const GATEWAY_STATUS_TEXT = {
  denied: 'ゲートウェイの記録は提供されませんでした',
  unavailable: '現在ゲートウェイに接続できません。しばらくしてから再度お試しください',
};

/** The gateway's own entries (docs/PROTOCOL.md §3.10): which municipality, what, why — no codes, no staff. */
function appendGatewayItems(list, gateway) {
  list.append(el('li', { class: 'heading', 'data-municipality': 'gateway' }, 'ゲートウェイ（自治体間の中継）での記録'));
  if (gateway.status !== 'ok') {
    list.append(el('li', { class: 'unavailable' }, GATEWAY_STATUS_TEXT[gateway.status] ?? gateway.status));
    return;
  }
  if (gateway.items.length === 0) list.append(el('li', {}, '記録はありません'));
  for (const i of [...gateway.items].reverse()) {
    list.append(el('li', { class: `access gateway${i.flags.length ? ' flagged' : ''}`, 'data-at': 'gateway' },
      el('div', { class: 'when' }, jst(i.at)),
      el('div', { class: 'what' }, label(labels.actions, i.action), ...i.flags.map((f) => el('span', { class: 'flag' }, label(labels.flags, f)))),
      details([
        ['自治体', municipality(i.municipality)], ['相手', i.counterpart ? municipality(i.counterpart) : null],
        ['目的', i.purpose ? label(labels.purposes, i.purpose) : null], ['根拠', i.legalBasis ? label(labels.legalBases, i.legalBasis) : null],
        ['結果', `${label(labels.outcomes, i.outcome)}${i.reason ? `（${label(labels.reasons, i.reason)}）` : ''}`],
      ])));
  }
  if (gateway.truncated) list.append(el('li', {}, '以降は省略されています。'));
}

function appendTrailItems(list, items, truncated, at) {
  if (items.length === 0) list.append(el('li', {}, '記録はありません'));
  for (const i of [...items].reverse()) {
    const li = el('li', { class: `access${i.crossMunicipality ? ' cross' : ''}${i.flags.length ? ' flagged' : ''}`, 'data-reference': String(i.reference), 'data-at': at },
      el('div', { class: 'when' }, `${jst(i.at)} ・ 番号 ${i.reference}`),
      el('div', { class: 'what' }, label(labels.actions, i.action), ...i.flags.map((f) => el('span', { class: 'flag' }, label(labels.flags, f)))),
      details([
        ['誰が', whoText(i)], ['目的', i.purpose ? label(labels.purposes, i.purpose) : null], ['根拠', i.legalBasis ? label(labels.legalBases, i.legalBasis) : null],
        ['結果', `${label(labels.outcomes, i.outcome)}${i.reason ? `（${label(labels.reasons, i.reason)}）` : ''}`],
      ]));
    list.append(li);
  }
  if (truncated) list.append(el('li', {}, '以降は省略されています。窓口で情報提供等記録をお求めください。'));
}

function renderConsents(consents) {
  const list = $('consent-list');
  list.replaceChildren();
  if (consents.length === 0) list.append(el('li', {}, '同意はありません'));
  for (const c of consents) {
    const revoke = c.revokedAt ? null : el('button', { type: 'button', class: 'danger', 'data-consent': c.id }, 'この同意を撤回する');
    revoke?.addEventListener('click', () => revokeConsent(c));
    list.append(el('li', { class: `consent${c.revokedAt ? ' revoked' : ''}`, 'data-consent-id': c.id },
      el('div', { class: 'what' }, `${label(labels.purposes, c.purpose)}のための取り寄せ`),
      details([
        ['取り寄せ先', c.sources.map(municipality).join('、')], ['同意日時', jst(c.givenAt)], ['有効期限', jst(c.expiresAt)],
        ['状態', c.revokedAt ? `撤回済み（${jst(c.revokedAt)}）` : Date.parse(c.expiresAt) < Date.now() ? '期限切れ' : '有効'],
      ]),
      revoke));
  }
}

async function revokeConsent(consent) {
  $('consent-error').textContent = '';
  if (!window.confirm(`${consent.sources.map(municipality).join('、')}からの取り寄せへの同意を撤回しますか？`)) return;
  try {
    await api('POST', `/resident/consents/${encodeURIComponent(consent.id)}/revoke`, {});
    await load();
  } catch (err) {
    $('consent-error').textContent = `撤回できませんでした：${err.message}`;
  }
}

const NOTICE_TEXT = {
  'records-released': 'あなたの接種記録を他の自治体へ提供しました',
  'query-refused': 'あなたについての照会を拒否しました',
  'records-imported': 'あなたの接種記録を他の自治体から取り寄せました',
  'correction-sent': '記録の訂正を写しを持つ自治体へ知らせました',
  'correction-received': '記録元の自治体から訂正を受け取りました',
};

function renderNotices(notices) {
  const list = $('notice-list');
  list.replaceChildren();
  if (notices.length === 0) list.append(el('li', {}, 'お知らせはありません'));
  for (const n of [...notices].reverse()) {
    list.append(el('li', { class: 'notice' },
      el('div', { class: 'when' }, jst(n.at)),
      el('div', { class: 'what' }, NOTICE_TEXT[n.kind] ?? n.kind),
      details([['相手', municipality(n.otherMunicipality ?? null)], ['目的', n.purpose ? label(labels.purposes, n.purpose) : null]])));
  }
}

const CERTIFICATE_PROBLEMS = {
  'certificate-too-large-for-qr': '接種記録が多いため、QRコード1つに収まりません。「ファイルで保存」をお使いください。',
  'no-doses-to-certify': '証明できる接種記録がありません。',
  'certificate-signing-not-configured': 'この自治体では接種証明書をまだ発行していません。',
};

async function showCertificate() {
  $('certificate-error').textContent = '';
  const res = await fetch('/resident/vaccination-certificate.png', { credentials: 'same-origin' });
  if (!res.ok) {
    const problem = await res.json().catch(() => null);
    $('certificate-error').textContent = CERTIFICATE_PROBLEMS[problem?.type?.split('/').pop()] ?? `発行できませんでした：${problem?.title ?? res.status}`;
    return;
  }
  const img = $('certificate-qr');
  img.src = URL.createObjectURL(await res.blob());
  img.hidden = false;
}

async function downloadCertificate() {
  $('certificate-error').textContent = '';
  const res = await fetch('/resident/vaccination-certificate', { method: 'POST', credentials: 'same-origin' });
  if (!res.ok) {
    const problem = await res.json().catch(() => null);
    $('certificate-error').textContent = CERTIFICATE_PROBLEMS[problem?.type?.split('/').pop()] ?? `発行できませんでした：${problem?.title ?? res.status}`;
    return;
  }
  const a = el('a', { href: URL.createObjectURL(await res.blob()), download: 'vaccination-certificate.smart-health-card' });
  document.body.append(a);
  a.click();
  a.remove();
}

async function load() {
  let me;
  try {
    me = await api('GET', '/resident/me');
  } catch (err) {
    if (err.status !== 401) throw err;
    $('page').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    return;
  }
  self = me.municipality;
  names = me.municipalityNames ?? {};
  $('municipality').textContent = self.name;
  $('greeting').textContent = `${me.resident.name}（${me.resident.kana}）さん`;
  renderRecords(me.records);
  renderTrail(me.trail, me.truncated, me.elsewhere, me.gateway);
  renderConsents(me.consents);
  renderNotices(me.notices);
  $('sign-in').hidden = true;
  $('page').hidden = false;
  $('sign-out').hidden = false;
}

async function signOut() {
  await api('POST', '/resident/sign-out').catch(() => undefined);
  $('certificate-qr').hidden = true;
  await load();
}

$('sign-in-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', signOut);
$('show-certificate').addEventListener('click', showCertificate);
$('download-certificate').addEventListener('click', downloadCertificate);
labels = await fetch('/console/labels.json').then((r) => r.json()).catch(() => labels);
await load();
