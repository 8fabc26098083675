import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../shared/platform/errors.ts';
import { signMessage, verifyMessage, sealMessage, openMessage } from '../../shared/federation/messages.ts';
import {
  certificateKid, credentialsFromPem, initPki, KEY_RULE, pkiPaths, readCaRevocations, verifyCaCertificate, verifyMemberCertificate, caSigner,
  type VerifyCertificateOptions,
} from '../../shared/federation/pki.ts';
import { directoryFromEntries, directoryFromFile } from '../../shared/federation/directory.ts';
import { rsaCertificateAuthority, rsaMemberCertificate, writeRsaPki } from '../fixtures/legacy-pki.ts';
import { createRevocationGuard, fileRevocationSource, signRevocationList, verifyRevocationList } from '../../shared/federation/revocation.ts';
import { Typ, sealedIdentitiesSchema } from '../../shared/federation/protocol.ts';
import { copyTestPki, expiredCredentials, FEDERATION_MEMBERS, foreignCredentials, rogueCa, testPki, type TestPki } from '../fixtures/pki.ts';

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(AppError);
    return err as AppError;
  }
  expect.fail('expected the certificate to be refused');
}

describe('federation PKI', () => {
  let pki: TestPki;

  before(() => {
    pki = testPki();
  });

  const toda = () => pki.credentials('112241');

  it('when a member certificate is issued, then it verifies against the CA with CN = id and OU = kind, over an EC P-256 key signed ECDSA/SHA-256', () => {
    for (const pem of [pki.ca.cert, toda().tls.cert, toda().enc.cert]) {
      const cert = new X509Certificate(pem);
      expect(cert.publicKey.asymmetricKeyDetails).to.deep.equal({ namedCurve: 'prime256v1' });
      expect(cert.toLegacyObject().asn1Curve).to.equal('prime256v1');
    }
    const tls = verifyMemberCertificate(toda().tls.cert, pki.ca.cert, { usage: 'signing', expectedId: '112241', expectedKind: 'municipality' });
    expect(tls).to.include({ id: '112241', kind: 'municipality' });
    const enc = verifyMemberCertificate(toda().enc.cert, pki.ca.cert, { usage: 'encryption', expectedId: '112241' });
    expect(enc.serial).not.to.equal(tls.serial);
    expect(pki.credentials('gateway')).to.include({ id: 'gateway', kind: 'gateway' });
    expect(pki.credentials('issuer')).to.include({ id: 'issuer', kind: 'issuer' });
  });

  it('when the kid is computed, then it is 22 base64url characters, stable per certificate, different between certificates', () => {
    const kid = certificateKid(toda().tls.cert);
    expect(kid).to.match(/^[A-Za-z0-9_-]{22}$/);
    expect(certificateKid(toda().tls.cert)).to.equal(kid);
    expect(certificateKid(toda().enc.cert)).not.to.equal(kid);
    expect(toda().signer.kid).to.equal(kid);
    expect(toda().decryption.kid).to.equal(certificateKid(toda().enc.cert));
  });

  it('when a certificate is checked against the wrong id, kind or usage, then it is refused naming the rule', () => {
    const base: VerifyCertificateOptions = { usage: 'signing' };
    expect(refusal(() => verifyMemberCertificate(toda().tls.cert, pki.ca.cert, { ...base, expectedId: '293610' })).extra.rule).to.match(/CN must equal/);
    expect(refusal(() => verifyMemberCertificate(toda().tls.cert, pki.ca.cert, { ...base, expectedKind: 'gateway' })).extra.rule).to.match(/OU must be gateway/);
    // The encryption certificate cannot pass for a signing key, nor the signing one for an encryption key.
    expect(refusal(() => verifyMemberCertificate(toda().enc.cert, pki.ca.cert, { usage: 'signing' })).extra.rule).to.match(/digitalSignature/);
    expect(refusal(() => verifyMemberCertificate(toda().tls.cert, pki.ca.cert, { usage: 'encryption' })).extra.rule)
      .to.equal('an encryption certificate must allow keyAgreement and not digitalSignature');
  });

  it('when a member certificate holds an RSA key, even one the federation CA signed with every other field right, then it is refused naming the key rule, wherever it is presented', async () => {
    const member = { id: '112241', kind: 'municipality' as const, name: 'Toda' };
    const [tls, enc] = [await rsaMemberCertificate(pki.ca, member, 'signing'), await rsaMemberCertificate(pki.ca, member, 'encryption')];
    for (const [pem, usage] of [[tls.cert, 'signing'], [enc.cert, 'encryption']] as const) {
      const err = refusal(() => verifyMemberCertificate(pem, pki.ca.cert, { usage, expectedId: member.id, field: 'signingCertificate' }));
      expect(err.status).to.equal(400);
      expect(err.code).to.equal('invalid-certificate');
      expect(err.extra).to.deep.equal({ field: 'signingCertificate', rule: KEY_RULE });
    }
    // As a member's own credentials, and as a directory entry: the same rule, nothing else.
    expect(refusal(() => credentialsFromPem({ ca: pki.ca.cert, tlsCert: tls.cert, tlsKey: tls.key, encCert: toda().enc.cert, encKey: toda().enc.key })).extra.rule).to.equal(KEY_RULE);
    const guard = createRevocationGuard({ ca: pki.ca.cert, source: fileRevocationSource(pkiPaths(pki.dir).revocations) });
    await guard.refresh();
    const directory = directoryFromEntries(() => pki.directory().map((e) => (e.id === member.id ? { ...e, signingCertificate: tls.cert } : e)), pki.ca.cert, guard);
    const serial = new X509Certificate(tls.cert).serialNumber;
    expect(await directory.member(member.id, serial)).to.equal(undefined);
    expect(directory.rejected()).to.deep.include({ id: member.id, field: 'signingCertificate', rule: KEY_RULE });
  });

  it('when the CA certificate holds an RSA key, then it is refused naming the key rule', async () => {
    const rsaCa = await rsaCertificateAuthority();
    expect(refusal(() => verifyCaCertificate(rsaCa.cert)).extra).to.deep.equal({ field: 'ca', rule: KEY_RULE });
  });

  it('when init finds the RSA PKI of an earlier version, then it stops and says what to run; told to replace it, it makes an EC CA, re-issues every member and continues the list numbers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rsa-pki-'));
    try {
      const members = FEDERATION_MEMBERS.slice(0, 3);
      const old = await writeRsaPki(dir, members, 4);
      let message = '';
      await initPki(dir, members).catch((err: Error) => { message = err.message; });
      expect(message).to.match(/holds an RSA key; the federation's keys are EC P-256/);
      expect(message).to.include('npm run pki -- init --replace-rsa-ca');
      expect(readFileSync(pkiPaths(dir).caCert, 'utf8'), 'nothing changed').to.equal(old.cert);

      const result = await initPki(dir, members, { replaceRsaCa: true });
      expect(result.reissued.sort()).to.deep.equal(members.map((m) => m.id).sort());
      expect(result.retiredCa).to.be.a('string');
      expect(readFileSync(join(result.retiredCa!, 'ca.pem'), 'utf8'), 'the old CA kept aside').to.equal(old.cert);
      expect(readdirSync(dir).filter((f) => f.startsWith('ca.retired-'))).to.have.length(1);
      const ca = readFileSync(pkiPaths(dir).caCert, 'utf8');
      expect(new X509Certificate(ca).publicKey.asymmetricKeyType).to.equal('ec');
      for (const m of members) {
        verifyMemberCertificate(readFileSync(join(dir, m.id, 'tls.pem'), 'utf8'), ca, { usage: 'signing', expectedId: m.id, expectedKind: m.kind });
        expect(readFileSync(join(dir, m.id, 'ca.pem'), 'utf8')).to.equal(ca);
      }
      expect((await readCaRevocations(dir)).number, 'members that kept list 4 take the new CA\'s first list as newer').to.equal(5);
      expect(existsSync(join(dir, 'directory.json'))).to.equal(true);
      // A second run has nothing left to replace.
      expect(await initPki(dir, members, { replaceRsaCa: true })).to.deep.include({ kept: members.map((m) => m.id) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when a certificate comes from another CA, then it is refused', async () => {
    const rogue = foreignCredentials('112241');
    const err = refusal(() => verifyMemberCertificate(rogue.tls.cert, pki.ca.cert, { usage: 'signing', expectedId: '112241' }));
    expect(err.code).to.equal('invalid-certificate');
    expect(err.extra.rule).to.equal('must be signed by the federation CA');
  });

  it('when a certificate has expired, then it is refused', async () => {
    const expired = expiredCredentials('343692');
    expect(refusal(() => verifyMemberCertificate(expired.tls.cert, pki.ca.cert, { usage: 'signing' })).extra.rule).to.equal('must be within its validity period');
  });

  it('when the PEM is malformed or truncated, then a 400 names the field and says it must be a certificate', () => {
    const truncated = toda().tls.cert.slice(0, 300);
    for (const pem of ['not a certificate', truncated, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----']) {
      const err = refusal(() => verifyMemberCertificate(pem, pki.ca.cert, { usage: 'signing', field: 'signingCertificate' }));
      expect(err.status).to.equal(400);
      expect(err.extra).to.include({ field: 'signingCertificate', rule: 'must be a PEM X.509 certificate' });
    }
  });

  it('when a member is revoked, then the CA-signed list names its serials and its certificates are refused', async () => {
    const own = await copyTestPki();
    try {
      const cert = own.credentials('293610').tls.cert;
      const serials = await own.revoke('293610');
      expect(serials).to.have.length(2);
      const list = await own.revocations();
      expect(list.isRevoked(own.credentials('293610').serial)).to.equal(true);
      const err = refusal(() => verifyMemberCertificate(cert, own.ca.cert, { usage: 'signing', isRevoked: list.isRevoked }));
      expect(err.extra.rule).to.equal('must not be revoked');
      const jws = readFileSync(pkiPaths(own.dir).revocations, 'utf8');
      expect(JSON.parse(Buffer.from(jws.split('.')[0]!, 'base64url').toString())).to.include({ typ: Typ.REVOCATIONS });
    } finally {
      own.remove();
    }
  });

  it('when a revocation list is signed by another CA or altered, then it is refused', async () => {
    const forged = await signRevocationList(caSigner(rogueCa()), { number: 9, serials: [] });
    const genuineEmpty = await signRevocationList(caSigner(pki.ca), { number: 9, serials: [] });
    const altered = genuineEmpty.replace(/\.[^.]+\./, `.${Buffer.from(JSON.stringify({ iss: 'federation-ca', number: 10, iat: 0, nextUpdate: 1, serials: [] })).toString('base64url')}.`);
    for (const jws of [forged, altered]) {
      try {
        await verifyRevocationList(jws, pki.ca.cert);
        expect.fail('accepted');
      } catch (err) {
        expect((err as AppError).code).to.equal('invalid-revocations');
      }
    }
    const genuine = await signRevocationList(caSigner(pki.ca), { number: 1, serials: ['0A'] });
    expect((await verifyRevocationList(genuine, pki.ca.cert)).isRevoked('a')).to.equal(true);
  });

  it('when init runs again, then existing keys are kept; after a revocation the member is re-issued', async () => {
    const own = await copyTestPki();
    try {
      const path = join(pkiPaths(own.dir).member('issuer'), 'tls.pem');
      const before = readFileSync(path, 'utf8');
      const again = await initPki(own.dir, FEDERATION_MEMBERS.slice(0, 1));
      expect(again.kept).to.deep.equal(['issuer']);
      expect(readFileSync(path, 'utf8')).to.equal(before);
      await own.revoke('issuer');
      const third = await initPki(own.dir, FEDERATION_MEMBERS.slice(0, 1));
      expect(third.reissued).to.deep.equal(['issuer']);
      expect(readFileSync(path, 'utf8')).not.to.equal(before);
    } finally {
      own.remove();
    }
  });

  it('when keys are written, then private key files are readable by the owner only', () => {
    for (const file of [pkiPaths(pki.dir).caKey, join(pki.dir, '112241', 'tls.key'), join(pki.dir, '112241', 'enc.key')]) {
      expect(statSync(file).mode & 0o777, file).to.equal(0o600);
    }
  });

  it('when directory.json is built, then every member is listed with both certificates and no private key', () => {
    const entries = pki.directory({ '112241': 'https://127.0.0.1:9' });
    expect(entries.map((e) => e.id).sort()).to.deep.equal(['112241', '293610', '343692', 'gateway', 'issuer']);
    expect(entries.find((e) => e.id === '112241')).to.include({ kind: 'municipality', name: 'Toda', endpoint: 'https://127.0.0.1:9' });
    expect(JSON.stringify(entries)).not.to.match(/PRIVATE KEY/);
  });

  it('when the directory file changes, then the next identity check is judged by the new file at once, however recent the last refresh', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'directory-'));
    try {
      const file = join(dir, 'directory.json');
      const honest = pki.directory();
      const swapped = honest.map((e) => (e.id === '112241' ? { ...e, encryptionCertificate: pki.credentials('gateway').enc.cert } : e));
      const guard = createRevocationGuard({ ca: pki.ca.cert, source: fileRevocationSource(pkiPaths(pki.dir).revocations) });
      await guard.refresh();
      let stamp = Date.now();
      const put = (entries: unknown) => {
        writeFileSync(file, JSON.stringify(entries));
        stamp += 1000;
        utimesSync(file, new Date(stamp), new Date(stamp));
      };
      put(swapped);
      const directory = directoryFromFile(file, pki.ca.cert, guard);
      const serial = verifyMemberCertificate(toda().tls.cert, pki.ca.cert, { usage: 'signing', expectedId: '112241' }).serial;
      expect(await directory.member('112241', serial), 'refused while its entry is swapped').to.equal(undefined);
      expect(directory.rejected().some((r) => r.id === '112241' && r.field === 'encryptionCertificate'), JSON.stringify(directory.rejected())).to.equal(true);
      put(honest);
      expect((await directory.member('112241', serial))?.id, 'accepted at once from the corrected file').to.equal('112241');
      expect((await directory.configured()).map((e) => e.encryptionCertificate)).to.include(toda().enc.cert);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when a member signs and another encrypts to it, then the loaded credentials verify and decrypt', async () => {
    const token = await signMessage({ aud: 'gateway', jti: 'abcdefgh-1' }, toda().signer, Typ.QUERY);
    const claims = await verifyMessage(token, sealedIdentitiesSchema.pick({ iss: true }).passthrough(), {
      key: verifyMemberCertificate(toda().tls.cert, pki.ca.cert, { usage: 'signing' }).publicKey, issuer: '112241', audience: 'gateway', typ: Typ.QUERY,
    });
    expect(claims.iss).to.equal('112241');
    const akiota = pki.credentials('343692');
    const sealed = await sealMessage({ aud: '343692', jti: 'abcdefgh-2' }, toda().signer, Typ.SEALED_IDENTITIES, akiota.encryption);
    const opened = await openMessage(sealed, akiota.decryption.key, sealedIdentitiesSchema.pick({ iss: true, aud: true }).passthrough(), {
      key: verifyMemberCertificate(toda().tls.cert, pki.ca.cert, { usage: 'signing' }).publicKey, issuer: '112241', audience: '343692', typ: Typ.SEALED_IDENTITIES,
    });
    expect(opened.aud).to.equal('343692');
  });
});
