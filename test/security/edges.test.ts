/**
 * Trust at the edges of a municipality (SECURITY.md, threat model §1): headers on every answer, whose request id
 * the audit trail carries, what a refusal before any signature check is logged under, and the
 * My Number refused in every free-text field a clerk types.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import express from 'express';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { createBaseApp } from '../../shared/platform/http.ts';
import { AppError, errorHandler, notFoundHandler, PROBLEM_BASE } from '../../shared/platform/errors.ts';
import { createLogger } from '../../shared/platform/log.ts';
import { closeServer, listen } from '../../shared/platform/server.ts';
import { logRefusals } from '../../shared/federation/member-http.ts';
import { api } from '../fixtures/http.ts';
import { buildResident, createResidentVia, newKey, postRecord } from '../fixtures/factories.ts';
import { DEMO_MUNICIPALITIES, startMunicipality, type RunningMunicipality } from '../fixtures/municipality.ts';
import { figure } from './support.ts';

const MY_NUMBER = completeMyNumber('87654321098');
const fullWidth = (s: string) => s.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)));
/** The notations a clerk could type or paste; every free-text field below is tried with each. */
const NOTATIONS = [
  MY_NUMBER,
  `${MY_NUMBER.slice(0, 4)}-${MY_NUMBER.slice(4, 8)}-${MY_NUMBER.slice(8)}`,
  `${MY_NUMBER.slice(0, 4)} ${MY_NUMBER.slice(4, 8)} ${MY_NUMBER.slice(8)}`,
  fullWidth(`${MY_NUMBER.slice(0, 4)}\u3000${MY_NUMBER.slice(4, 8)}\u3000${MY_NUMBER.slice(8)}`),
  `${MY_NUMBER.slice(0, 4)}.${MY_NUMBER.slice(4, 8)}.${MY_NUMBER.slice(8)}`,
  `${MY_NUMBER.slice(0, 6)}${fullWidth(MY_NUMBER.slice(6))}`,
  `${MY_NUMBER.slice(0, 4)}/${MY_NUMBER.slice(4, 8)}/${MY_NUMBER.slice(8)}`,
  `${MY_NUMBER.slice(0, 4)},${MY_NUMBER.slice(4, 8)},${MY_NUMBER.slice(8)}`,
  `(${MY_NUMBER.slice(0, 4)})${MY_NUMBER.slice(4, 8)}-${MY_NUMBER.slice(8)}`,
  `${MY_NUMBER.slice(0, 4)}\u200B${MY_NUMBER.slice(4, 8)}\u200B${MY_NUMBER.slice(8)}`,
  `${MY_NUMBER.slice(0, 4)}${' '.repeat(8)}${MY_NUMBER.slice(4, 8)}${' '.repeat(8)}${MY_NUMBER.slice(8)}`,
];
/** A header carries Latin-1 only: the notations a client can put there. */
const HEADER_NOTATIONS = NOTATIONS.filter((v) => /^[\u0020-\u00ff]*$/.test(v));

describe('security: trust at the edges of a municipality', function () {
  this.timeout(120_000);
  let m: RunningMunicipality;
  let clerk: string;
  let officer: string;
  let admin: string;
  let addressee: string;
  let recordId: string;

  before(async () => {
    m = await startMunicipality(DEMO_MUNICIPALITIES.toda);
    [clerk, officer, admin] = await Promise.all([m.tokenFor('clerk'), m.tokenFor('privacy_officer'), m.tokenFor('admin')]);
    addressee = (await createResidentVia(m, clerk, { birthDate: '1970-05-05' })).resident.addresseeNumber;
    recordId = (await postRecord(m, clerk, addressee)).body.recordId;
  });
  after(async () => m?.stop());

  it('when the staff API answers (data, refusal or unknown route), then it says Cache-Control: no-store and a CSP without upgrade-insecure-requests', async () => {
    for (const [path, token] of [[`/residents/${addressee}`, clerk], ['/residents/0000000000', clerk], ['/nowhere', clerk], ['/auth/me', undefined]] as const) {
      const res = await api('GET', `${m.url}${path}`, { token });
      expect(res.headers.get('cache-control'), path).to.equal('no-store');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).to.include("default-src 'self'").and.to.include("script-src 'self'").and.to.include("frame-ancestors 'none'").and.to.include("object-src 'none'");
      expect(csp, path).not.to.include('upgrade-insecure-requests');
      expect(res.headers.get('strict-transport-security'), path).to.equal(null);
    }
    figure('no-store and CSP: 4 answers of the plain-HTTP staff port (data, 404, unknown route, 401), 4 with no-store and a CSP without upgrade-insecure-requests or HSTS');
  });

  it('when a member app is served over TLS, then its CSP keeps upgrade-insecure-requests and HSTS', async () => {
    const logger = createLogger({ name: 'edges-tls', level: 'silent' });
    const app = createBaseApp(logger, { transport: 'tls' });
    app.get('/x', (_req, res) => { res.json({ ok: true }); });
    const { server, url } = await listen(app, 0);
    try {
      const res = await fetch(`${url}/x`);
      expect(res.headers.get('content-security-policy')).to.include('upgrade-insecure-requests');
      expect(res.headers.get('strict-transport-security')).to.match(/max-age=/);
      expect(res.headers.get('cache-control')).to.equal('no-store');
      figure('TLS port: 1 answer, with no-store, upgrade-insecure-requests and HSTS');
    } finally {
      await closeServer(server);
    }
  });

  it('when a client sends its own X-Request-Id with a write, then the access-log entry carries the member\'s own id and the client\'s id is only echoed apart', async () => {
    const chosen = 'someone-elses-trace-0001';
    const res = await api('PATCH', `${m.url}/residents/${addressee}`, {
      token: clerk, headers: { 'x-request-id': chosen }, body: { address: '戸田市 9-9', reason: '転居届による' },
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const own = res.headers.get('x-request-id')!;
    expect(own).to.match(/^[0-9a-f-]{36}$/);
    expect(own).not.to.equal(chosen);
    expect(res.headers.get('x-client-request-id')).to.equal(chosen);
    const chosenTrace = await api('GET', `${m.url}/audit/trace/${chosen}`, { token: officer });
    const entries = (chosenTrace.body.hops ?? []).flatMap((h: { entries: unknown[] }) => h.entries);
    expect(entries, 'nothing is written under the id the client chose').to.deep.equal([]);
    const ownTrace = await api('GET', `${m.url}/audit/trace/${own}`, { token: officer });
    const ownEntries = ownTrace.body.hops.flatMap((h: { entries: { requestId: string; subject: string }[] }) => h.entries);
    expect(ownEntries.length).to.be.greaterThan(0);
    for (const e of ownEntries) expect(e.requestId).to.equal(own);
    figure(`request id: 1 write with a client's X-Request-Id; 0 entries under the client's id, ${ownEntries.length} under the member's own`);
  });

  it('when a request is refused before any signature is checked, then the refusal is logged under the receiving member\'s own id, the sender\'s id only as clientRequestId', async () => {
    const lines: string[] = [];
    const destination = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const logger = createLogger({ name: 'edges-refusal', level: 'debug', destination });
    const app = createBaseApp(logger, { transport: 'tls' });
    app.post('/federation/record-requests', express.json(), () => {
      throw new AppError(400, 'invalid-token', 'Envelope is not a readable JWS', { field: 'forward', rule: 'must be a compact JWS' });
    });
    app.use(notFoundHandler);
    app.use(logRefusals(logger));
    app.use(errorHandler(logger));
    const { server, url } = await listen(app, 0);
    try {
      const chosen = 'sender-chosen-trace-42';
      const res = await fetch(`${url}/federation/record-requests`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': chosen }, body: JSON.stringify({ forward: 'junk' }),
      });
      const problem = await res.json() as { type: string; requestId: string };
      expect(res.status).to.equal(400);
      expect(problem.type).to.equal(`${PROBLEM_BASE}invalid-token`);
      const own = res.headers.get('x-request-id')!;
      expect(problem.requestId).to.equal(own).and.not.to.equal(chosen);
      const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'refused')!;
      expect(refused.requestId).to.equal(own);
      expect(refused.clientRequestId).to.equal(chosen);
    } finally {
      await closeServer(server);
    }
  });

  it('when a My Number in any notation is typed into any free-text field, then 400 names the field and the rule "must not contain a My Number", and nothing changes', async () => {
    const staffBefore = (await api('GET', `${m.url}/staff`, { token: admin })).body;
    const valid = buildResident({ birthDate: '1980-01-01' });
    const cases: { name: string; method: string; path: string; field: string; body: (v: string) => unknown; token?: string; headers?: (v: string) => Record<string, string>; query?: boolean; header?: boolean }[] = [
      { name: 'resident name', method: 'POST', path: '/residents', field: 'name', body: (v) => ({ ...valid, name: `山田 ${v}` }) },
      { name: 'resident address', method: 'POST', path: '/residents', field: 'address', body: (v) => ({ ...valid, address: `戸田市 ${v}` }) },
      { name: 'resident update reason', method: 'PATCH', path: `/residents/${addressee}`, field: 'reason', body: (v) => ({ address: '戸田市 1-2', reason: `番号 ${v}` }) },
      { name: 'resident update address', method: 'PATCH', path: `/residents/${addressee}`, field: 'address', body: (v) => ({ address: v, reason: '転居' }) },
      { name: 'search by name', method: 'GET', path: '/residents', field: 'name', body: (v) => ({ name: v }), query: true },
      { name: 'record place', method: 'POST', path: `/residents/${addressee}/vaccinations`, field: 'place', headers: () => ({ 'idempotency-key': newKey() }), body: (v) => ({ occurrenceDate: '2021-07-01', vaccineCode: 'covid19-comirnaty', lotNumber: 'FF3620', doseNumber: 1, place: `会場 ${v}` }) },
      { name: 'record lot number', method: 'POST', path: `/residents/${addressee}/vaccinations`, field: 'lotNumber', headers: () => ({ 'idempotency-key': newKey() }), body: (v) => ({ occurrenceDate: '2021-07-01', vaccineCode: 'covid19-comirnaty', lotNumber: v, doseNumber: 1, place: '会場' }) },
      { name: 'correction reason', method: 'POST', path: `/residents/${addressee}/vaccinations/${recordId}/corrections`, field: 'reason', body: (v) => ({ place: '別会場', reason: v }) },
      { name: 'void reason', method: 'POST', path: `/residents/${addressee}/vaccinations/${recordId}/void`, field: 'reason', body: (v) => ({ reason: `誤登録 ${v}` }) },
      { name: 'Idempotency-Key', method: 'POST', path: `/residents/${addressee}/vaccinations`, field: 'Idempotency-Key', header: true, headers: (v) => ({ 'idempotency-key': v }), body: () => ({ occurrenceDate: '2021-07-01', vaccineCode: 'covid19-comirnaty', lotNumber: 'FF3620', doseNumber: 1, place: '会場' }) },
      { name: 'move-out destination address', method: 'POST', path: `/residents/${addressee}/move-out`, field: 'destinationAddress', body: (v) => ({ moveOutDate: '2026-01-10', destination: '293610', destinationAddress: `田原本町 ${v}` }) },
      { name: 'move-in address', method: 'POST', path: '/move-ins', field: 'address', body: (v) => ({ certificate: 'a.b.c', myNumber: completeMyNumber('11122233344'), address: `戸田市 ${v}` }) },
      { name: 'exception justification', method: 'POST', path: '/exchange/exception-requests', field: 'justification', body: (v) => ({ addresseeNumber: addressee, source: '293610', purpose: 'next-dose-scheduling', justification: `救急搬送され本人の同意を得られないため確認が必要 ${v}` }) },
      { name: 'consent revoke reason', method: 'POST', path: `/residents/${addressee}/consents/00000000-0000-4000-8000-000000000000/revoke`, field: 'reason', body: (v) => ({ reason: `本人申出 ${v}` }) },
      { name: 'staff display name', method: 'POST', path: '/staff', field: 'displayName', token: admin, body: (v) => ({ username: 'newclerk9', displayName: `職員 ${v}`, role: 'clerk', password: 'long-enough-password' }) },
      { name: 'staff username', method: 'POST', path: '/staff', field: 'username', token: admin, body: (v) => ({ username: v, displayName: '職員', role: 'clerk', password: 'long-enough-password' }) },
      { name: 'log filter subject', method: 'GET', path: '/audit/entries', field: 'subject', token: officer, body: (v) => ({ subject: v }), query: true },
      { name: 'log filter request id', method: 'GET', path: '/audit/entries', field: 'requestId', token: officer, body: (v) => ({ requestId: v }), query: true },
    ];
    const before = await m.ctx.sequelize.query('SELECT (SELECT COUNT(*) FROM residents) AS r, (SELECT COUNT(*) FROM vaccination_records) AS v, (SELECT COUNT(*) FROM staff) AS s', { plain: true });
    let tried = 0;
    let refused = 0;
    for (const c of cases) for (const v of c.header ? HEADER_NOTATIONS : NOTATIONS) {
      tried += 1;
      const input = c.body(v) as Record<string, string>;
      const url = c.query ? `${m.url}${c.path}?${new URLSearchParams(input).toString()}` : `${m.url}${c.path}`;
      const res = await api(c.method, url, { token: c.token ?? clerk, headers: c.headers?.(v), ...(c.query ? {} : { body: input }) });
      const errors = (res.body.errors ?? []) as { field: string; rule: string }[];
      const what = `${c.name} (${JSON.stringify(v)}): ${JSON.stringify(res.body)}`;
      expect(res.status, what).to.equal(400);
      expect(res.body.type, what).to.equal(`${PROBLEM_BASE}validation`);
      expect(errors.some((e) => e.field === c.field && e.rule === 'must not contain a My Number') || (res.body.field === c.field && /My Number/.test(res.body.rule)), what).to.equal(true);
      expect(JSON.stringify(res.body), `${what}: the refusal never echoes the value`).not.to.include(MY_NUMBER);
      refused += 1;
    }
    const after = await m.ctx.sequelize.query('SELECT (SELECT COUNT(*) FROM residents) AS r, (SELECT COUNT(*) FROM vaccination_records) AS v, (SELECT COUNT(*) FROM staff) AS s', { plain: true });
    expect(after).to.deep.equal(before);
    expect((await api('GET', `${m.url}/staff`, { token: admin })).body).to.deep.equal(staffBefore);
    figure(`free text: ${cases.length} fields × ${NOTATIONS.length} notations (${HEADER_NOTATIONS.length} in a header): ${tried} cases, ${refused} refused with 400 "must not contain a My Number", 0 stored, 0 5xx`);
  });
});
