import { expect } from 'chai';
import { appendAccess, type AccessInput } from '../../shared/access-log/chain.ts';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { completeAddresseeNumber } from '../../services/municipality/residents/schemas.ts';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';

describe('resident disclosure report (情報提供等記録)', () => {
  let m: RunningMunicipality;
  let clerk: string;
  let officer: string;
  let clerkId: string;
  let resident: string;
  let other: string;
  const myNumbers = [completeMyNumber('20000000001'), completeMyNumber('20000000002')];

  before(async () => {
    m = await startMunicipality(DEMO_MUNICIPALITIES.toda);
    clerk = await m.tokenFor('clerk');
    officer = await m.tokenFor('privacy_officer');
    clerkId = (await api('GET', `${m.url}/auth/me`, { token: clerk })).body.id;
    const create = async (name: string, myNumber: string) => {
      const res = await api('POST', `${m.url}/residents`, {
        token: clerk,
        body: { name, kana: 'トダ ジロウ', birthDate: '1985-10-10', sex: 'male', address: '埼玉県戸田市上戸田1-1', myNumber },
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      return res.body.addresseeNumber as string;
    };
    resident = await create('戸田 次郎', myNumbers[0]!);
    other = await create('戸田 三郎', myNumbers[1]!);
    expect((await api('GET', `${m.url}/residents/${resident}`, { token: clerk })).status).to.equal(200);
    // What the exchange logs when other municipalities' queries about this resident are answered here.
    const cross: AccessInput[] = [
      {
        actorType: 'member', actorId: '343692', actorRole: 'staff:akiota-clerk-9', actingMunicipality: '343692', subject: resident,
        action: Actions.QUERY_ANSWER, purpose: 'next-dose-scheduling', legalBasis: 'consent', consentId: 'c-1', outcome: 'allowed',
        recordIds: ['rec-1@1'], requestId: 'rid-disclosure-1',
      },
      {
        actorType: 'member', actorId: '293610', actorRole: 'staff:tawara-5', actingMunicipality: '293610', subject: resident,
        action: Actions.QUERY_ANSWER, purpose: 'adverse-event-follow-up', legalBasis: 'life-protection', outcome: 'allowed',
        flags: ['life-protection'], requestId: 'rid-disclosure-2',
      },
      {
        actorType: 'member', actorId: '293610', actingMunicipality: '293610', subject: other, action: Actions.QUERY_ANSWER,
        purpose: 'next-dose-scheduling', legalBasis: 'consent', outcome: 'denied', reason: 'no_consent', requestId: 'rid-disclosure-3',
      },
    ];
    await m.ctx.sequelize.transaction(async (t) => {
      for (const e of cross) await appendAccess(m.ctx.models.AccessLog, t, e);
    });
  });
  after(async () => {
    await m.stop();
    removeDir(m.dir);
  });

  it('when a privacy officer asks for a resident\'s report, then every access to that resident is listed with who, where, why and on what basis', async () => {
    const res = await api('GET', `${m.url}/residents/${resident}/disclosure`, { token: officer });
    expect(res.status).to.equal(200);
    const { items } = res.body;
    expect(res.body).to.include({ addresseeNumber: resident, truncated: false });
    expect(res.body.municipality).to.deep.equal({ code: '112241', name: 'Toda' });
    expect(items.map((i: { action: string }) => i.action)).to.include.members(['resident.create', 'resident.read', 'exchange.query.answer']);
    const cross = items.filter((i: { crossMunicipality: boolean }) => i.crossMunicipality);
    expect(cross).to.have.length(2);
    expect(cross[0]).to.deep.include({ purpose: 'next-dose-scheduling', legalBasis: 'consent', outcome: 'allowed', requestId: 'rid-disclosure-1' });
    expect(cross[0].who).to.deep.equal({ type: 'member', role: null, municipality: '343692' });
    expect(cross[1].flags).to.include('life-protection');
    const local = items.find((i: { action: string }) => i.action === 'resident.read');
    expect(local.who).to.deep.equal({ type: 'staff', role: 'clerk', municipality: '112241' });
    expect(local.crossMunicipality).to.equal(false);
    expect(items.every((i: { reference: number }, n: number) => n === 0 || i.reference > items[n - 1].reference)).to.equal(true);
  });

  it('when the report is produced, then it shows metadata only: no other resident, staff ids, record ids or My Number', async () => {
    const res = await api('GET', `${m.url}/residents/${resident}/disclosure`, { token: officer });
    const text = JSON.stringify(res.body);
    expect(text).not.to.include(other);
    expect(text).not.to.include(clerkId);
    expect(text).not.to.include('akiota-clerk-9');
    expect(text).not.to.include('rec-1@1');
    expect(text).not.to.include('recordIds');
    for (const n of myNumbers) expect(text).not.to.include(n);
  });

  it('when a clerk at the counter asks, then the report is produced too; operators and admins are refused; no token is 401', async () => {
    expect((await api('GET', `${m.url}/residents/${resident}/disclosure`, { token: clerk })).status).to.equal(200);
    for (const role of ['operator', 'admin'] as const) {
      const res = await api('GET', `${m.url}/residents/${resident}/disclosure`, { token: await m.tokenFor(role) });
      expect(res.status, role).to.equal(403);
    }
    expect((await api('GET', `${m.url}/residents/${resident}/disclosure`)).status).to.equal(401);
  });

  it('when the addressee number is malformed or unknown, then 400 names it or 404, and nothing is logged', async () => {
    const before = await m.ctx.models.AccessLog.count();
    const bad = await api('GET', `${m.url}/residents/12345/disclosure`, { token: officer });
    expect(bad.status).to.equal(400);
    expect(bad.body.field).to.equal('addresseeNumber');
    const unknownNumber = completeAddresseeNumber('987654321');
    expect([resident, other]).not.to.include(unknownNumber);
    const unknown = await api('GET', `${m.url}/residents/${unknownNumber}/disclosure`, { token: officer });
    expect(unknown.status).to.equal(404);
    expect(await m.ctx.models.AccessLog.count()).to.equal(before);
  });

  it('when a report is produced, then producing it is logged against the resident', async () => {
    await api('GET', `${m.url}/residents/${resident}/disclosure`, { token: clerk });
    const last = (await m.ctx.models.AccessLog.findOne({ order: [['seq', 'DESC']], raw: true }))!;
    expect(last).to.include({ action: 'audit.disclosure', subject: resident, actorRole: 'clerk', outcome: 'allowed' });
  });

  it('when the printable page is asked for, then it is script-free HTML listing the accesses in Japanese, every time in JST', async () => {
    const res = await fetch(`${m.url}/residents/${resident}/disclosure.html`, { headers: { authorization: `Bearer ${officer}` } });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    expect(res.headers.get('content-security-policy')).to.match(/script-src 'self'/);
    const html = await res.text();
    expect(html).to.include('情報提供等記録').and.include('<html lang="ja">');
    // Code values in Japanese: the asking municipality's staff, the legal basis, the action.
    expect(html).to.include('自治体コード 343692 の職員（ゲートウェイ経由）').and.include('生命・身体の保護').and.include('他自治体からの照会への回答');
    expect(html).not.to.match(/>(allowed|denied|consent|life-protection|exchange\.query\.answer)</);
    // Every time shown is the stored UTC instant plus nine hours, marked JST.
    const times = [...html.matchAll(/<time datetime="([^"]+)">([^<]+)<\/time>/g)];
    expect(times.length).to.be.greaterThan(1);
    for (const [, utc, shown] of times) {
      const jst = new Date(new Date(utc!).getTime() + 9 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
      expect(shown).to.equal(`${jst} JST`);
    }
    expect(html).not.to.match(/<script/i);
    expect(html).not.to.include(other);
    const css = await fetch(`${m.url}/console/disclosure.css`);
    expect(css.status).to.equal(200);
    expect(css.headers.get('content-type')).to.match(/text\/css/);
  });
});
