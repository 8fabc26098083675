/**
 * The source material's "simultaneous logins mixed users' data" (the entry follow-up system):
 * many staff sessions of all three municipalities hit read and write routes, and federation
 * queries, all at once. Every answer is checked against its asker: the echoed X-Request-Id,
 * the staff member and municipality, the resident asked for, the marker each write carried;
 * afterwards each write's access-log entries (found by its request id) must name its own asker.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { AKIOTA, securityFederation, TAWARAMOTO, TODA, type SecurityFederation } from './federation.ts';
import { figure, heldResidents, moveResident, type Moved } from './support.ts';

const CODES = [TAWARAMOTO, AKIOTA, TODA];
const USERS = ['clerk1', 'clerk2', 'operator1', 'officer1'] as const;
/** Requests per session; 12 sessions, so 360 in flight at once by default. */
const PER_SESSION = Number(process.env.SECURITY_CONCURRENCY_PER_SESSION ?? 30);
const REQUEST_TIMEOUT_MS = 60_000;

interface Session {
  code: string;
  user: string;
  staffId: string;
  token: string;
  residents: string[];
  movedIn: Moved;
}

interface Planned {
  session: Session;
  kind: string;
  requestId: string;
  method: string;
  path: string;
  body?: unknown;
  /** Mismatches between the answer and its asker (empty when it belongs to the asker). */
  /** `own` is the member's own request id (X-Request-Id), the correlation id of the answer. */
  check(status: number, body: any, own: string): string[];
  /** Writes: the resident whose access-log entries must name this asker. */
  subject?: string;
}

describe('security: concurrent staff sessions', function () {
  this.timeout(240_000);
  let fed: SecurityFederation;
  const sessions: Session[] = [];

  before(async () => {
    fed = await securityFederation();
    // One resident moved into each municipality with consent, so its clerks can run federation queries.
    const moves = new Map<string, Moved>();
    for (const [from, to] of [[TAWARAMOTO, AKIOTA], [AKIOTA, TODA], [TODA, TAWARAMOTO]] as const) moves.set(to, await moveResident(fed, from, to));
    for (const code of CODES) {
      const residents = (await heldResidents(fed, code)).filter((r) => r.status === 'resident').map((r) => r.addresseeNumber).slice(0, 6);
      for (const user of USERS) {
        const token = await fed.login(code, user);
        const me = await fetch(`${fed.url(code)}/auth/me`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json()) as { id: string };
        sessions.push({ code, user, staffId: me.id, token, residents, movedIn: moves.get(code)! });
      }
    }
  });

  function plan(): Planned[] {
    const out: Planned[] = [];
    for (const s of sessions) {
      for (let n = 0; n < PER_SESSION; n++) {
        const requestId = `conc.${s.code}.${s.user}.${n}.${randomUUID().slice(0, 8)}`;
        const addressee = s.residents[(n + s.user.length) % s.residents.length]!;
        const base = { session: s, requestId };
        const me: Planned = {
          ...base, kind: 'me', method: 'GET', path: '/auth/me',
          check: (status, body) => (status === 200 && body.id === s.staffId && body.username === s.user && body.municipality === s.code ? [] : [`me: ${status} ${body?.username}@${body?.municipality}`]),
        };
        const readResident: Planned = {
          ...base, kind: 'read resident', method: 'GET', path: `/residents/${addressee}`,
          check: (status, body) => (status === 200 && body.addresseeNumber === addressee ? [] : [`resident: ${status} ${body?.addresseeNumber} for ${addressee}`]),
        };
        let choices: Planned[];
        if (s.user.startsWith('clerk')) {
          const marker = `同時接続確認 ${s.code}-${s.user}-${n}`;
          const dose = 1 + (n % 9);
          choices = [me, readResident, {
            ...base, kind: 'read records', method: 'GET', path: `/residents/${addressee}/vaccinations`,
            check: (status, body) => (status === 200 && body.addresseeNumber === addressee && Array.isArray(body.records) ? [] : [`records: ${status} ${body?.addresseeNumber} for ${addressee}`]),
          }, {
            ...base, kind: 'write resident', method: 'PATCH', path: `/residents/${addressee}`, subject: addressee,
            body: { address: marker, reason: '同時接続の確認' },
            check: (status, body) => (status === 200 && body.addresseeNumber === addressee && body.address === marker ? [] : [`patch: ${status} ${body?.addresseeNumber}/${body?.address} for ${addressee}/${marker}`]),
          }, {
            ...base, kind: 'write ticket', method: 'POST', path: `/residents/${addressee}/tickets`, subject: addressee,
            body: { type: 1, doseNumber: dose },
            check: (status, body) => (status === 201 && body.doseNumber === dose && String(body.ocrLine).includes(s.code) ? [] : [`ticket: ${status} dose ${body?.doseNumber} ${body?.ocrLine}`]),
          }];
          // A few federation queries per clerk: the whole path through the gateway and the source, under load.
          if (n < 2) {
            choices = [{
              ...base, kind: 'federation query', method: 'POST', path: '/exchange/queries',
              body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: s.movedIn.toAddressee, source: s.movedIn.from }] },
              check: (status, body, own) => {
                const r = body?.results?.[0];
                return status === 200 && body.requestId === own && body.results.length === 1 && r.addresseeNumber === s.movedIn.toAddressee
                  && r.source === s.movedIn.from && r.status === 'ok' && r.recordCount === s.movedIn.recordCount
                  ? [] : [`query: ${status} ${JSON.stringify(body).slice(0, 200)}`];
              },
            }];
          }
        } else if (s.user === 'operator1') {
          choices = [me, readResident, {
            ...base, kind: 'search residents', method: 'GET', path: `/residents?pageSize=5&page=${1 + (n % 2)}`,
            check: (status, body) => (status === 200 && Array.isArray(body.items) && body.items.every((r: { addresseeNumber: string }) => known(s.code).has(r.addresseeNumber))
              ? [] : [`search: ${status} items not all of ${s.code}`]),
          }];
        } else {
          choices = [me, {
            ...base, kind: 'disclosure report', method: 'GET', path: `/residents/${addressee}/disclosure`,
            check: (status, body) => (status === 200 && body.addresseeNumber === addressee && body.municipality?.code === s.code ? [] : [`disclosure: ${status} ${body?.addresseeNumber}@${body?.municipality?.code}`]),
          }, {
            ...base, kind: 'read log', method: 'GET', path: '/audit/entries?limit=5',
            check: (status, body) => (status === 200 && Array.isArray(body.entries ?? body.items) ? [] : [`log: ${status}`]),
          }];
        }
        out.push(choices[n % choices.length]!);
      }
    }
    return out;
  }

  const knownAddressees = new Map<string, Set<string>>();
  const known = (code: string) => knownAddressees.get(code)!;

  it('when hundreds of requests of twelve sessions in three municipalities run at once, then every answer belongs to its asker', async () => {
    for (const code of CODES) knownAddressees.set(code, new Set((await heldResidents(fed, code)).map((r) => r.addresseeNumber)));
    const planned = plan();
    const mismatches: string[] = [];
    let checked = 0;
    const answers = await Promise.all(planned.map(async (p) => {
      const res = await fetch(`${fed.url(p.session.code)}${p.path}`, {
        method: p.method,
        headers: { authorization: `Bearer ${p.session.token}`, 'x-request-id': p.requestId, ...(p.body ? { 'content-type': 'application/json' } : {}) },
        body: p.body ? JSON.stringify(p.body) : undefined,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      return { p, status: res.status, echoed: res.headers.get('x-client-request-id'), own: res.headers.get('x-request-id') ?? '', body: text && /json/.test(res.headers.get('content-type') ?? '') ? JSON.parse(text) : text };
    }));
    for (const { p, status, echoed, own, body } of answers) {
      checked += 1;
      const wrong = p.check(status, body, own);
      if (echoed !== p.requestId) wrong.push(`X-Client-Request-Id ${echoed} for ${p.requestId}`);
      for (const w of wrong) mismatches.push(`${p.session.user}@${p.session.code} ${p.kind}: ${w}`);
    }

    // Each write's access-log entries, found by its request id, name its own asker and resident.
    let traced = 0;
    const officers = new Map(sessions.filter((s) => s.user === 'officer1').map((s) => [s.code, s.token]));
    for (const { p, status, own } of answers) {
      if (!p.subject || status >= 300) continue;
      // The member's own id (X-Request-Id) is the correlation id; the one the client sent is only echoed.
      const traced_ = await fetch(`${fed.url(p.session.code)}/audit/trace/${own}`, { headers: { authorization: `Bearer ${officers.get(p.session.code)}` } });
      const trace = await traced_.json() as {
        hops: { entries: { actorId: string; subject: string | null; actingMunicipality: string | null; requestId: string }[] }[];
      };
      expect(traced_.status, `trace of ${own}: ${JSON.stringify(trace)}`).to.equal(200);
      const entries = trace.hops.flatMap((h) => h.entries);
      traced += 1;
      if (entries.length === 0) mismatches.push(`${own}: no access-log entry`);
      for (const e of entries) {
        if (e.actorId !== p.session.staffId || e.subject !== p.subject || e.requestId !== own) {
          mismatches.push(`${p.requestId}: logged as ${e.actorId} on ${e.subject} (asker ${p.session.staffId} on ${p.subject})`);
        }
      }
    }
    const kinds = new Map<string, number>();
    for (const p of planned) kinds.set(p.kind, (kinds.get(p.kind) ?? 0) + 1);
    figure(`concurrency: ${sessions.length} sessions, ${checked} answers checked, ${traced} writes traced in the access log, ${mismatches.length} mismatches`);
    figure(`  (${[...kinds].map(([k, v]) => `${v} ${k}`).join(', ')})`);
    expect(planned.length).to.equal(sessions.length * PER_SESSION);
    expect(mismatches, mismatches.slice(0, 10).join('\n')).to.deep.equal([]);
  });
});
