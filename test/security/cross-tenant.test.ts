/**
 * Cross-tenant access: staff of one municipality reaching another's residents by any route,
 * staff reaching routes of another role (separation of duties, both ways), and a municipality
 * asking the gateway with a code that is not its own. Every attempt must be refused and leave
 * the target's data as it was; controls show the same routes do answer their rightful callers.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { MemberClient } from '../../shared/federation/member-http.ts';
import { GATEWAY_ID } from '../../shared/federation/protocol.ts';
import { api } from '../fixtures/http.ts';
import { buildRecord } from '../fixtures/factories.ts';
import { AKIOTA, securityFederation, TAWARAMOTO, TODA, type SecurityFederation } from './federation.ts';
import {
  AttackTally, clientOf, countRows, databasePath, heldResidents, inDays, looseSubject, moveResident, MUNICIPALITY_TABLES,
  openReadOnly, randomCode, signQuery, credentialsOf,
} from './support.ts';
import { isRefusal } from '../fixtures/refusals.ts';

const A = TAWARAMOTO;
const B = TODA;
const C = AKIOTA;

type Call = [method: string, path: string, body?: unknown];

/** Every staff route that reads or changes a resident, a record or the log, aimed at one resident and record. */
function residentRoutes(addressee: string, recordId: string, destination: string): Call[] {
  return [
    ['GET', `/residents/${addressee}`],
    ['PATCH', `/residents/${addressee}`, { address: '越境 1-1', reason: '越境アクセス' }],
    ['GET', `/residents/${addressee}/history`],
    ['GET', `/residents/${addressee}/vaccinations`],
    ['POST', `/residents/${addressee}/vaccinations`, buildRecord()],
    ['GET', `/residents/${addressee}/vaccinations/${recordId}`],
    ['GET', `/residents/${addressee}/vaccinations/${recordId}/history`],
    ['POST', `/residents/${addressee}/vaccinations/${recordId}/corrections`, { lotNumber: 'FF0001', reason: '越境アクセス' }],
    ['POST', `/residents/${addressee}/vaccinations/${recordId}/void`, { reason: '越境アクセス' }],
    ['GET', `/residents/${addressee}/immunizations`],
    ['GET', `/residents/${addressee}/tickets`],
    ['POST', `/residents/${addressee}/tickets`, { type: 1, doseNumber: 1 }],
    ['GET', `/residents/${addressee}/consents`],
    ['POST', `/residents/${addressee}/consents`, { purpose: 'next-dose-scheduling', sources: [destination], expiresAt: inDays(30), method: 'written' }],
    ['POST', `/residents/${addressee}/move-out`, { moveOutDate: '2026-01-01', destination, destinationAddress: '越境 1-1' }],
    ['GET', `/residents/${addressee}/disclosure`],
    ['POST', '/exchange/queries', { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: addressee, source: destination }] }],
    ['POST', '/exchange/exception-requests', { addresseeNumber: addressee, source: destination, purpose: 'next-dose-scheduling', justification: '意識不明で搬送され同意を得られないため至急確認が必要' }],
  ];
}

const LIST_ROUTES: Call[] = [
  ['GET', '/residents?page=1'],
  ['GET', '/ticket-reviews'],
  ['GET', '/exchange/exception-requests'],
  ['GET', '/audit/entries'],
  ['GET', '/audit/export.csv'],
  ['POST', '/audit/verify', {}],
  ['GET', '/staff'],
];

const AUDIT_ROUTES: Call[] = [
  ['GET', '/audit/entries'], ['GET', '/audit/entries/1'], ['GET', '/audit/trace/some-request-id'], ['POST', '/audit/verify', {}],
  ['GET', '/audit/export.csv'], ['GET', '/audit/checkpoints'], ['POST', '/audit/checkpoints', {}], ['POST', '/audit/reconcile', {}],
];

describe('security: cross-tenant access', function () {
  this.timeout(180_000);
  const tally = new AttackTally('cross-tenant');
  let fed: SecurityFederation;
  let target: { addressee: string; recordId: string };
  const tokens = new Map<string, string>();
  const token = (code: string, user: string) => tokens.get(`${user}@${code}`)!;

  const call = (code: string, [method, path, body]: Call, bearer?: string) => api(method, `${fed.url(code)}${path}`, {
    token: bearer, body, headers: { 'idempotency-key': `x-tenant-${randomUUID()}` },
  });

  before(async () => {
    fed = await securityFederation();
    for (const code of [A, B, C]) {
      for (const user of ['clerk1', 'officer1', 'operator1', 'admin1']) tokens.set(`${user}@${code}`, await fed.login(code, user));
    }
    // A resident of A with a record, whose addressee number B does not use.
    const atB = new Set((await heldResidents(fed, B)).map((r) => r.addresseeNumber));
    // The last such resident: moveResident() picks from the front of the list.
    for (const r of (await heldResidents(fed, A)).reverse()) {
      if (r.status !== 'resident' || atB.has(r.addresseeNumber)) continue;
      const records = await api('GET', `${fed.url(A)}/residents/${r.addresseeNumber}/vaccinations`, { token: token(A, 'clerk1') });
      if (records.body.records?.length) {
        target = { addressee: r.addresseeNumber, recordId: records.body.records[0].recordId };
        break;
      }
    }
    expect(target, 'a target resident at A').to.not.equal(undefined);
  });
  after(() => tally.print());

  it('when staff of B (any role) or nobody calls any of A\'s staff routes, then every call is 401 and A\'s data is unchanged', async () => {
    // Control: A's own clerk and officer are answered on the same routes.
    expect((await call(A, ['GET', `/residents/${target.addressee}/vaccinations`], token(A, 'clerk1'))).status).to.equal(200);
    expect((await call(A, ['GET', '/audit/entries'], token(A, 'officer1'))).status).to.equal(200);

    const db = await openReadOnly(databasePath(fed, A));
    try {
      const before = await countRows(db, MUNICIPALITY_TABLES);
      const routes = [...residentRoutes(target.addressee, target.recordId, C), ...LIST_ROUTES];
      for (const user of ['clerk1', 'officer1', 'operator1', 'admin1', 'nobody']) {
        for (const route of routes) {
          const res = await call(A, route, user === 'nobody' ? undefined : token(B, user));
          // No token: 401 unauthorized; B's genuine token: 401 session-invalid (another member's secret signed it).
          const refusal = user === 'nobody' ? 'unauthorized' : 'session-invalid';
          tally.check(`${user}@${B} ${route[0]} ${route[1]} at ${A}`, isRefusal(res, 401, refusal), { status: res.status, body: res.body });
        }
      }
      expect(await countRows(db, MUNICIPALITY_TABLES)).to.deep.equal(before);
    } finally {
      await db.close();
    }
  });

  it('when B\'s clerk names A\'s resident and record at B\'s own service, then B knows neither (404) and A is untouched', async () => {
    const db = await openReadOnly(databasePath(fed, A));
    try {
      const before = await countRows(db, MUNICIPALITY_TABLES);
      for (const route of residentRoutes(target.addressee, target.recordId, A)) {
        const res = await call(B, route, token(B, 'clerk1'));
        tally.check(`clerk1@${B} ${route[0]} ${route[1]} at ${B}`, isRefusal(res, 404, 'not-found'), { status: res.status, body: res.body });
      }
      expect(await countRows(db, MUNICIPALITY_TABLES)).to.deep.equal(before);
    } finally {
      await db.close();
    }
  });

  it('when B\'s clerk asks A through the federation for someone A\'s records do not belong to, then nothing comes back', async () => {
    // A resident who moved from A to B without consent, and one of B's own with a consent naming A.
    const noConsent = await moveResident(fed, A, B, { consent: false });
    const seeded = new Set(fed.residents(B).map((r) => r.addresseeNumber));
    const native = (await heldResidents(fed, B)).find((r) => r.status === 'resident' && r.code && seeded.has(r.addresseeNumber))!;
    const consent = await call(B, ['POST', `/residents/${native.addresseeNumber}/consents`, { purpose: 'next-dose-scheduling', sources: [A], expiresAt: inDays(30), method: 'written' }], token(B, 'clerk1'));
    expect(consent.status, JSON.stringify(consent.body)).to.equal(201);
    // B refuses the first itself (no consent) and the second before it leaves (B holds no move-in from A for them).
    for (const [label, addressee, status, reason] of [
      ['a resident who moved from A without consent', noConsent.toAddressee, 'no_consent', 'no_matching_consent'],
      ['a resident A never held, with consent', native.addresseeNumber, 'denied', 'no_move_in'],
    ] as const) {
      const res = await call(B, ['POST', '/exchange/queries', { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: addressee, source: A }] }], token(B, 'clerk1'));
      const result = res.body.results?.[0];
      tally.check(`federation query for ${label}`, res.status === 200 && result?.status === status && result.reason === reason && result.recordCount === 0 && result.imported === 0, res.body);
    }
  });

  it('when staff use a route of another role — clerk on the privacy officer\'s log, officer, operator or admin on records, clerk on staff admin, a clerk approving its own exception — then 403', async () => {
    const a = target.addressee;
    const rec = target.recordId;
    const query = { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: a, source: C }] };
    const cases: [string, Call[]][] = [
      ['clerk1', AUDIT_ROUTES],
      ['officer1', [
        ['GET', '/residents?page=1'], ['GET', `/residents/${a}`], ['GET', `/residents/${a}/vaccinations`], ['GET', `/residents/${a}/vaccinations/${rec}`],
        ['POST', `/residents/${a}/vaccinations`, buildRecord()], ['GET', `/residents/${a}/immunizations`], ['GET', `/residents/${a}/tickets`],
        ['GET', `/residents/${a}/consents`], ['POST', '/exchange/queries', query],
      ]],
      ['operator1', [
        ['GET', `/residents/${a}/vaccinations`], ['POST', `/residents/${a}/vaccinations`, buildRecord()], ['GET', `/residents/${a}/vaccinations/${rec}/history`],
        ['GET', `/residents/${a}/immunizations`], ['PATCH', `/residents/${a}`, { address: '越境 1-1', reason: '越境アクセス' }], ['GET', '/audit/entries'],
      ]],
      ['admin1', [['GET', `/residents/${a}`], ['GET', `/residents/${a}/vaccinations`], ['GET', '/audit/entries'], ['POST', '/exchange/queries', query]]],
      ['clerk1', [['GET', '/staff'], ['POST', '/staff', { username: 'intruder', displayName: 'Intruder', role: 'admin', password: 'correct horse battery staple' }]]],
    ];
    const db = await openReadOnly(databasePath(fed, A));
    try {
      const before = await countRows(db, MUNICIPALITY_TABLES);
      for (const [user, routes] of cases) {
        for (const route of routes) {
          const res = await call(A, route, token(A, user));
          tally.check(`${user}@${A} ${route[0]} ${route[1]}`, isRefusal(res, 403, 'forbidden'), { status: res.status, body: res.body });
        }
      }
      expect(await countRows(db, MUNICIPALITY_TABLES)).to.deep.equal(before);
    } finally {
      await db.close();
    }
    // The exception path needs a second person: the requester approving their own request is refused.
    const asked = await call(A, ['POST', '/exchange/exception-requests', {
      addresseeNumber: a, source: C, purpose: 'next-dose-scheduling', justification: '救急搬送され意識がなく同意を得られないため接種歴の確認が必要',
    }], token(A, 'clerk1'));
    expect(asked.status, JSON.stringify(asked.body)).to.equal(201);
    const selfApproved = await call(A, ['POST', `/exchange/exception-requests/${asked.body.id}/approve`], token(A, 'clerk1'));
    tally.check('clerk1@A approves its own exception request', isRefusal(selfApproved, 403, 'second-approver-required'), selfApproved.body);
    // And back: each route answers its own role.
    expect((await call(A, AUDIT_ROUTES[0]!, token(A, 'officer1'))).status).to.equal(200);
    expect((await call(A, ['GET', '/staff'], token(A, 'admin1'))).status).to.equal(200);
    expect((await call(A, ['GET', `/residents/${target.addressee}`], token(A, 'operator1'))).status).to.equal(200);
  });

  it('when a municipality asks the gateway with a code that is not its own, then the gateway denies it', async () => {
    const asB: MemberClient = clientOf(fed, B);
    try {
      const b = credentialsOf(fed, B);
      const codeAt = async (code: string) => (await heldResidents(fed, code)).find((r) => r.code)!.code!;
      const ownCode = await codeAt(B);
      const cases: [string, string, string, string][] = [
        ['A\'s code for one of A\'s residents', await codeAt(A), A, 'code_not_yours'],
        ['Akiota\'s code for one of its residents', await codeAt(C), A, 'code_not_yours'],
        ['a code nobody holds', randomCode(), A, 'code_not_yours'],
        ['its own code, naming itself as the source', ownCode, B, 'source_is_requester'],
      ];
      for (const [label, code, source, reason] of cases) {
        const { body } = await signQuery(b, [looseSubject(source, code)]);
        const res = await asB.postJson<{ results: { status: string; reason?: string }[] }>(`${fed.member(GATEWAY_ID).url}/queries`, body, { timeoutMs: 30_000 });
        const result = res.body.results?.[0];
        tally.check(`gateway: ${label}`, res.status === 200 && result?.status === 'denied' && result.reason === reason, res.body);
      }
    } finally {
      asB.close();
    }
  });
});
