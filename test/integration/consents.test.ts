/**
 * The consents API at one municipality (in-process, its own SQLite file): a clerk records the
 * resident's consent to fetch their vaccination history from named municipalities, lists it,
 * revokes it. Consents are never removed: a revocation is recorded on the consent.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { api } from '../fixtures/http.ts';
import { DEMO_MUNICIPALITIES, removeDir, startMunicipality, type RunningMunicipality } from '../fixtures/municipality.ts';

const TAWARAMOTO = '293610';
const AKIOTA = '343692';
const TODA = '112241';
const DAY = 86_400_000;

describe('consents: record, list, revoke', () => {
  let toda: RunningMunicipality;
  let clerk: string;
  let addressee: string;
  let other: string;
  const consents = (a = addressee) => `${toda.url}/residents/${a}/consents`;
  const valid = (overrides: Record<string, unknown> = {}) => ({
    purpose: 'next-dose-scheduling', sources: [TAWARAMOTO], expiresAt: new Date(Date.now() + 30 * DAY).toISOString(), method: 'written', ...overrides,
  });
  const stored = () => toda.ctx.models.Consent.count();

  before(async () => {
    toda = await startMunicipality(DEMO_MUNICIPALITIES.toda);
    clerk = await toda.tokenFor('clerk');
    const make = async (n: string, name: string, kana: string) => (await api('POST', `${toda.url}/residents`, { token: clerk, body: {
      name, kana, birthDate: '1990-04-01', sex: 'female', address: '埼玉県戸田市上戸田1-1-1', myNumber: completeMyNumber(n),
    } })).body.addresseeNumber as string;
    addressee = await make('40000000001', '山田 花子', 'ヤマダ ハナコ');
    other = await make('40000000002', '佐藤 一郎', 'サトウ イチロウ');
  });

  after(async () => {
    await toda.stop();
    removeDir(toda.dir);
  });

  it('when a clerk records a consent, then it comes back with its terms, is listed, and the recording is logged', async () => {
    const res = await api('POST', consents(), { token: clerk, body: valid({ sources: [TAWARAMOTO, AKIOTA, TAWARAMOTO] }) });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    expect(res.body).to.include({ scope: 'vaccination-history', purpose: 'next-dose-scheduling', method: 'written', revokedAt: null });
    expect(res.body.sources, 'duplicates folded').to.deep.equal([TAWARAMOTO, AKIOTA]);
    expect(Date.parse(res.body.givenAt)).to.be.at.most(Date.now());
    expect(Object.keys(res.body).sort()).to.deep.equal([
      'expiresAt', 'givenAt', 'id', 'method', 'purpose', 'recordedBy', 'residentCertificate', 'residentSignature', 'revocationReason', 'revokedAt', 'revokedBy', 'scope', 'sources',
    ].sort());
    const listed = await api('GET', consents(), { token: clerk });
    expect(listed.status).to.equal(200);
    expect(listed.body.consents.map((c: { id: string }) => c.id)).to.include(res.body.id);
    const log = await toda.ctx.models.AccessLog.findAll({ where: { subject: addressee }, order: [['seq', 'ASC']], raw: true });
    const recorded = log.find((r) => r.action === 'consent.record')!;
    expect(recorded).to.include({ consentId: res.body.id, legalBasis: 'consent', purpose: 'next-dose-scheduling', outcome: 'allowed' });
    expect(log.map((r) => r.action)).to.include('consent.read');
  });

  it('when the terms break a rule (own municipality, past or too distant expiry, unknown purpose or method, bad code, extra field), then 400 names the field and nothing is stored', async () => {
    const before = await stored();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [valid({ sources: [TODA] }), 'sources', /must not include this municipality/],
      [valid({ sources: [] }), 'sources', /at least one/],
      [valid({ sources: ['293611'] }), 'sources.0', /check digit/],
      [valid({ expiresAt: new Date(Date.now() - 1000).toISOString() }), 'expiresAt', /must be in the future/],
      [valid({ expiresAt: new Date(Date.now() + 367 * DAY).toISOString() }), 'expiresAt', /within 366 days/],
      [valid({ expiresAt: 'next year' }), 'expiresAt', /ISO 8601/],
      [valid({ purpose: 'marketing' }), 'purpose', /must be one of/],
      [valid({ method: 'telepathy' }), 'method', /written, electronic or oral-recorded/],
      [valid({ scope: 'everything' }), 'body', /unrecognized/i],
    ];
    for (const [body, field, rule] of cases) {
      const res = await api('POST', consents(), { token: clerk, body });
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.headers.get('content-type')).to.match(/application\/problem\+json/);
      expect(res.body.field, JSON.stringify(body)).to.equal(field);
      expect(res.body.rule).to.match(rule);
    }
    expect(await stored()).to.equal(before);
    const longest = await api('POST', consents(), { token: clerk, body: valid({ expiresAt: new Date(Date.now() + 365 * DAY).toISOString() }) });
    expect(longest.status, 'a year is allowed').to.equal(201);
  });

  it('when a consent is revoked, then it stays listed with who, when and why, and a second revocation is refused', async () => {
    const given = (await api('POST', consents(), { token: clerk, body: valid() })).body;
    const res = await api('POST', `${consents()}/${given.id}/revoke`, { token: clerk, body: { reason: 'withdrawn by the resident at the counter' } });
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ id: given.id, revocationReason: 'withdrawn by the resident at the counter' });
    expect(res.body.revokedAt).to.be.a('string');
    expect(res.body.revokedBy).to.equal(given.recordedBy);
    const listed = (await api('GET', consents(), { token: clerk })).body.consents.find((c: { id: string }) => c.id === given.id);
    expect(listed.revokedAt).to.equal(res.body.revokedAt);
    const again = await api('POST', `${consents()}/${given.id}/revoke`, { token: clerk, body: { reason: 'again' } });
    expect(again.status).to.equal(409);
    expect(again.body.type).to.equal('https://hikitsugi.example/problems/consent-already-revoked');
    const noReason = await api('POST', `${consents()}/${given.id}/revoke`, { token: clerk, body: {} });
    expect(noReason.status).to.equal(400);
    expect(noReason.body.field).to.equal('reason');
    const revoked = await toda.ctx.models.AccessLog.findAll({ where: { action: 'consent.revoke', consentId: given.id }, raw: true });
    expect(revoked).to.have.length(1);
  });

  it('when the consent or resident is unknown, or the consent belongs to another resident, then 404 and nothing changes', async () => {
    const mine = (await api('POST', consents(), { token: clerk, body: valid() })).body;
    expect((await api('POST', `${consents(other)}/${mine.id}/revoke`, { token: clerk, body: { reason: 'wrong resident' } })).status).to.equal(404);
    expect((await api('POST', `${consents()}/${randomUUID()}/revoke`, { token: clerk, body: { reason: 'unknown' } })).status).to.equal(404);
    expect((await api('GET', consents('1000000008'), { token: clerk })).status).to.equal(404);
    expect((await api('POST', consents('1000000008'), { token: clerk, body: valid() })).status).to.equal(404);
    const still = (await api('GET', consents(), { token: clerk })).body.consents.find((c: { id: string }) => c.id === mine.id);
    expect(still.revokedAt).to.equal(null);
  });

  it('when a privacy officer or admin calls the consents API, then 403; without a token, then 401', async () => {
    for (const role of ['privacy_officer', 'admin'] as const) {
      const token = await toda.tokenFor(role);
      expect((await api('GET', consents(), { token })).status, role).to.equal(403);
      expect((await api('POST', consents(), { token, body: valid() })).status, role).to.equal(403);
    }
    expect((await api('GET', consents())).status).to.equal(401);
    expect((await api('POST', consents(), { body: valid() })).status).to.equal(401);
  });
});
