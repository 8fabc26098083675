/**
 * Anomaly alerts (docs/DESIGN.md §4.12), at each municipality and at the gateway, over their own access logs:
 * one resident asked about by several municipalities, one staff member querying far more than
 * their peers, repeated identity mismatches from one requester, life-protection queries above a
 * threshold. Each pattern is produced through the real message flow (staff APIs; for a second
 * requester, a query signed with that member's real keys), and ordinary use raises nothing.
 * Real gateway, issuer and two municipalities in-process over mTLS; thresholds set low.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { GATEWAY_ID } from '../../shared/federation/protocol.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { api } from '../fixtures/http.ts';
import { moveResident, startInProcessFederation, type InProcessFederation, type MovedResident } from '../fixtures/inprocess-federation.ts';
import { consentTerms, sealIdentities, signQuery } from '../security/support.ts';
import { registerCode } from '../fixtures/members.ts';

const A = '293610';
const B = '112241';
/** Akiota plays a second requester with its own certificate; it needs no running service for that. */
const C = '343692';

const thresholds = {
  ALERT_MULTI_REQUESTER_THRESHOLD: '2', ALERT_IDENTITY_MISMATCH_THRESHOLD: '2', ALERT_LIFE_PROTECTION_THRESHOLD: '2',
};

interface Alert { kind: string; key: string; subject: string | null; count: number; threshold: number; details: Record<string, unknown>; evidence: number[] }

describe('anomaly alerts for privacy officers', () => {
  let fed: InProcessFederation;
  let moved: MovedResident;
  let clerk1: string;
  let clerk2: string;

  before(async function () {
    this.timeout(120_000);
    fed = await startInProcessFederation({
      municipalities: [A, B],
      municipalityEnv: { ...thresholds, ALERT_STAFF_QUERY_MIN: '4', ALERT_STAFF_QUERY_FACTOR: '3' },
      gatewayEnv: thresholds,
    });
    moved = await moveResident(fed, A, B);
    clerk1 = await fed.member(B).login('clerk1');
    clerk2 = await fed.member(B).login('clerk2');
  });
  after(async () => fed?.close());

  const query = (token: string, subjects: number, extra: Record<string, string> = {}) => api('POST', `${fed.member(B).url}/exchange/queries`, {
    token, body: { purpose: 'next-dose-scheduling', subjects: Array.from({ length: subjects }, () => ({ addresseeNumber: moved.toAddressee, source: A, ...extra })) },
  });
  /** Runs the detectors at a municipality (or the gateway) as its privacy officer; returns what was raised. */
  const run = async (code: string): Promise<Alert[]> => {
    const [url, token] = code === GATEWAY_ID
      ? [fed.gatewayStaffUrl, await fed.gatewayLogin()]
      : [fed.member(code).url, await fed.member(code).login('privacyofficer1')];
    const res = await api('POST', `${url}/alerts/run`, { token });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.raised;
  };
  const listed = async (code: string): Promise<Alert[]> => {
    const [url, token] = code === GATEWAY_ID
      ? [fed.gatewayStaffUrl, await fed.gatewayLogin()]
      : [fed.member(code).url, await fed.member(code).login('privacyofficer1')];
    return (await api('GET', `${url}/alerts`, { token })).body.alerts;
  };
  const staffId = async (token: string) => (await api('GET', `${fed.member(B).url}/auth/me`, { token })).body.id as string;

  it('when residents are queried in the ordinary way, then no municipality and not the gateway raises an alert', async () => {
    const first = await query(clerk1, 1);
    expect(first.body.results[0], JSON.stringify(first.body)).to.include({ status: 'ok' });
    await query(clerk2, 1);
    for (const member of [A, B, GATEWAY_ID]) {
      expect(await run(member), member).to.deep.equal([]);
      expect(await listed(member), member).to.deep.equal([]);
    }
  });

  it('when one clerk sends far more queries than the peers, then B raises staff_query_volume for that clerk alone, once', async () => {
    // clerk1: 1 + 4 subjects; peers clerk2 (1) and operator1 (0): median 0.5, bar 3 × 1.
    await query(clerk1, 4);
    const raised = await run(B);
    expect(raised.map((a) => a.kind)).to.deep.equal(['staff_query_volume']);
    expect(raised[0]).to.include({ subject: await staffId(clerk1), count: 5 });
    expect(raised[0]!.details).to.include({ peers: 2, peerMedian: 0.5 });
    expect(raised[0]!.evidence).to.have.length(5);
    // Detection again in the same window adds nothing; the alert stays listed.
    expect(await run(B)).to.deep.equal([]);
    expect((await listed(B)).map((a) => a.subject)).to.deep.equal([await staffId(clerk1)]);
    // Raising and reading alerts are logged.
    const log = await fed.member(B).municipality.ctx.models.AccessLog.findAll({ where: { action: [Actions.ALERT_RAISE, Actions.ALERT_READ, Actions.ALERT_RUN] }, raw: true });
    expect(log.map((e) => e.action)).to.include.members([Actions.ALERT_RAISE, Actions.ALERT_READ, Actions.ALERT_RUN]);
  });

  it('when the same requester\'s queries keep failing the identity check, then A and the gateway raise identity_mismatch_requester', async () => {
    await api('PATCH', `${fed.member(B).url}/residents/${moved.toAddressee}`, { token: clerk2, body: { kana: 'スズキ ハナコ', reason: '届出による訂正' } });
    for (let i = 0; i < 2; i++) expect((await query(clerk2, 1)).body.results[0]).to.include({ status: 'identity_mismatch' });
    await api('PATCH', `${fed.member(B).url}/residents/${moved.toAddressee}`, { token: clerk2, body: { kana: moved.kana, reason: '元に戻す' } });
    const atA = await run(A);
    expect(atA.map((a) => [a.kind, a.key, a.count])).to.deep.equal([['identity_mismatch_requester', `requester:${B}`, 2]]);
    const atGateway = await run(GATEWAY_ID);
    expect(atGateway.map((a) => [a.kind, a.key, a.count])).to.deep.equal([['identity_mismatch_requester', `requester:${B}`, 2]]);
  });

  it('when life-protection queries reach the threshold, then B (sent), A and the gateway (from B) raise life_protection_volume', async () => {
    for (let i = 0; i < 2; i++) {
      const requested = await api('POST', `${fed.member(B).url}/exchange/exception-requests`, {
        token: clerk2, body: { addresseeNumber: moved.toAddressee, source: A, purpose: 'next-dose-scheduling', justification: '意識不明で搬送、接種歴の確認が治療に必要なため' },
      });
      expect(requested.status, JSON.stringify(requested.body)).to.equal(201);
      const approved = await api('POST', `${fed.member(B).url}/exchange/exception-requests/${requested.body.id}/approve`, { token: clerk1 });
      expect(approved.status, JSON.stringify(approved.body)).to.equal(200);
      const res = await query(clerk2, 1, { exceptionId: requested.body.id });
      expect(res.status).to.equal(200);
    }
    const atB = await run(B);
    expect(atB.map((a) => [a.kind, a.key, a.count])).to.deep.equal([['life_protection_volume', 'sent', 2]]);
    expect(atB[0]!.details.staff).to.deep.equal([await staffId(clerk2)]);
    expect((await run(A)).map((a) => [a.kind, a.key])).to.deep.equal([['life_protection_volume', `requester:${B}`]]);
    expect((await run(GATEWAY_ID)).map((a) => [a.kind, a.key])).to.deep.equal([['life_protection_volume', `requester:${B}`]]);
  });

  it('when a second municipality asks about the same resident, then A and the gateway raise resident_multi_requester naming both', async () => {
    // C registers the same person (its own code from the issuer) and signs a query with its own keys.
    const issued = await registerCode(fed.client(C), { issuer: fed.issuer.url, gateway: fed.gateway.url }, moved.myNumber, fed.pki.credentials(C).signer);
    expect(issued.status).to.equal(200);
    const jti = randomUUID();
    const credentials = fed.pki.credentials(C);
    const sealed = await sealIdentities(credentials, fed.pki.credentials(A), jti, [{ ref: '0', birthDate: '1985-07-14', sex: 'female', kana: moved.kana }]);
    const { body } = await signQuery(credentials, [{ ref: '0', sub: issued.body.code, source: A, legalBasis: 'consent', consent: consentTerms(A) }], { jti, sealed });
    const routed = await fed.client(C).postJson(`${fed.gateway.url}/queries`, body);
    expect(routed.status, JSON.stringify(routed.body)).to.equal(200);

    const atA = await run(A);
    expect(atA.map((a) => [a.kind, a.subject, a.details.requesters])).to.deep.equal([['resident_multi_requester', moved.fromAddressee, [B, C].sort()]]);
    const atGateway = await run(GATEWAY_ID);
    expect(atGateway.map((a) => [a.kind, a.details.source, a.details.requesters])).to.deep.equal([['resident_multi_requester', A, [B, C].sort()]]);
    // The gateway names the resident by A's code, never by anything personal.
    const codeAtA = (await fed.member(A).municipality.ctx.models.Resident.findOne({ where: { addresseeNumber: moved.fromAddressee }, raw: true }))!.code;
    expect(atGateway[0]!.subject).to.equal(codeAtA);
  });

  it('when alerts are asked for without a token or by a clerk, then 401 and 403; a bad filter is a 400 naming the field', async () => {
    const url = `${fed.member(B).url}/alerts`;
    expect((await api('GET', url)).status).to.equal(401);
    const clerk = await api('GET', url, { token: clerk1 });
    expect(clerk.status).to.equal(403);
    expect(clerk.headers.get('content-type')).to.match(/problem\+json/);
    expect((await api('POST', `${url}/run`, { token: clerk1 })).status).to.equal(403);
    const bad = await api('GET', `${url}?kind=everything`, { token: await fed.member(B).login('privacyofficer1') });
    expect(bad.status).to.equal(400);
    expect(bad.body.field).to.equal('kind');
    const filtered = await api('GET', `${url}?kind=life_protection_volume`, { token: await fed.member(B).login('privacyofficer1') });
    expect(filtered.body.alerts.map((a: Alert) => a.kind)).to.deep.equal(['life_protection_volume']);
    expect((await api('GET', `${fed.gatewayStaffUrl}/alerts`)).status).to.equal(401);
  });

  it('when a privacy officer opens the console, then the page carries the alerts panel', async () => {
    const page = await api('GET', `${fed.member(A).url}/console/`);
    expect(page.status).to.equal(200);
    expect(page.body).to.include('id="alerts-section"');
  });
});
