/**
 * Resident-signed consent (docs/DESIGN.md §4.4) on a real federation in one process. The federation CA issues
 * a resident a personal signing certificate (standing in for the My Number card's); the resident
 * signs a consent naming requester, source, purpose and validity; Toda records it after checking
 * it; Tawaramoto verifies the signature, the certificate and the identity itself before releasing.
 */
import { expect } from 'chai';
import { createPrivateKey } from 'node:crypto';
import { signResidentConsent } from '../../shared/consent-policy.ts';
import { peekJwt } from '../../shared/crypto.ts';
import {
  certificateKid, issueResidentCertificate, verifyMemberCertificate, verifyResidentCertificate, type ResidentIdentity,
} from '../../shared/federation/pki.ts';
import type { ResidentConsentClaims } from '../../shared/federation/protocol.ts';
import { randomMyNumber } from '../fixtures/factories.ts';
import { api } from '../fixtures/http.ts';
import {
  AKIOTA, TAWARAMOTO, TODA, answersLogged, ask, craftAndSend, moveIn, moveOut, registerCodes, residentWithRecords,
  startInProcessFederation, type InProcessFederation,
} from '../fixtures/inprocess-federation.ts';
import { rogueCa } from '../fixtures/pki.ts';

const DAY = 86_400_000;

describe('resident-signed consent: the resident signs, the source verifies', function () {
  this.timeout(120_000);
  let fed: InProcessFederation;
  const token: Record<string, string> = {};
  let atToda: string;
  const hanako: ResidentIdentity = { kana: 'ショメイ ハナコ', birthDate: '1985-07-14', sex: 'female' };
  let card: { cert: string; sign: (over?: Partial<Parameters<typeof signResidentConsent>[0]>) => Promise<string> };

  /** A personal certificate from `ca` and a signer with its key (what the resident's card does). */
  async function personalCard(identity: ResidentIdentity, ca = fed.pki.ca, validity: { notBefore?: Date; notAfter?: Date } = {}) {
    const issued = await issueResidentCertificate(ca, identity, validity);
    const key = { key: createPrivateKey(issued.key!), kid: certificateKid(issued.cert) };
    return {
      cert: issued.cert,
      sign: (over: Partial<Parameters<typeof signResidentConsent>[0]> = {}) =>
        signResidentConsent({ requester: TODA, source: TAWARAMOTO, purpose: 'next-dose-scheduling', validSeconds: 30 * 86_400, ...over }, key),
    };
  }

  /** Consent terms exactly as the resident signed them (what Toda's service puts in a query). */
  const termsOf = (signature: string) => {
    const c = peekJwt(signature).claims as unknown as ResidentConsentClaims;
    return {
      purpose: c.purpose, sources: [c.aud], givenAt: new Date(c.iat * 1000).toISOString(), expiresAt: new Date(c.exp * 1000).toISOString(),
      method: 'resident-signed' as const, residentSignature: signature,
    };
  };

  const record = (body: unknown, t = token[TODA]) => api('POST', `${fed.m(TODA).url}/residents/${atToda}/consents/resident-signed`, { token: t, body });
  const consentsAtToda = () => fed.m(TODA).ctx.models.Consent.count();

  before(async () => {
    fed = await startInProcessFederation({ municipalities: [TAWARAMOTO, TODA] });
    for (const code of [TAWARAMOTO, TODA]) token[code] = await fed.clerk(code);
    const myNumber = randomMyNumber();
    const { addresseeNumber } = await residentWithRecords(fed.m(TAWARAMOTO), token[TAWARAMOTO]!, { ...hanako, myNumber });
    const certificate = await moveOut(fed.m(TAWARAMOTO), token[TAWARAMOTO]!, addresseeNumber, TODA);
    // Moved in without consent at the counter: the resident signs one themselves.
    atToda = await moveIn(fed.m(TODA), token[TODA]!, certificate, myNumber);
    for (const code of [TAWARAMOTO, TODA]) await registerCodes(fed.m(code));
    card = await personalCard(hanako);
  });
  after(async () => fed?.close());

  it('when the CA issues a personal certificate, then it names the resident by kana, birth date and sex, never a My Number, and cannot pass for a member', async () => {
    const verified = verifyResidentCertificate(card.cert, fed.pki.ca.cert);
    expect(verified).to.include({ kana: hanako.kana, birthDate: hanako.birthDate, sex: hanako.sex });
    expect(card.cert).not.to.match(/\d{12}/);
    expect(() => verifyMemberCertificate(card.cert, fed.pki.ca.cert, { usage: 'signing' })).to.throw(/Certificate refused/);
    const member = fed.pki.credentials(TAWARAMOTO).tls.cert;
    expect(() => verifyResidentCertificate(member, fed.pki.ca.cert)).to.throw(/Certificate refused/);
  });

  it('when the resident signs a consent with their personal key, then Toda records it as resident-signed, and Tawaramoto verifies it itself and releases', async () => {
    const signature = await card.sign();
    const before = await consentsAtToda();
    const recorded = await record({ signature, certificate: card.cert });
    expect(recorded.status, JSON.stringify(recorded.body)).to.equal(201);
    expect(recorded.body).to.include({ method: 'resident-signed', purpose: 'next-dose-scheduling', residentSignature: signature, residentCertificate: card.cert });
    expect(recorded.body.sources).to.deep.equal([TAWARAMOTO]);
    expect(await consentsAtToda()).to.equal(before + 1);
    const again = await record({ signature, certificate: card.cert });
    expect(again.status, 'one signed consent is recorded once').to.equal(409);

    const out = await ask(fed.m(TODA), token[TODA]!, atToda, TAWARAMOTO);
    expect(out).to.include({ status: 'ok', recordCount: 2, imported: 2 });
    const logged = await answersLogged(fed.m(TAWARAMOTO), out.requestId);
    expect(logged.map((r) => [r.outcome, r.consentId])).to.deep.equal([['allowed', recorded.body.id]]);
  });

  it('when Toda is shown another resident\'s certificate, a tampered or foreign-signed consent, an expired certificate, or a consent for another requester, then it records nothing and logs each refusal', async () => {
    const other = await personalCard({ kana: 'ベツジン タロウ', birthDate: '1970-01-01', sex: 'male' });
    const expired = await personalCard(hanako, fed.pki.ca, { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    const foreign = await personalCard(hanako, rogueCa());
    const genuine = await card.sign();
    const [h, p, s] = genuine.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const tampered = [h, Buffer.from(JSON.stringify({ ...payload, purpose: 'adverse-event-follow-up' })).toString('base64url'), s].join('.');
    const before = await consentsAtToda();
    const cases: [string, unknown, string, string][] = [
      ['another resident', { signature: await other.sign(), certificate: other.cert }, 'certificate', 'resident_certificate_identity'],
      ['tampered terms', { signature: tampered, certificate: card.cert }, 'signature', 'resident_signature_invalid'],
      ['signed with another key', { signature: await other.sign(), certificate: card.cert }, 'signature', 'resident_signature_invalid'],
      ['expired certificate', { signature: await expired.sign(), certificate: expired.cert }, 'certificate', 'resident_certificate_invalid'],
      ['foreign CA', { signature: await foreign.sign(), certificate: foreign.cert }, 'certificate', 'resident_certificate_invalid'],
      ['another requester', { signature: await card.sign({ requester: AKIOTA }), certificate: card.cert }, 'signature', 'resident_consent_terms'],
    ];
    for (const [label, body, field, reason] of cases) {
      const res = await record(body);
      expect(res.status, label).to.equal(422);
      expect(res.headers.get('content-type'), label).to.match(/application\/problem\+json/);
      expect(res.body, label).to.include({ type: 'https://hikitsugi.example/problems/resident-consent-refused', field, reason });
    }
    expect(await consentsAtToda()).to.equal(before);
    const denied = await fed.m(TODA).ctx.models.AccessLog.findAll({ where: { action: 'consent.record', outcome: 'denied', subject: atToda }, raw: true });
    expect(denied.map((r) => r.reason)).to.deep.equal(cases.map((c) => c[3]));
  });

  it('when the body is malformed, the resident unknown, the role wrong or the token missing, then 400, 404, 403, 401', async () => {
    const signature = await card.sign();
    const malformed = await record({ signature: 'not a jws', certificate: card.cert });
    expect(malformed.status).to.equal(400);
    expect(malformed.body.field).to.equal('signature');
    expect((await record({ signature, certificate: 'PEM?' })).body.field).to.equal('certificate');
    expect((await record({ signature, certificate: card.cert, extra: 1 })).status).to.equal(400);
    const unknown = await api('POST', `${fed.m(TODA).url}/residents/1000000008/consents/resident-signed`, { token: token[TODA], body: { signature, certificate: card.cert } });
    expect(unknown.status).to.equal(404);
    expect((await record({ signature, certificate: card.cert }, await fed.m(TODA).tokenFor('privacy_officer'))).status).to.equal(403);
    expect((await api('POST', `${fed.m(TODA).url}/residents/${atToda}/consents/resident-signed`, { body: { signature, certificate: card.cert } })).status).to.equal(401);
  });

  it('when Toda\'s query carries a consent signed with another resident\'s key, tampered terms or an expired certificate, then Tawaramoto verifies on its own and releases nothing', async () => {
    const other = await personalCard({ kana: 'ベツジン ジロウ', birthDate: '1970-01-01', sex: 'male' });
    const expired = await personalCard(hanako, fed.pki.ca, { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    const genuine = await card.sign();
    const send = (signature: string, certificate: string | undefined, terms: Record<string, unknown> = {}) =>
      craftAndSend(fed, TODA, {
        addresseeNumber: atToda, source: TAWARAMOTO, consent: { ...termsOf(signature), ...terms },
        sealed: { moveIn: { movedInAt: new Date().toISOString() }, ...(certificate ? { residentCertificate: certificate } : {}) },
      });

    // The control: Toda's own key, the resident's genuine consent and certificate → released.
    const control = await send(genuine, card.cert);
    expect(control.source).to.include({ status: 'ok' });

    const cases: [string, Awaited<ReturnType<typeof send>>, string][] = [
      ['another resident\'s key and certificate', await send(await other.sign(), other.cert), 'resident_certificate_identity'],
      ['another resident\'s key, this resident\'s certificate', await send(await other.sign(), card.cert), 'resident_signature_invalid'],
      ['terms widened by Toda', await send(genuine, card.cert, { expiresAt: new Date(Date.now() + 60 * DAY).toISOString() }), 'resident_consent_terms:expiresAt'],
      ['expired certificate', await send(await expired.sign(), expired.cert), 'resident_certificate_invalid'],
      ['no certificate sealed', await send(genuine, undefined), 'resident_signature_missing'],
    ];
    for (const [label, sent, reason] of cases) {
      expect(sent.source, label).to.include({ status: 'no_consent', reason });
      const logged = await answersLogged(fed.m(TAWARAMOTO), sent.rid);
      expect(logged.map((r) => `${r.outcome}:${r.reason}`), label).to.deep.equal([`denied:${reason}`]);
      expect(JSON.parse(logged[0]!.recordIds), label).to.deep.equal([]);
    }
  });
});
