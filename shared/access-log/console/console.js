// The privacy officer's console: plain DOM code, same-origin API calls with the httpOnly session
// cookie. Text goes in through textContent only, so a log value can never become markup.

const $ = (id) => document.getElementById(id);
const PAGE = 50;

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
  $('who').textContent = `${staff.displayName || staff.username} (${staff.role}) — ${staff.municipality || ''}`;
  // The gateway has no counterpart log to reconcile with: reconciliation runs at a municipality.
  $('reconcile').hidden = staff.reconcile === false;
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

async function start() {
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
    // datetime-local is the officer's local time; the API takes ISO 8601 with an offset.
    params.set(name, name === 'from' || name === 'to' ? new Date(text).toISOString() : text);
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
    const actor = entry.actorType === 'staff' ? `${entry.actorId} (${entry.actorRole || ''})` : `${entry.actorType}: ${entry.actorId}`;
    for (const value of [entry.at, actor, entry.subject || '—', entry.action, entry.purpose || '—', entry.legalBasis || '—',
      entry.reason ? `${entry.outcome} (${entry.reason})` : entry.outcome]) {
      row.append(el('td', value));
    }
    const flagCell = el('td');
    for (const flag of flags) flagCell.append(el('span', flag, 'flag'));
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
    for (const field of DETAIL_FIELDS) {
      const value = entry[field];
      list.append(el('dt', field), el('dd', value === null || value === undefined ? '—' : typeof value === 'object' ? JSON.stringify(value) : value));
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
        const who = e.actorType ? `${e.actorType}:${e.actorId}` : `member:${e.actor}`;
        const ref = e.ref !== undefined && e.ref !== null ? ` ref ${e.ref}` : '';
        list.append(el('li', `#${e.seq} ${e.at} ${who} ${e.action}${ref} ${e.outcome}${e.reason ? ` (${e.reason})` : ''}`));
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

const ALERT_LABELS = {
  resident_multi_requester: '複数自治体からの照会 / One resident, several requesters',
  staff_query_volume: '職員の照会件数 / Staff querying far more than peers',
  identity_mismatch_requester: '本人不一致の反復 / Repeated identity mismatches',
  life_protection_volume: '生命保護照会の多発 / Life-protection queries above threshold',
};

function renderAlerts(alerts) {
  const body = $('alerts');
  body.replaceChildren();
  for (const a of alerts) {
    const row = el('tr', undefined, 'flagged');
    const details = Object.entries(a.details || {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`).join('; ');
    for (const value of [a.raisedAt, ALERT_LABELS[a.kind] || a.kind, a.subject || a.key, a.count, a.threshold, details]) row.append(el('td', value));
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
