/**
 * The resident's own page (docs/DESIGN.md §4.14) on a real federation in one process: a clerk
 * enrols the resident's personal certificate at the counter; the resident signs a one-time
 * challenge with its key to sign in; signed in, they read their records (own and imported), the
 * trail of accesses (a clerk's cross-municipality query among them), their consents and notices,
 * revoke a consent and take their certificate — and nothing of anyone else, by any identifier.
 */
import { expect } from 'chai';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { jose } from '../../shared/crypto.ts';
import { issueResidentCertificate, type ResidentIdentity } from '../../shared/federation/pki.ts';
import { findResidentByAddressee } from '../../services/municipality/residents/service.ts';
import { GATEWAY_ID, GATEWAY_TRAIL_PATH, Typ } from '../../shared/federation/protocol.ts';
import { randomUUID } from 'node:crypto';
import { peekJwt } from '../../shared/crypto.ts';
import { signMessage, type Signer } from '../../shared/federation/messages.ts';
import { EMPTY_HEAD } from '../fixtures/factories.ts';
import { expectRefusal } from '../fixtures/refusals.ts';
import { gatherTrail } from '../../services/municipality/trail/service.ts';
import { api } from '../fixtures/http.ts';
import {
  AKIOTA, ask, craftAndForwardAsGateway, moveIn, moveOut, moveResident, registerCodes, revocationReached, startInProcessFederation, TAWARAMOTO, TODA, type InProcessFederation, type MovedResident,
} from '../fixtures/inprocess-federation.ts';
import { rogueCa } from '../fixtures/pki.ts';

const A = TAWARAMOTO;
const B = TODA;
const C = AKIOTA;
/** Challenges and sign-ins B takes from one address per minute in this file (the default is 30). */
const SIGN_IN_BUDGET = 80;

interface Card {
  cert: string;
  key: KeyObject;
}

describe('the resident page: sign-in with an enrolled certificate, one\'s own data only', function () {
  this.timeout(120_000);
  let fed: InProcessFederation;
  let moved: MovedResident;
  let other: MovedResident;
  let clerkB: string;
  let card: Card;

  const url = (path: string) => `${fed.m(B).url}${path}`;
  async function cardFor(identity: ResidentIdentity, ca = fed.pki.ca): Promise<Card> {
    const issued = await issueResidentCertificate(ca, identity);
    return { cert: issued.cert, key: createPrivateKey(issued.key!) };
  }
  async function identityAtB(addresseeNumber: string): Promise<ResidentIdentity> {
    const r = (await findResidentByAddressee(fed.m(B).ctx, addresseeNumber))!;
    return { kana: r.kana, birthDate: r.birthDate, sex: r.sex as ResidentIdentity['sex'] };
  }
  const enrol = (addresseeNumber: string, certificate: string) =>
    api('POST', url(`/residents/${addresseeNumber}/resident-credentials`), { token: clerkB, body: { certificate } });
  /** What the resident's card (or the page, with the key file) does: signs the challenge. */
  const sign = (c: Pick<Card, 'key'>, claims: Record<string, unknown>, typ: string = Typ.RESIDENT_SIGN_IN, alg = 'ES256') =>
    new jose.CompactSign(new TextEncoder().encode(JSON.stringify({ iat: Math.floor(Date.now() / 1000), ...claims }))).setProtectedHeader({ alg, typ }).sign(c.key);
  async function signIn(c: Card, over: { aud?: string; nonce?: string; signer?: Pick<Card, 'key'>; alg?: string } = {}) {
    const challenge = await api('POST', url('/resident/sign-in/challenge'));
    expect(challenge.status, JSON.stringify(challenge.body)).to.equal(201);
    const signature = await sign(over.signer ?? c, { aud: over.aud ?? challenge.body.audience, nonce: over.nonce ?? challenge.body.challenge }, Typ.RESIDENT_SIGN_IN, over.alg);
    return { res: await api('POST', url('/resident/sign-in'), { body: { certificate: c.cert, signature } }), challenge: challenge.body.challenge as string, signature };
  }
  const deniedSignIns = async (reason: string) => fed.m(B).ctx.models.AccessLog.count({ where: { action: 'resident.sign_in', outcome: 'denied', reason } });

  before(async () => {
    // One address (this test) signs in many times over the file: a budget above what the file uses,
    // so no test depends on how fast the others ran; the last test spends it.
    fed = await startInProcessFederation({ municipalities: [A, B, C], env: { [B]: { RESIDENT_SIGNIN_ADDRESS_LIMIT: String(SIGN_IN_BUDGET) } } });
    [moved, other] = [await moveResident(fed, A, B), await moveResident(fed, A, B, { kana: 'ベツ ジロウ' })];
    clerkB = await fed.m(B).login('clerk1');
    card = await cardFor(await identityAtB(moved.toAddressee));
  });
  after(async () => fed?.close());

  it('when a clerk enrols the resident\'s certificate, then it is in force; the same again, another person\'s or a foreign CA\'s certificate is refused by name', async () => {
    const enrolled = await enrol(moved.toAddressee, card.cert);
    expect(enrolled.status, JSON.stringify(enrolled.body)).to.equal(201);
    expect(enrolled.body).to.include({ kind: 'certificate', revokedAt: null });
    expect((await enrol(moved.toAddressee, card.cert)).body.type).to.match(/\/credential-already-enrolled$/);
    const otherCard = await cardFor(await identityAtB(other.toAddressee));
    const wrongPerson = await enrol(moved.toAddressee, otherCard.cert);
    expect(wrongPerson.status).to.equal(422);
    expect(wrongPerson.body.type).to.match(/\/certificate-names-another-person$/);
    const foreign = await enrol(moved.toAddressee, (await cardFor(await identityAtB(moved.toAddressee), rogueCa())).cert);
    expect(foreign.status).to.equal(400);
    expect(foreign.body.type).to.match(/\/invalid-certificate$/);
    const listed = await api('GET', url(`/residents/${moved.toAddressee}/resident-credentials`), { token: clerkB });
    expect(listed.body.credentials).to.have.length(1);
  });

  it('when the resident signs a fresh challenge with the enrolled certificate\'s key, then they are signed in; a reused challenge, another key, an RS256 signature, another audience or an unenrolled certificate are refused and logged', async () => {
    const ok = await signIn(card);
    expect(ok.res.status, JSON.stringify(ok.res.body)).to.equal(200);
    expect(ok.res.body.token).to.be.a('string');
    expect(ok.res.headers.get('set-cookie')).to.match(/hikitsugi_resident=.*HttpOnly/i);

    const again = await api('POST', url('/resident/sign-in'), { body: { certificate: card.cert, signature: ok.signature } });
    expect(again.status).to.equal(401);
    expect(again.body.type).to.match(/\/sign-in-challenge-invalid$/);

    const stranger = await cardFor(await identityAtB(moved.toAddressee));
    const wrongKey = await signIn(card, { signer: stranger });
    expect(wrongKey.res.body.type).to.match(/\/sign-in-signature-invalid$/);
    // The algorithm of the RSA keys residents held before, with an RSA key of the attacker's: ES256 is pinned.
    const rs256 = await signIn(card, { signer: { key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey }, alg: 'RS256' });
    expect(rs256.res.body.type).to.match(/\/sign-in-signature-invalid$/);
    const elsewhere = await signIn(card, { aud: A });
    expect(elsewhere.res.body.type).to.match(/\/sign-in-audience-mismatch$/);
    const unenrolled = await signIn(stranger);
    expect(unenrolled.res.status).to.equal(401);
    expect(unenrolled.res.body.type).to.match(/\/sign-in-credential-unknown$/);
    for (const reason of ['challenge_invalid', 'signature_invalid', 'audience_mismatch', 'credential_unknown']) expect(await deniedSignIns(reason), reason).to.be.at.least(1);
  });

  it('when a clerk at B asks A about the resident, then the signed-in resident sees that access, their imported records with where they came from, their consent — and the reading is logged', async () => {
    const asked = await ask(fed.m(B), clerkB, moved.toAddressee, A);
    expect(asked.status).to.equal('ok');
    const token = (await signIn(card)).res.body.token as string;
    const page = await api('GET', url('/resident/me'), { token });
    expect(page.status, JSON.stringify(page.body)).to.equal(200);
    expect(page.body.resident.addresseeNumber).to.equal(moved.toAddressee);
    const query = page.body.trail.find((i: { action: string; requestId: string }) => i.action === 'exchange.query.send' && i.requestId === asked.requestId);
    expect(query, 'the clerk\'s query is in the trail').to.include({ crossMunicipality: true, direction: 'asked-elsewhere', otherMunicipality: A, purpose: 'next-dose-scheduling', legalBasis: 'consent' });
    expect(query.who).to.deep.equal({ type: 'staff', role: 'clerk', municipality: B });
    const imported = page.body.records.filter((r: { source: { municipality: string } | null }) => r.source?.municipality === A);
    expect(imported).to.have.length(2);
    expect(page.body.consents).to.have.length(1);
    expect(page.body.consents[0]).to.include({ revokedAt: null });
    expect(page.body.consents[0].sources).to.deep.equal([A]);
    expect(page.body.municipalityNames[A]).to.be.a('string');
    // The notice of that import, sent to them (§4.11): the same request, the records it brought.
    const notice = page.body.notices.find((n: { kind: string; requestId: string }) => n.kind === 'records-imported' && n.requestId === asked.requestId);
    expect(notice, JSON.stringify(page.body.notices)).to.include({ otherMunicipality: A, purpose: 'next-dose-scheduling', recordCount: 2 });
    expect(JSON.stringify(page.body)).not.to.include(moved.myNumber);

    const readings = await fed.m(B).ctx.models.AccessLog.findAll({ where: { actorType: 'resident', subject: moved.toAddressee }, raw: true });
    expect(readings.map((e) => e.action)).to.include.members(['resident.sign_in', 'resident.self.read', 'audit.disclosure', 'exchange.trail.request']);
  });

  it('when the resident reads their page, then A\'s own entries about them come through the gateway: the release to B among them, A logging the disclosure, the gateway reading nothing of it', async () => {
    const token = (await signIn(card)).res.body.token as string;
    const page = await api('GET', url('/resident/me'), { token });
    const atA = page.body.elsewhere.find((g: { municipality: string }) => g.municipality === A);
    expect(atA, JSON.stringify(page.body.elsewhere)).to.include({ status: 'ok' });
    const actions = atA.items.map((i: { action: string }) => i.action);
    // A registered them, recorded two doses, moved them out, and answered B's query.
    expect(actions).to.include.members(['resident.create', 'vaccination.create', 'resident.move_out', 'exchange.query.answer']);
    const released = atA.items.find((i: { action: string }) => i.action === 'exchange.query.answer');
    expect(released).to.include({ outcome: 'allowed', crossMunicipality: true, direction: 'asked-here', otherMunicipality: B });
    const disclosed = await fed.m(A).ctx.models.AccessLog.findOne({ where: { action: 'exchange.trail.answer', subject: moved.fromAddressee, outcome: 'allowed' }, raw: true });
    expect(disclosed).to.include({ actorType: 'member', actorId: B });
    const routed = await fed.gateway.gateway.ctx.models.AccessLog.findAll({ where: { action: 'trail.route' }, raw: true });
    expect(routed.length).to.be.at.least(1);
    // The gateway logged codes and statuses; the resident's identity and entries were sealed.
    expect(JSON.stringify(routed)).not.to.match(new RegExp(`${moved.kana}|${moved.fromAddressee}|${moved.toAddressee}|resident\\.create`));
  });

  it('when a clerk\'s life-protection request is approved by a second clerk and the query runs, then the page flags that access at B and in A\'s entries', async () => {
    const clerk2 = await fed.m(B).login('clerk2');
    const requested = await api('POST', url('/exchange/exception-requests'), {
      token: clerk2, body: { addresseeNumber: moved.toAddressee, source: A, purpose: 'next-dose-scheduling', justification: '意識不明で搬送、接種歴の確認が治療に必要なため' },
    });
    expect(requested.status, JSON.stringify(requested.body)).to.equal(201);
    const approved = await api('POST', url(`/exchange/exception-requests/${requested.body.id}/approve`), { token: clerkB });
    expect(approved.status, JSON.stringify(approved.body)).to.equal(200);
    const asked = await api('POST', url('/exchange/queries'), {
      token: clerk2, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moved.toAddressee, source: A, exceptionId: requested.body.id }] },
    });
    expect(asked.status, JSON.stringify(asked.body)).to.equal(200);
    expect(asked.body.results[0].status).to.equal('ok');

    const token = (await signIn(card)).res.body.token as string;
    const page = await api('GET', url('/resident/me'), { token });
    const atB = page.body.trail.find((i: { action: string; requestId: string }) => i.action === 'exchange.query.send' && i.requestId === asked.body.requestId);
    expect(atB, 'the exception-path query in B\'s entries').to.include({ legalBasis: 'life-protection', otherMunicipality: A });
    expect(atB.flags).to.include('life-protection');
    // The approval is the resident's entry too, flagged as well.
    expect(page.body.trail.filter((i: { action: string; flags: string[] }) => i.action === 'exchange.exception.approve' && i.flags.includes('life-protection'))).to.have.length(1);
    const fromA = page.body.elsewhere.find((g: { municipality: string }) => g.municipality === A);
    const answered = fromA.items.filter((i: { action: string; legalBasis: string | null }) => i.action === 'exchange.query.answer' && i.legalBasis === 'life-protection');
    expect(answered, JSON.stringify(fromA.items)).to.have.length(1);
    expect(answered[0]).to.include({ outcome: 'allowed', otherMunicipality: B });
    expect(answered[0].flags).to.include('life-protection');
    // The consent-based answer before it is not flagged.
    const byConsent = fromA.items.filter((i: { action: string; legalBasis: string | null }) => i.action === 'exchange.query.answer' && i.legalBasis === 'consent');
    expect(byConsent.length).to.be.at.least(1);
    for (const i of byConsent) expect(i.flags).not.to.include('life-protection');
  });

  it('when the resident moved C → A → B, then C is asked too: its entries about them come through the gateway on the resident\'s proof', async () => {
    // Registered at C with two doses, moved to A, then on to B (consent for A only).
    const chained = await moveResident(fed, C, A, { kana: 'ワタリ サブロウ' });
    const [clerkA] = [await fed.m(A).login('clerk1')];
    const certificate = await moveOut(fed.m(A), clerkA, chained.toAddressee, B);
    const atB = await moveIn(fed.m(B), clerkB, certificate, chained.myNumber, 'next-dose-scheduling');
    await registerCodes(fed.m(B));
    const chainedCard = await cardFor(await identityAtB(atB));
    expect((await enrol(atB, chainedCard.cert)).status).to.equal(201);
    const token = (await signIn(chainedCard)).res.body.token as string;
    const page = await api('GET', url('/resident/me'), { token });
    expect(page.status, JSON.stringify(page.body)).to.equal(200);
    expect(page.body.elsewhere.map((g: { municipality: string }) => g.municipality)).to.include.members([A, C]);
    const atC = page.body.elsewhere.find((g: { municipality: string }) => g.municipality === C);
    expect(atC, JSON.stringify(page.body.elsewhere)).to.include({ status: 'ok' });
    expect(atC.items.map((i: { action: string }) => i.action)).to.include.members(['resident.create', 'resident.move_out']);
    const disclosed = await fed.m(C).ctx.models.AccessLog.findOne({ where: { action: 'exchange.trail.answer', subject: chained.fromAddressee, outcome: 'allowed' }, raw: true });
    expect(disclosed).to.include({ actorType: 'member', actorId: B });
  });

  it('when the resident reads their page, then the gateway\'s own entries about them are there — B\'s query routed to A, the codes registered — with no code and no staff id, and the gateway logged the disclosure', async () => {
    const token = (await signIn(card)).res.body.token as string;
    const page = await api('GET', url('/resident/me'), { token });
    expect(page.status, JSON.stringify(page.body)).to.equal(200);
    const gw = page.body.gateway;
    expect(gw).to.include({ status: 'ok', reason: null });
    const routed = gw.items.find((i: { action: string; outcome: string }) => i.action === 'query.route' && i.outcome === 'allowed');
    expect(routed, JSON.stringify(gw.items)).to.include({ municipality: B, counterpart: A, purpose: 'next-dose-scheduling', legalBasis: 'consent' });
    const registered = gw.items.filter((i: { action: string }) => i.action === 'correspondence.register').map((i: { municipality: string }) => i.municipality);
    expect(registered).to.include.members([A, B]);
    expect(gw.items.map((i: { action: string }) => i.action)).to.include('trail.route');
    // Only the listed fields: no code of either municipality, no staff id, no request id.
    for (const i of gw.items) expect(i).to.have.all.keys('at', 'municipality', 'counterpart', 'action', 'purpose', 'legalBasis', 'outcome', 'reason', 'flags');
    const codeAtA = (await findResidentByAddressee(fed.m(A).ctx, moved.fromAddressee))!.code!;
    const codeAtB = (await findResidentByAddressee(fed.m(B).ctx, moved.toAddressee))!.code!;
    const clerkId = (await fed.m(B).ctx.models.Staff.findOne({ where: { username: 'clerk1' }, raw: true }))!.id;
    expect(JSON.stringify(gw)).not.to.match(new RegExp(`${codeAtA}|${codeAtB}|${clerkId}`));
    // The gateway logged the disclosure against B's code; B logged its ask in the resident's name and kept the gateway's head.
    const disclosed = await fed.gateway.gateway.ctx.models.AccessLog.findAll({ where: { action: 'trail.disclose', subject: codeAtB, outcome: 'allowed' }, raw: true });
    expect(disclosed.length).to.be.at.least(1);
    expect(disclosed[0]).to.include({ actorId: B, actingMunicipality: B });
    const asked = await fed.m(B).ctx.models.AccessLog.findAll({ where: { action: 'exchange.trail.request', actorType: 'resident', subject: moved.toAddressee }, raw: true });
    expect(asked.filter((e) => JSON.parse(e.details).source === GATEWAY_ID).length).to.be.at.least(1);
    expect(await fed.m(B).ctx.models.WitnessedHead.count({ where: { member: GATEWAY_ID, exchange: 'trail' } })).to.be.at.least(1);
    expect(await fed.gateway.gateway.ctx.models.WitnessedHead.count({ where: { member: B, exchange: 'trail' } })).to.be.at.least(1);
  });

  it('when B asks the gateway about a code that is not B\'s, or C signs in B\'s name, then the gateway refuses: denied code_not_yours, 403 requester-mismatch', async () => {
    const codeAtA = (await findResidentByAddressee(fed.m(A).ctx, moved.fromAddressee))!.code!;
    const request = (signer: Signer, sub: string) => signMessage({ aud: GATEWAY_ID, jti: randomUUID(), rid: `test-${randomUUID()}`, sub, head: EMPTY_HEAD }, signer, Typ.GATEWAY_TRAIL_REQUEST);
    const asB = await fed.client(B).postJson<{ answer: string }>(`${fed.gateway.url}${GATEWAY_TRAIL_PATH}`, { request: await request(fed.pki.credentials(B).signer, codeAtA) }, { expectPeer: GATEWAY_ID });
    expect(asB.status).to.equal(200);
    expect(peekJwt(asB.body.answer).claims).to.include({ status: 'denied', reason: 'code_not_yours' }).and.not.have.property('entries');
    const codeAtB = (await findResidentByAddressee(fed.m(B).ctx, moved.toAddressee))!.code!;
    const asC = await fed.client(C).postJson(`${fed.gateway.url}${GATEWAY_TRAIL_PATH}`, { request: await request(fed.pki.credentials(B).signer, codeAtB) }, { expectPeer: GATEWAY_ID });
    expectRefusal(asC, 403, 'requester-mismatch', 'B\'s request over C\'s connection');
    const bad = await fed.client(B).postJson<{ field: string }>(`${fed.gateway.url}${GATEWAY_TRAIL_PATH}`, { request: 'not a jws' }, { expectPeer: GATEWAY_ID });
    expectRefusal(bad, 400, 'validation', 'not a compact JWS');
    expect(bad.body.field).to.equal('request');
  });

  it('when B forwards a signature the resident did not make, or another person\'s signed sign-in, then A refuses: resident_signature_invalid, identity_mismatch', async () => {
    const link = fed.m(B).municipality.federation!.link;
    const resident = (await findResidentByAddressee(fed.m(B).ctx, moved.toAddressee))!;
    const who = { kind: 'resident' as const, credentialId: 'test', residentId: resident.id, addresseeNumber: resident.addresseeNumber };
    const stranger = await cardFor(await identityAtB(moved.toAddressee));
    const forged = await sign(stranger, { aud: B, nonce: 'n'.repeat(43) });
    const [badSignature] = await gatherTrail(fed.m(B).ctx, link, { who, code: resident.code!, certificate: card.cert, signIn: forged }, [A]);
    expect(badSignature).to.include({ municipality: A, status: 'denied', reason: 'resident_signature_invalid' });
    expect(badSignature!.items).to.deep.equal([]);
    const someoneElse = await cardFor(await identityAtB(other.toAddressee));
    const theirSignIn = await sign(someoneElse, { aud: B, nonce: 'n'.repeat(43) });
    const [mismatch] = await gatherTrail(fed.m(B).ctx, link, { who, code: resident.code!, certificate: someoneElse.cert, signIn: theirSignIn }, [A]);
    expect(mismatch).to.include({ status: 'identity_mismatch' });
    expect(mismatch!.items).to.deep.equal([]);
    const signedForA = await sign(card, { aud: A, nonce: 'n'.repeat(43) });
    const [elsewhere] = await gatherTrail(fed.m(B).ctx, link, { who, code: resident.code!, certificate: card.cert, signIn: signedForA }, [A]);
    expect(elsewhere).to.include({ status: 'denied', reason: 'resident_audience_mismatch' });
  });

  it('when a resident tries to reach another resident\'s data by any identifier, or a staff route with their session, or the page with a staff session, then it is refused and nothing changes', async () => {
    const token = (await signIn(card)).res.body.token as string;
    const otherConsent = (await api('GET', url(`/residents/${other.toAddressee}/consents`), { token: clerkB })).body.consents[0];
    const refused = await api('POST', url(`/resident/consents/${otherConsent.id}/revoke`), { token, body: {} });
    expect(refused.status).to.equal(404);
    expect(refused.body.type).to.match(/\/not-found$/);
    expect((await api('GET', url(`/residents/${other.toAddressee}/consents`), { token: clerkB })).body.consents[0].revokedAt).to.equal(null);
    // The page takes no identifier: one in the query string is not read.
    const page = await api('GET', url(`/resident/me?addresseeNumber=${other.toAddressee}`), { token, openapi: false });
    expect(page.body.resident.addresseeNumber).to.equal(moved.toAddressee);
    for (const path of [`/residents/${other.toAddressee}`, `/residents/${moved.toAddressee}`, `/residents/${other.toAddressee}/disclosure`, `/residents/${moved.toAddressee}/vaccinations`]) {
      const staffRoute = await api('GET', url(path), { token });
      expect(staffRoute.status, path).to.equal(401);
      expect(staffRoute.body.type, path).to.match(/\/session-invalid$/);
    }
    const asStaff = await api('GET', url('/resident/me'), { token: clerkB });
    expect(asStaff.status).to.equal(401);
    expect(asStaff.body.type).to.match(/\/session-invalid$/);
    const unsigned = await api('GET', url('/resident/me'));
    expect(unsigned.status).to.equal(401);
    expect(unsigned.body.type).to.match(/\/unauthorized$/);
  });

  it('when the resident revokes their consent, then it is revoked in their name, reaches the gateway and A, and the next query for them is refused at B and at A', async () => {
    const token = (await signIn(card)).res.body.token as string;
    const consentId = (await api('GET', url('/resident/me'), { token })).body.consents[0].id as string;
    const revoked = await api('POST', url(`/resident/consents/${consentId}/revoke`), { token, body: {} });
    expect(revoked.status, JSON.stringify(revoked.body)).to.equal(200);
    expect(revoked.body.revokedAt).to.be.a('string');
    const again = await api('POST', url(`/resident/consents/${consentId}/revoke`), { token, body: {} });
    expect(again.body.type).to.match(/\/consent-already-revoked$/);
    const entry = await fed.m(B).ctx.models.AccessLog.findOne({ where: { action: 'consent.revoke', consentId }, raw: true });
    expect(entry).to.include({ actorType: 'resident', actorRole: 'resident', subject: moved.toAddressee });
    // The resident's revocation travels like a clerk's (§4.4): B sends it, the gateway records and
    // relays it, A records it and logs the receipt.
    await revocationReached(fed, B, consentId, [A]);
    const gw = fed.gateway.gateway.ctx.models.AccessLog;
    expect((await gw.findAll({ where: { action: 'consent_revocation.record', consentId }, raw: true })).map((e) => [e.outcome, e.actorId])).to.deep.equal([['allowed', B]]);
    const relayed = await gw.findAll({ where: { action: 'consent_revocation.relay', consentId }, raw: true });
    expect(relayed.map((e) => [e.outcome, JSON.parse(e.details).recipient])).to.deep.equal([['allowed', A]]);
    expect((await fed.m(B).ctx.models.AccessLog.findAll({ where: { action: 'exchange.consent_revocation.send', consentId }, raw: true })).map((e) => e.outcome)).to.deep.equal(['allowed']);
    const next = await ask(fed.m(B), clerkB, moved.toAddressee, A);
    expect(next).to.include({ status: 'no_consent', reason: 'consent_revoked' });
    // And at A on its own, for a query the gateway never saw.
    const atA = await craftAndForwardAsGateway(fed, B, { addresseeNumber: moved.toAddressee, source: A, consent: { id: consentId } });
    expect(atA.source).to.include({ status: 'no_consent', reason: 'consent_revoked' });
  });

  it('when the resident takes their certificate, then it is a SMART Health Card issued in their name; after sign-out or a withdrawn credential the session is refused', async () => {
    const { token } = (await signIn(card)).res.body as { token: string };
    // A card file is JSON under its own media type, which the fixture's OpenAPI check does not parse.
    const file = await api('POST', url('/resident/vaccination-certificate'), { token, openapi: false });
    expect(file.status, JSON.stringify(file.body)).to.equal(200);
    expect(JSON.parse(file.body as unknown as string).verifiableCredential).to.have.length(1);
    const issued = await fed.m(B).ctx.models.AccessLog.findOne({ where: { action: 'certificate.issue', actorType: 'resident' }, raw: true });
    expect(issued).to.include({ subject: moved.toAddressee });

    expect((await api('POST', url('/resident/sign-out'), { token })).status).to.equal(204);
    expect((await api('GET', url('/resident/me'), { token })).body.type).to.match(/\/session-logged-out$/);

    const second = (await signIn(card)).res.body.token as string;
    const credentialId = (await api('GET', url(`/residents/${moved.toAddressee}/resident-credentials`), { token: clerkB })).body.credentials[0].id as string;
    expect((await api('POST', url(`/residents/${moved.toAddressee}/resident-credentials/${credentialId}/withdraw`), { token: clerkB })).status).to.equal(200);
    expect((await api('GET', url('/resident/me'), { token: second })).body.type).to.match(/\/session-credential-withdrawn$/);
    expect((await signIn(card)).res.body.type).to.match(/\/sign-in-credential-unknown$/);
  });

  it('when one address keeps asking for sign-in challenges, then once its budget is spent it is refused with 429 rate-limited naming the address and when to come back', async () => {
    // The budget refills at SIGN_IN_BUDGET per 60 s: these requests take well under a second.
    let refused;
    for (let i = 0; i <= SIGN_IN_BUDGET + 5 && !refused; i++) {
      const res = await api('POST', url('/resident/sign-in/challenge'));
      if (res.status !== 201) refused = res;
    }
    expect(refused?.status).to.equal(429);
    expect(refused?.body).to.include({ type: 'https://hikitsugi.example/problems/rate-limited', field: 'address', rule: `at most ${SIGN_IN_BUDGET} requests per 60 seconds per address` });
    expect(refused?.headers.get('retry-after')).to.match(/^[1-9]\d*$/);
  });
});
