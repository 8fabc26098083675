// The privacy officer's console: plain DOM code, same-origin API calls with the httpOnly session
// cookie. Text goes in through textContent only, so a log value can never become markup.

const $ = (id) => document.getElementById(id);
const PAGE = 50;

/** What each code means in Japanese (GET /console/labels.json, one table with the server's). */
let LABELS = { actions: {}, purposes: {}, legalBases: {}, outcomes: {}, flags: {}, roles: {}, actorTypes: {}, reasons: {}, alerts: {} };

/** A code's Japanese label, or the code itself; never empty. */
const label = (table, code) => (code === null || code === undefined || code === '' ? '—' : (LABELS[table] && LABELS[table][code]) || String(code));

/** A cell showing a code's label, with the code itself on hover. */
function labelled(table, code, suffix = '') {
  const cell = el('td', `${label(table, code)}${suffix}`);
  if (code) cell.title = String(code);
  return cell;
}

const JST_MS = 9 * 60 * 60 * 1000;

/** An ISO instant in Japan Standard Time, as every screen of the console shows it (the log keeps UTC). */
function jst(iso) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return String(iso ?? '—');
  return `${new Date(t + JST_MS).toISOString().slice(0, 19).replace('T', ' ')} JST`;
}

/** A datetime-local value read as Japan Standard Time, whatever the browser's own zone. */
function jstInputToIso(text) {
  const full = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(text) ? `${text}:00` : text;
  const at = new Date(`${full}+09:00`);
  return Number.isNaN(at.getTime()) ? text : at.toISOString();
}

const state = {
  filter: new URLSearchParams(),
  /** Cursors of the pages shown so far: [undefined, c1, c2…]; the last one is the current page. */
  cursors: [undefined],
  nextCursor: null,
  selected: null,
};

/** Fetches JSON from our own API; a problem+json answer becomes an Error with its words. */
async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get('content-type') || '';
  const data = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) {
    const problem = typeof data === 'object' && data ? data : {};
    const where = problem.field ? ` — ${problem.field}: ${problem.rule}` : '';
    const err = new Error(`${problem.title || res.statusText || 'Error'}${where}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function flagsOf(entry) {
  const flags = new Set(entry.flags || []);
  if (entry.legalBasis === 'life-protection') flags.add('life-protection');
  if (entry.reason === 'identity_mismatch') flags.add('identity_mismatch');
  if (entry.outcome === 'denied') flags.add('denied');
  return [...flags];
}

/* ---------- session ---------- */

function showConsole(staff) {
  $('login-section').hidden = true;
  $('console-section').hidden = false;
  $('who').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = `${staff.displayName || staff.username}（${label('roles', staff.role)} / ${staff.role}）— ${staff.municipality || ''}`;
  // The gateway has no counterpart log to reconcile with: reconciliation runs at a municipality.
  $('reconcile').hidden = staff.reconcile === false;
  // The gateway's log names residents by code and holds no names: its filter says so.
  if (staff.subjects === 'code') $('subject-label').textContent = '符号 / Code';
  $('resident-field').hidden = staff.residentSearch !== true;
  search();
  loadAlerts();
}

function showLogin(message = '') {
  $('login-section').hidden = false;
  $('console-section').hidden = true;
  $('who').hidden = true;
  $('logout').hidden = true;
  $('login-error').textContent = message;
}

/** Fills each select marked data-labels with the codes of that table, labelled in Japanese. */
function fillSelects() {
  for (const select of document.querySelectorAll('select[data-labels]')) {
    const table = LABELS[select.dataset.labels] || {};
    for (const [code, text] of Object.entries(table)) {
      const option = el('option', `${text}（${code}）`);
      option.value = code;
      select.append(option);
    }
  }
}

async function start() {
  try {
    LABELS = await call('GET', '/console/labels.json');
  } catch {
    // Without labels the console still works, showing the codes themselves.
  }
  fillSelects();
  try {
    const me = await call('GET', '/auth/me');
    if (me.role !== 'privacy_officer') return showLogin('このコンソールは個人情報保護担当者専用です / Privacy officers only');
    showConsole(me);
  } catch {
    showLogin();
  }
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  try {
    const session = await call('POST', '/auth/login', { username: $('username').value, password: $('password').value });
    $('password').value = '';
    if (session.staff.role !== 'privacy_officer') {
      await call('POST', '/auth/logout');
      return showLogin('このコンソールは個人情報保護担当者専用です / Privacy officers only');
    }
    const me = await call('GET', '/auth/me');
    showConsole(me);
  } catch (err) {
    $('login-error').textContent = `ログインできません / Login failed: ${err.message}`;
  }
});

$('logout').addEventListener('click', async () => {
  await call('POST', '/auth/logout').catch(() => {});
  showLogin();
});

/* ---------- filter and pages ---------- */

function readFilter() {
  const params = new URLSearchParams();
  const form = new FormData($('filter-form'));
  for (const [name, value] of form.entries()) {
    const text = String(value).trim();
    if (!text) continue;
    // datetime-local is Japan Standard Time (as every time on screen); the API takes ISO 8601 in UTC.
    params.set(name, name === 'from' || name === 'to' ? jstInputToIso(text) : text);
  }
  return params;
}

function updateExportLink() {
  const query = state.filter.toString();
  $('export').href = `/audit/export.csv${query ? `?${query}` : ''}`;
}

async function loadPage() {
  $('filter-error').textContent = '';
  const params = new URLSearchParams(state.filter);
  params.set('limit', String(PAGE));
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) params.set('cursor', String(cursor));
  try {
    const page = await call('GET', `/audit/entries?${params}`);
    state.nextCursor = page.nextCursor;
    renderEntries(page.entries);
  } catch (err) {
    if (err.status === 401) return showLogin('セッションが切れました / Session expired');
    $('filter-error').textContent = err.message;
    renderEntries([]);
  }
}

function search() {
  state.filter = readFilter();
  state.cursors = [undefined];
  updateExportLink();
  return loadPage();
}

$('filter-form').addEventListener('submit', (event) => {
  event.preventDefault();
  search();
});
$('filter-form').addEventListener('reset', () => setTimeout(search, 0));
$('older').addEventListener('click', () => {
  if (state.nextCursor === null) return;
  state.cursors.push(state.nextCursor);
  loadPage();
});
$('newer').addEventListener('click', () => {
  if (state.cursors.length > 1) state.cursors.pop();
  loadPage();
});
$('newest').addEventListener('click', () => {
  state.cursors = [undefined];
  loadPage();
});

function renderEntries(entries) {
  const body = $('entries');
  body.replaceChildren();
  for (const entry of entries) {
    const row = el('tr');
    const flags = flagsOf(entry);
    if (flags.length) row.className = 'flagged';
    const seqCell = el('td');
    const open = el('button', entry.seq, 'seq');
    open.type = 'button';
    open.setAttribute('aria-label', `記録 ${entry.seq} を開く / Open entry ${entry.seq}`);
    open.addEventListener('click', () => openEntry(entry.seq));
    seqCell.append(open);
    row.append(seqCell);
    const when = el('td', jst(entry.at));
    when.title = entry.at;
    // Staff by display name and role (the id on hover); a member or the system by its kind and id.
    const actor = entry.actorType === 'staff'
      ? el('td', `${entry.actorName || entry.actorId}（${label('roles', entry.actorRole)}）`)
      : el('td', `${label('actorTypes', entry.actorType)} ${entry.actorId}`);
    actor.title = entry.actorType === 'staff' ? `${entry.actorId} ${entry.actorRole || ''}` : `${entry.actorType}:${entry.actorId}`;
    row.append(when, actor, el('td', entry.subject || '—'), labelled('actions', entry.action), labelled('purposes', entry.purpose),
      labelled('legalBases', entry.legalBasis), labelled('outcomes', entry.outcome, entry.reason ? `（${label('reasons', entry.reason)}）` : ''));
    const flagCell = el('td');
    for (const flag of flags) {
      const chip = el('span', label('flags', flag), 'flag');
      chip.title = flag;
      flagCell.append(chip);
    }
    row.append(flagCell);
    body.append(row);
  }
  const pageNo = state.cursors.length;
  $('entries-summary').textContent = entries.length
    ? `${entries.length} 件（${pageNo} ページ目）/ ${entries.length} entries (page ${pageNo})`
    : '該当する記録はありません / No matching entries';
  $('older').disabled = state.nextCursor === null;
  $('newer').disabled = state.cursors.length <= 1;
}

/* ---------- one entry and its trace ---------- */

const DETAIL_FIELDS = ['seq', 'at', 'requestId', 'actorType', 'actorId', 'actorRole', 'actingMunicipality', 'subject', 'action',
  'purpose', 'legalBasis', 'consentId', 'outcome', 'reason', 'flags', 'recordIds', 'requestHash', 'details', 'prevHash', 'hash'];

async function openEntry(seq) {
  try {
    const entry = await call('GET', `/audit/entries/${encodeURIComponent(seq)}`);
    state.selected = entry;
    const list = $('detail-fields');
    list.replaceChildren();
    const meaning = {
      at: jst, actorRole: (v) => label('roles', v), actorType: (v) => label('actorTypes', v), action: (v) => label('actions', v),
      purpose: (v) => label('purposes', v), legalBasis: (v) => label('legalBases', v), outcome: (v) => label('outcomes', v), reason: (v) => label('reasons', v),
    };
    for (const field of DETAIL_FIELDS) {
      const value = entry[field];
      const text = value === null || value === undefined ? '—' : typeof value === 'object' ? JSON.stringify(value) : String(value);
      // The stored value, and what it means where it is a code or a time.
      const shown = meaning[field] && value !== null && value !== undefined && meaning[field](value) !== text ? `${meaning[field](value)}（${text}）` : text;
      list.append(el('dt', field), el('dd', field === 'actorId' && entry.actorName ? `${entry.actorName}（${text}）` : shown));
    }
    $('trace-result').replaceChildren();
    $('detail').hidden = false;
    $('detail-title').focus?.();
  } catch (err) {
    $('filter-error').textContent = err.message;
  }
}

$('close-detail').addEventListener('click', () => {
  $('detail').hidden = true;
  state.selected = null;
});

$('trace').addEventListener('click', async () => {
  if (!state.selected) return;
  const out = $('trace-result');
  out.replaceChildren();
  try {
    const trace = await call('GET', `/audit/trace/${encodeURIComponent(state.selected.requestId)}`);
    out.append(el('h3', `要求 ${trace.requestId} の経路 / Request across hops`));
    for (const hop of trace.hops) {
      out.append(el('h4', hop.member));
      if (hop.unavailable) out.append(el('p', `取得できません / Unavailable: ${hop.unavailable}`, 'error'));
      const list = el('ol');
      for (const e of hop.entries) {
        // Another member's entries are metadata only: the member that called, not a staff id.
        const who = e.actorType ? `${label('actorTypes', e.actorType)} ${e.actorName || e.actorId}` : `${label('actorTypes', 'member')} ${e.actor}`;
        const ref = e.ref !== undefined && e.ref !== null ? ` ref ${e.ref}` : '';
        const reason = e.reason ? `（${label('reasons', e.reason)}）` : '';
        list.append(el('li', `#${e.seq} ${jst(e.at)} ${who} ${label('actions', e.action)} [${e.action}]${ref} ${label('outcomes', e.outcome)}${reason}`));
      }
      out.append(list);
    }
  } catch (err) {
    out.append(el('p', err.message, 'error'));
  }
});

/* ---------- verification, reconciliation, checkpoints ---------- */

function showResult(ok, title, lines) {
  const box = $('check-result');
  box.className = `result ${ok ? 'ok' : 'broken'}`;
  box.replaceChildren(el('strong', title));
  if (lines.length) box.append(el('pre', lines.join('\n')));
}

$('verify').addEventListener('click', async () => {
  $('check-result').textContent = '検証中… / Verifying…';
  try {
    const r = await call('POST', '/audit/verify');
    if (r.ok) {
      showResult(true, `検証OK / Chain OK — ${r.entries} entries`, [
        `head: seq ${r.head ? r.head.seq : 0} ${r.head ? r.head.hash : ''}`,
        `checkpoints agreeing: ${r.checkpoints.agreeing}${r.remoteCheckpoints === 'unavailable' ? ' (copies held elsewhere unavailable)' : ''}`,
      ]);
    } else {
      showResult(false, `改ざん検出 / Broken at entry ${r.broken.seq}: ${r.broken.kind}`, [r.broken.detail]);
    }
  } catch (err) {
    showResult(false, `検証できません / Verification failed: ${err.message}`, []);
  }
});

$('reconcile').addEventListener('click', async () => {
  try {
    const r = await call('POST', '/audit/reconcile', {});
    const lines = [];
    for (const [name, side] of [['incoming', r.incoming], ['outgoing', r.outgoing]]) {
      lines.push(`${name}: matched ${side.matched}`);
      for (const e of side.onlyLocal) lines.push(`  only here: #${e.seq} ${e.requestId} ${e.ref || ''} ${e.note || ''}`);
      for (const e of side.onlyRemote) lines.push(`  only at ${side.remote}: #${e.seq} ${e.requestId} ${e.ref || ''} ${e.note || ''}`);
    }
    showResult(r.ok, r.ok ? '照合OK / Logs agree' : '不一致あり / One-sided entries found', lines);
  } catch (err) {
    showResult(false, `照合できません / Reconciliation unavailable: ${err.message}`, []);
  }
});

$('checkpoint').addEventListener('click', async () => {
  try {
    const r = await call('POST', '/audit/checkpoints');
    showResult(true, `チェックポイント作成 / Checkpoint signed at seq ${r.checkpoint.seq}`, [
      r.checkpoint.hash, r.witnessedBy ? `witnessed by ${r.witnessedBy}` : '未立会 / not witnessed yet',
    ]);
  } catch (err) {
    showResult(false, `チェックポイントを作成できません / Checkpoint failed: ${err.message}`, []);
  }
});

/* ---------- anomaly alerts ---------- */

function renderAlerts(alerts) {
  const body = $('alerts');
  body.replaceChildren();
  for (const a of alerts) {
    const row = el('tr', undefined, 'flagged');
    const details = Object.entries(a.details || {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`).join('; ');
    for (const value of [jst(a.raisedAt), label('alerts', a.kind), a.subject || a.key, a.count, a.threshold, details]) row.append(el('td', value));
    const evidence = el('td');
    for (const seq of (a.evidence || []).slice(-10)) {
      const open = el('button', seq, 'seq');
      open.type = 'button';
      open.setAttribute('aria-label', `記録 ${seq} を開く / Open entry ${seq}`);
      open.addEventListener('click', () => openEntry(seq));
      evidence.append(open);
    }
    row.append(evidence);
    body.append(row);
  }
  $('alerts-summary').textContent = alerts.length
    ? `${alerts.length} 件の注意喚起 / ${alerts.length} alerts`
    : '注意喚起はありません / No alerts';
}

async function loadAlerts() {
  try {
    renderAlerts((await call('GET', '/alerts')).alerts);
  } catch (err) {
    $('alerts-summary').textContent = `注意喚起を取得できません / Alerts unavailable: ${err.message}`;
  }
}

$('alerts-refresh').addEventListener('click', loadAlerts);
$('alerts-run').addEventListener('click', async () => {
  try {
    const r = await call('POST', '/alerts/run');
    await loadAlerts();
    $('alerts-summary').textContent += ` — 新規 ${r.raised.length} 件 / ${r.raised.length} new`;
  } catch (err) {
    $('alerts-summary').textContent = `検出できません / Detection failed: ${err.message}`;
  }
});

start();
