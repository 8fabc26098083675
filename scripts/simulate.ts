/**
 * Move-in season, rehearsed against a running federation (the one `npm start` brings up):
 *
 *   npm run simulate -- --move-ins 1000 [--kill-source] [--data-dir data]
 *
 * 1. moves N residents from random municipalities to others through the staff APIs: move-out at
 *    the source (a signed certificate), move-in at the destination with consent; a share moves in
 *    without consent, and a share is registered by hand at the destination with a mistyped birth
 *    date (the paper-certificate / OCR case), so the refusals are exercised for real;
 * 2. submits one bulk query per receiving municipality and watches the jobs; with --kill-source,
 *    one source municipality is stopped before the queries go out (its residents come back
 *    `source_unavailable`: partial results) and started again, then the jobs are retried on demand;
 * 3. verifies every moved resident: for each `ok`, the destination holds exactly the source's
 *    releasable records (none missing, none twice) and no field its purpose withholds (minimal
 *    disclosure; `--purpose mixed`, the default, rotates the three purposes over the moves); for
 *    each refusal, it holds none. Then one probe per receiver asks a municipality a moved resident
 *    did not come from, which the move-in capability must refuse.
 *
 * The residents' My Numbers are the seeded cards, regenerated from the deterministic generator
 * (the simulator stands in for the resident at the counter). --kill-source needs the launcher's
 * control endpoint: `npm start` publishes it in <data-dir>/control.json (loopback, bearer token).
 * Output: a progress bar (stderr), then a table and one JSON line (stdout). Exit code 1 when any
 * record is lost or duplicated, a refused resident holds imported records, a move failed, or a
 * moved resident is not accounted for under exactly one outcome.
 */
import { seededRandom } from '../shared/platform/random.ts';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { PURPOSES } from '../shared/federation/protocol.ts';
import { generateResidents } from '../services/municipality/seed.ts';
import { DISCLOSURE_POLICY } from '../services/municipality/answering/disclosure-policy.ts';
import { DEMO_MUNICIPALITIES, controlFile } from './federation.ts';
import { DEMO_PASSWORD, DEMO_SEED } from './seed.ts';

/* ---------- a small staff client (re-logs in when its session expires) ---------- */

export interface HttpResult<T = any> {
  status: number;
  body: T;
}

export class StaffSession {
  private token: string | undefined;
  constructor(readonly url: string, readonly username: string, private readonly password: string) {}

  private async login(): Promise<string> {
    const res = await fetch(`${this.url}/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: this.username, password: this.password }),
    });
    if (res.status !== 200) throw new Error(`login ${this.username} at ${this.url}: ${res.status}`);
    this.token = ((await res.json()) as { token: string }).token;
    return this.token;
  }

  async call<T = any>(method: string, path: string, body?: unknown): Promise<HttpResult<T>> {
    for (let attempt = 0; ; attempt++) {
      const token = this.token ?? await this.login();
      const res = await fetch(`${this.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (res.status === 401 && attempt === 0) { this.token = undefined; continue; }
      return { status: res.status, body: (text && /json/.test(res.headers.get('content-type') ?? '') ? JSON.parse(text) : text) as T };
    }
  }

  async ok<T = any>(method: string, path: string, body?: unknown, expected: number[] = [200, 201, 202]): Promise<T> {
    const res = await this.call<T>(method, path, body);
    if (!expected.includes(res.status)) {
      const problem = res.body as { title?: string; field?: string; rule?: string };
      throw new Error(`${method} ${path} at ${this.url}: ${res.status} ${problem?.title ?? ''} ${problem?.field ?? ''} ${problem?.rule ?? ''}`.trim());
    }
    return res.body;
  }
}

/* ---------- the steps, exported for the end-to-end tests ---------- */

export type Plan = 'consent' | 'no-consent' | 'wrong-birth-date';

export interface Card {
  addresseeNumber: string;
  name: string;
  kana: string;
  birthDate: string;
  sex: string;
  myNumber: string;
}

export interface Move {
  from: string;
  to: string;
  card: Card;
  plan: Plan;
  /** The purpose of the consent and query (the run's purpose when absent). */
  purpose?: string;
  /** The resident's addressee number at the destination, once moved. */
  movedAs?: string;
  error?: string;
}

export interface Desk {
  clerk: StaffSession;
  operator: StaffSession;
  name: string;
}

const DAY = 86_400_000;
const todayUtc = () => new Date().toISOString().slice(0, 10);
const dayBefore = (date: string) => new Date(Date.parse(`${date}T00:00:00Z`) - DAY).toISOString().slice(0, 10);

/**
 * Moves one resident: move-out at `from`, then at `to` either the move-in with the certificate
 * (with or without consent), or a hand registration with a birth date one day off plus consent.
 */
export async function moveResident(desks: Map<string, Desk>, move: Move, purpose: string, serial: number): Promise<string> {
  const a = desks.get(move.from)!;
  const b = desks.get(move.to)!;
  const address = `${b.name} 中央1-${serial}`;
  const out = await a.clerk.ok<{ certificate: string }>('POST', `/residents/${move.card.addresseeNumber}/move-out`, {
    moveOutDate: todayUtc(), destination: move.to, destinationAddress: address,
  });
  const consent = { purpose, expiresAt: new Date(Date.now() + 30 * DAY).toISOString(), method: 'written' };
  if (move.plan === 'wrong-birth-date') {
    const created = await b.clerk.ok<{ addresseeNumber: string }>('POST', '/residents', {
      name: move.card.name, kana: move.card.kana, birthDate: dayBefore(move.card.birthDate), sex: move.card.sex, address,
      myNumber: move.card.myNumber, previousMunicipality: move.from, movedInAt: new Date().toISOString(),
    });
    await b.clerk.ok('POST', `/residents/${created.addresseeNumber}/consents`, { ...consent, sources: [move.from] });
    return created.addresseeNumber;
  }
  const moved = await b.clerk.ok<{ resident: { addresseeNumber: string } }>('POST', '/move-ins', {
    certificate: out.certificate, myNumber: move.card.myNumber, address, ...(move.plan === 'consent' ? { consent } : {}),
  });
  return moved.resident.addresseeNumber;
}

export async function waitForCodes(desk: Desk, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const backlog = await desk.operator.ok<{ pending: number }>('GET', '/exchange/registrations');
    if (backlog.pending === 0) return;
    if (Date.now() > until) throw new Error(`codes still pending at ${desk.operator.url}: ${backlog.pending}`);
    await sleep(250);
  }
}

export interface JobView {
  id: string;
  status: 'running' | 'completed';
  total: number;
  done: number;
  pending: number;
  pendingRetries: number;
  nextRetryAt: string | null;
  byStatus: Record<string, number>;
  imported: number;
  createdAt: string;
}

export interface JobSubject {
  addresseeNumber: string;
  source: string;
  state: string;
  status: string | null;
  reason: string | null;
  attempts: number;
  imported: number;
  recordCount: number;
  resolvedAt: string | null;
}

export async function readAllSubjects(session: StaffSession, jobId: string): Promise<JobSubject[]> {
  const all: JobSubject[] = [];
  for (let page = 1; ; page++) {
    const res = await session.ok<{ items: JobSubject[]; total: number }>('GET', `/exchange/bulk-queries/${jobId}/subjects?page=${page}&pageSize=500`);
    all.push(...res.items);
    if (res.items.length === 0 || all.length >= res.total) return all;
  }
}

/** Records a resident holds: its own (no provenance) and, per source, the imported ones. */
export async function recordsOf(clerk: StaffSession, addresseeNumber: string): Promise<{
  own: string[]; importedFrom: Map<string, string[]>; copies: { source: string; purpose: string | null; lot: boolean; place: boolean }[];
}> {
  const res = await clerk.ok<{ records: {
    recordId: string; lotNumber: string | null; place: string | null;
    provenance: { sourceMunicipality: string; sourceRecordId: string | null; purpose?: string | null } | null;
  }[] }>('GET', `/residents/${addresseeNumber}/vaccinations`);
  const own: string[] = [];
  const importedFrom = new Map<string, string[]>();
  const copies = [];
  for (const r of res.records) {
    if (!r.provenance) own.push(r.recordId);
    else {
      importedFrom.set(r.provenance.sourceMunicipality, [...(importedFrom.get(r.provenance.sourceMunicipality) ?? []), r.provenance.sourceRecordId ?? '']);
      copies.push({ source: r.provenance.sourceMunicipality, purpose: r.provenance.purpose ?? null, lot: r.lotNumber !== null, place: r.place !== null });
    }
  }
  return { own, importedFrom, copies };
}

/* ---------- helpers ---------- */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pool<T>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
    for (let i = next++; i < items.length; i = next++) await work(items[i]!, i);
  }));
}

const percentile = (sorted: number[], p: number): number | null =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

interface Bar {
  increment(step?: number, payload?: Record<string, string>): void;
  update(value: number, payload?: Record<string, string>): void;
}

/** Progress bars on a terminal (stderr); elsewhere (CI, a test) one line per finished phase. */
function progressBars(): { create(total: number, start: number, payload: { phase: string; detail: string }): Bar; stop(): void } {
  if (process.stderr.isTTY) {
    return new cliProgress.MultiBar({
      stream: process.stderr, clearOnComplete: false, hideCursor: true, format: ' {phase} [{bar}] {value}/{total}  {detail}',
    }, cliProgress.Presets.shades_classic);
  }
  const phases: { phase: string; total: number; value: number }[] = [];
  return {
    create(total, start, payload) {
      const state = { phase: payload.phase.trim(), total, value: start };
      phases.push(state);
      return {
        increment: (step = 1) => { state.value += step; },
        update: (value) => { state.value = value; },
      };
    },
    stop() {
      for (const p of phases) process.stderr.write(`${p.phase}: ${p.value}/${p.total}\n`);
    },
  };
}

interface Control {
  url: string;
  token: string;
}

async function control(ctl: Control, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${ctl.url}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${ctl.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}),
  });
  if (res.status !== 200) throw new Error(`control ${path}: ${res.status} ${await res.text()}`);
}

/* ---------- the run ---------- */

export interface SimulationOptions {
  moveIns: number;
  withoutConsent: number;
  wrongBirthDate: number;
  killSource: boolean;
  dataDir: string;
  municipalities: { code: string; url: string }[];
  residents: number;
  seed: string;
  randomSeed: string;
  purpose: string;
  concurrency: number;
  timeoutSeconds: number;
  password: string;
}

export interface SimulationReport {
  moved: number;
  fetched: number;
  refused: Record<string, number>;
  unavailable: number;
  recordsImported: number;
  lost: number;
  duplicated: number;
  leaked: number;
  unexpected: number;
  moveFailed: number;
  unaccounted: number;
  /** Imported copies holding a field their purpose withholds (minimal disclosure): must be 0. */
  overDisclosed: number;
  /** Queries towards a municipality the resident did not come from, and how many the capability refused. */
  capabilityProbes: { asked: number; refused: number };
  retried: number;
  elapsedSeconds: number;
  perSubjectMs: { p50: number | null; p99: number | null };
  killedSource: { id: string; partial: Record<string, number> } | null;
}

export async function simulate(o: SimulationOptions, out: (line: string) => void = console.log): Promise<SimulationReport> {
  const started = Date.now();
  const rng = seededRandom(o.randomSeed);
  const desks = new Map<string, Desk>();
  for (const m of o.municipalities) {
    const health = await fetch(`${m.url}/health`).then((r) => r.json() as Promise<{ municipality: string; name: string }>);
    if (health.municipality !== m.code) throw new Error(`${m.url} is municipality ${health.municipality}, not ${m.code}`);
    desks.set(m.code, { clerk: new StaffSession(m.url, 'clerk1', o.password), operator: new StaffSession(m.url, 'operator1', o.password), name: health.name });
  }
  const codes = [...desks.keys()];
  if (codes.length < 2) throw new Error('need at least two municipalities');

  // Sources must know their residents' codes, or the gateway cannot route to them (not_found).
  for (const code of codes) await waitForCodes(desks.get(code)!, 300_000);

  // The residents' cards: name, kana, birth date and sex lead to the My Number on the card.
  const cards = new Map<string, string | null>();
  const cardKey = (r: { name: string; kana: string; birthDate: string; sex: string }) => `${r.name}|${r.kana}|${r.birthDate}|${r.sex}`;
  for (const code of codes) {
    for (const g of generateResidents(code, o.residents, o.seed)) cards.set(cardKey(g), cards.has(cardKey(g)) ? null : g.myNumber);
  }
  // Current residents anywhere whose card we hold (seeded, or moved by an earlier run).
  const candidates: { from: string; card: Card }[] = [];
  for (const code of codes) {
    const desk = desks.get(code)!;
    for (let page = 1; ; page++) {
      const res = await desk.operator.ok<{ items: Omit<Card, 'myNumber'>[]; total: number }>('GET', `/residents?status=resident&pageSize=100&page=${page}`);
      for (const r of res.items) {
        const myNumber = cards.get(cardKey(r));
        if (myNumber) candidates.push({ from: code, card: { ...r, myNumber } });
      }
      if (res.items.length === 0 || page * 100 >= res.total) break;
    }
  }
  const chosen = rng.shuffle(candidates).slice(0, o.moveIns);
  if (chosen.length < o.moveIns) out(`note: only ${chosen.length} residents with a known card are left to move (asked for ${o.moveIns})`);
  const plans: Plan[] = chosen.map((_, i) => (i < Math.round(chosen.length * o.withoutConsent) ? 'no-consent'
    : i < Math.round(chosen.length * (o.withoutConsent + o.wrongBirthDate)) ? 'wrong-birth-date' : 'consent'));
  const moves: Move[] = rng.shuffle(plans).map((plan, i) => {
    const { from, card } = chosen[i]!;
    const others = codes.filter((c) => c !== from);
    const purpose = o.purpose === 'mixed' ? PURPOSES[i % PURPOSES.length]! : o.purpose;
    return { from, to: rng.pick(others), card, plan, purpose };
  });

  const bars = progressBars();
  const moving = bars.create(moves.length, 0, { phase: 'moving   ', detail: '' });
  await pool(moves, o.concurrency, async (move, i) => {
    try {
      move.movedAs = await moveResident(desks, move, move.purpose!, i + 1);
    } catch (err) {
      move.error = (err as Error).message;
    }
    moving.increment(1, { detail: `${move.from} → ${move.to}` });
  });
  const moved = moves.filter((m) => m.movedAs);
  const receivers = [...new Set(moved.map((m) => m.to))];
  for (const code of receivers) await waitForCodes(desks.get(code)!, 120_000);

  // --kill-source: the source with most movers goes down before the queries leave.
  let ctl: Control | undefined;
  let killed: string | undefined;
  if (o.killSource && moved.length > 0) {
    ctl = JSON.parse(readFileSync(controlFile(o.dataDir), 'utf8')) as Control;
    const counts = new Map<string, number>();
    for (const m of moved) counts.set(m.from, (counts.get(m.from) ?? 0) + 1);
    killed = [...counts].sort((x, y) => y[1] - x[1])[0]![0];
    await control(ctl, `/members/${killed}/stop`);
  }

  const jobs: { to: string; id: string; createdAt: string }[] = [];
  const submit = async (code: string) => {
    // One job per purpose: a bulk query has one purpose, and it decides the fields released.
    for (const purpose of new Set(moved.filter((m) => m.to === code).map((m) => m.purpose!))) {
      const subjects = moved.filter((m) => m.to === code && m.purpose === purpose).map((m) => ({ addresseeNumber: m.movedAs!, source: m.from }));
      for (let i = 0; i < subjects.length; i += 5000) {
        const job = await desks.get(code)!.operator.ok<JobView>('POST', '/exchange/bulk-queries', { purpose, subjects: subjects.slice(i, i + 5000) });
        jobs.push({ to: code, id: job.id, createdAt: job.createdAt });
      }
    }
  };
  // A stopped municipality takes no work of its own: its receivers' job goes in once it is back.
  for (const code of receivers) if (code !== killed) await submit(code);
  const fetching = bars.create(moved.length, 0, { phase: 'fetching ', detail: '' });
  const views = async () => Promise.all(jobs.map((j) => desks.get(j.to)!.operator.ok<JobView>('GET', `/exchange/bulk-queries/${j.id}`)));
  const until = Date.now() + o.timeoutSeconds * 1000;
  const watch = async (enough: (v: JobView[]) => boolean) => {
    for (;;) {
      const v = await views();
      const unavailable = v.reduce((n, x) => n + (x.byStatus.source_unavailable ?? 0), 0);
      fetching.update(v.reduce((n, x) => n + x.done, 0), { detail: unavailable ? `${unavailable} source_unavailable` : '' });
      if (enough(v) || Date.now() > until) return v;
      await sleep(500);
    }
  };
  let partial: Record<string, number> | undefined;
  if (killed && ctl) {
    // Everyone asked once: the stopped source's residents are the partial results.
    const snapshot = await watch((v) => v.every((x) => x.pending === 0));
    partial = {};
    for (const v of snapshot) for (const [s, n] of Object.entries(v.byStatus)) if (n) partial[s] = (partial[s] ?? 0) + n;
    await control(ctl, `/members/${killed}/start`);
    // On-demand retry instead of waiting for the automatic one (the gateway's retry-after).
    for (const j of jobs) {
      const res = await desks.get(j.to)!.operator.call('POST', `/exchange/bulk-queries/${j.id}/retry`);
      if (res.status !== 202 && res.status !== 409) throw new Error(`retry ${j.id}: ${res.status}`);
    }
    if (receivers.includes(killed)) await submit(killed);
  }
  await watch((v) => v.every((x) => x.status === 'completed'));

  // Every moved resident's outcome, then the records on both sides.
  const outcome = new Map<string, JobSubject>();
  for (const j of jobs) {
    for (const s of await readAllSubjects(desks.get(j.to)!.operator, j.id)) outcome.set(`${j.to}|${s.addresseeNumber}|${s.source}`, s);
  }
  const latencies: number[] = [];
  const verifying = bars.create(moved.length, 0, { phase: 'verifying', detail: '' });
  const report: SimulationReport = {
    moved: moved.length, fetched: 0, refused: {}, unavailable: 0, recordsImported: 0, lost: 0, duplicated: 0, leaked: 0, unexpected: 0,
    moveFailed: moves.length - moved.length, unaccounted: 0, overDisclosed: 0, capabilityProbes: { asked: 0, refused: 0 }, retried: 0, elapsedSeconds: 0, perSubjectMs: { p50: null, p99: null },
    killedSource: killed ? { id: killed, partial: partial ?? {} } : null,
  };
  const jobCreated = new Map(jobs.map((j) => [j.to, Date.parse(j.createdAt)]));
  const expected: Record<Plan, string> = { consent: 'ok', 'no-consent': 'no_consent', 'wrong-birth-date': 'identity_mismatch' };
  await pool(moved, o.concurrency, async (m) => {
    const s = outcome.get(`${m.to}|${m.movedAs}|${m.from}`);
    // Not final when the wait ended (still retrying, or never tried): unavailable, not refused.
    const status = !s ? null : s.state === 'done' ? s.status : 'source_unavailable';
    if (!s || !status) report.unaccounted += 1;
    else {
      if (s.attempts > 1) report.retried += 1;
      if (s.resolvedAt) latencies.push(Date.parse(s.resolvedAt) - jobCreated.get(m.to)!);
      if (status === 'ok') report.fetched += 1;
      else if (status === 'source_unavailable') report.unavailable += 1;
      else report.refused[status] = (report.refused[status] ?? 0) + 1;
      if (status !== 'source_unavailable' && status !== expected[m.plan]) report.unexpected += 1;
      const [atSource, atDestination] = await Promise.all([
        recordsOf(desks.get(m.from)!.clerk, m.card.addresseeNumber), recordsOf(desks.get(m.to)!.clerk, m.movedAs!),
      ]);
      const copies = atDestination.importedFrom.get(m.from) ?? [];
      const distinct = new Set(copies);
      if (status === 'ok') {
        const allowed = DISCLOSURE_POLICY[m.purpose as keyof typeof DISCLOSURE_POLICY];
        report.overDisclosed += atDestination.copies.filter((c) => c.source === m.from
          && ((c.lot && !allowed.includes('lotNumber')) || (c.place && !allowed.includes('location')) || c.purpose !== m.purpose)).length;
        report.recordsImported += distinct.size;
        report.lost += atSource.own.filter((id) => !distinct.has(id)).length;
        report.duplicated += copies.length - distinct.size + [...distinct].filter((id) => !atSource.own.includes(id)).length;
      } else {
        report.leaked += copies.length;
      }
    }
    verifying.increment();
  });
  bars.stop();
  // The move-in capability: a consented query towards a municipality the resident did not come from is refused.
  for (const code of receivers) {
    const m = moved.find((x) => x.to === code && x.plan === 'consent' && codes.some((c) => c !== x.from && c !== x.to));
    if (!m) continue;
    const elsewhere = codes.find((c) => c !== m.from && c !== m.to)!;
    const clerk = desks.get(code)!.clerk;
    await clerk.ok('POST', `/residents/${m.movedAs}/consents`, { purpose: m.purpose, sources: [elsewhere], expiresAt: new Date(Date.now() + DAY).toISOString(), method: 'written' });
    const probe = await clerk.ok<{ results: { status: string; reason?: string }[] }>('POST', '/exchange/queries', {
      purpose: m.purpose, subjects: [{ addresseeNumber: m.movedAs, source: elsewhere }],
    });
    report.capabilityProbes.asked += 1;
    if (probe.results[0]?.status === 'denied' && probe.results[0].reason === 'source_not_on_move_chain') report.capabilityProbes.refused += 1;
  }
  latencies.sort((x, y) => x - y);
  report.perSubjectMs = { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  report.elapsedSeconds = Math.round((Date.now() - started) / 100) / 10;

  const refusedTotal = Object.values(report.refused).reduce((n, x) => n + x, 0);
  const rows: [string, string | number][] = [
    ['moved', report.moved],
    ['fetched (ok)', report.fetched],
    ...Object.entries(report.refused).sort().map(([k, v]): [string, number] => [`refused: ${k}`, v]),
    ['unavailable', report.unavailable],
    ['not accounted for', report.unaccounted],
    ['retried at least once', report.retried],
    ['records imported', report.recordsImported],
    ['records lost / duplicated', `${report.lost} / ${report.duplicated}`],
    ['records held after a refusal', report.leaked],
    ['unexpected outcomes', report.unexpected],
    ['copies beyond their purpose', report.overDisclosed],
    ['capability probes refused', `${report.capabilityProbes.refused} / ${report.capabilityProbes.asked}`],
    ['moves failed', report.moveFailed],
    ['elapsed', `${report.elapsedSeconds} s`],
    ['per subject p50 / p99', `${report.perSubjectMs.p50 ?? '-'} / ${report.perSubjectMs.p99 ?? '-'} ms`],
    ...(report.killedSource ? [['source stopped and restarted', `${report.killedSource.id} (partial: ${JSON.stringify(report.killedSource.partial)})`] as [string, string]] : []),
  ];
  out('');
  for (const [k, v] of rows) out(`  ${k.padEnd(30)} ${v}`);
  if (report.fetched + refusedTotal + report.unavailable + report.unaccounted !== report.moved) out('  counts do not add up');
  for (const m of moves.filter((x) => x.error).slice(0, 5)) out(`  move failed: ${m.from} → ${m.to}: ${m.error}`);
  out(JSON.stringify(report));
  return report;
}

/** Non-zero exit when anything was lost, duplicated, leaked or not accounted for. */
export const failed = (r: SimulationReport): boolean =>
  r.lost > 0 || r.duplicated > 0 || r.leaked > 0 || r.unexpected > 0 || r.moveFailed > 0 || r.unaccounted > 0
  || r.overDisclosed > 0 || r.capabilityProbes.refused !== r.capabilityProbes.asked
  || r.fetched + Object.values(r.refused).reduce((n, x) => n + x, 0) + r.unavailable !== r.moved;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const share = (name: string) => (value: string) => {
    const n = Number(value);
    if (!(n >= 0 && n <= 1)) throw new Error(`${name} must be a share between 0 and 1`);
    return n;
  };
  const program = new Command()
    .name('simulate')
    .description('Rehearses move-in season against a running federation (npm start).')
    .option('--move-ins <n>', 'residents to move', '100')
    .addOption(new Option('--without-consent <share>', 'share of move-ins without consent').argParser(share('--without-consent')).default(0.1))
    .addOption(new Option('--wrong-birth-date <share>', 'share registered by hand with a mistyped birth date').argParser(share('--wrong-birth-date')).default(0.05))
    .option('--kill-source', 'stop one source municipality before the bulk queries, then restart it and retry', false)
    .option('--data-dir <dir>', 'the launcher\'s data folder (control.json, for --kill-source)', 'data')
    .option('--municipality <code=url...>', 'staff URL of a municipality (default: the npm start federation)')
    .option('--residents <n>', 'residents seeded per municipality (regenerates their cards)', '400')
    .option('--seed <seed>', 'the seed generator\'s seed', DEMO_SEED)
    .option('--random-seed <seed>', 'seed of the simulator\'s own choices (reproducible runs)', String(Date.now()))
    .option('--purpose <purpose>', `one of ${PURPOSES.join(', ')}, or mixed (rotated over the moves)`, 'mixed')
    .option('--concurrency <n>', 'staff requests in parallel', '8')
    .option('--timeout <seconds>', 'longest wait for the bulk queries', '900')
    .parse();
  const opts = program.opts<{
    moveIns: string; withoutConsent: number; wrongBirthDate: number; killSource: boolean; dataDir: string; municipality?: string[];
    residents: string; seed: string; randomSeed: string; purpose: string; concurrency: string; timeout: string;
  }>();
  const municipalities = opts.municipality?.length
    ? opts.municipality.map((pair) => {
      const [code, url] = pair.split('=');
      if (!code || !url) throw new Error(`--municipality ${pair}: expected <code>=<url>`);
      return { code, url: url.replace(/\/+$/, '') };
    })
    : DEMO_MUNICIPALITIES.map((m) => ({ code: m.code, url: `http://127.0.0.1:${m.port}` }));
  if (opts.purpose !== 'mixed' && !(PURPOSES as readonly string[]).includes(opts.purpose)) throw new Error(`--purpose must be one of ${PURPOSES.join(', ')} or mixed`);
  if (opts.withoutConsent + opts.wrongBirthDate > 1) throw new Error('--without-consent and --wrong-birth-date together must not exceed 1');
  let report: SimulationReport;
  try {
    report = await simulate({
      moveIns: Number(opts.moveIns), withoutConsent: opts.withoutConsent, wrongBirthDate: opts.wrongBirthDate, killSource: opts.killSource,
      dataDir: opts.dataDir, municipalities, residents: Number(opts.residents), seed: opts.seed, randomSeed: opts.randomSeed, purpose: opts.purpose,
      concurrency: Number(opts.concurrency), timeoutSeconds: Number(opts.timeout), password: process.env.HIKITSUGI_DEMO_PASSWORD ?? DEMO_PASSWORD,
    });
  } catch (err) {
    // The run itself broke (a member unreachable, a login refused): say so in the JSON line too.
    console.error(`simulation aborted: ${(err as Error).message}`);
    console.log(JSON.stringify({ error: (err as Error).message }));
    process.exit(2);
  }
  process.exit(failed(report) ? 1 : 0);
}
