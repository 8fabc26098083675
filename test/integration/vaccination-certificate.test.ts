/**
 * The vaccination certificate (接種証明書) as a SMART Health Card (docs/DESIGN.md §4.11), on a real
 * municipality instance. The card is read back with code this project did not write: the PNG is
 * decoded by pngjs and jsQR, the `shc:/` digits are turned back into the JWS here, the signature is
 * checked by jose against the JWKS the instance publishes, and the payload is inflated by zlib.
 * Then: nothing that identifies the resident beyond name and birth date is in it; corrections and
 * voids show; every refusal is named; every issuance is one access-log entry without personal data.
 */
import { inflateRawSync } from 'node:zlib';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { calculateJwkThumbprint, compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import jsqr from 'jsqr';
import { PNG } from 'pngjs';
import { PROBLEM_BASE } from '../../shared/platform/errors.ts';
import { loadMunicipalityConfig } from '../../services/municipality/config.ts';
import { completeAddresseeNumber } from '../../services/municipality/residents/schemas.ts';
import { api, checkAgainstDocument } from '../fixtures/http.ts';
import { createResidentVia, newKey, postRecord, randomMyNumber, type RecordInput, type ResidentInput } from '../fixtures/factories.ts';
import {
  DEMO_MUNICIPALITIES, healthCardKeyPem, removeDir, startMunicipality, testConfig, type RunningMunicipality,
} from '../fixtures/municipality.ts';

// jsqr is CommonJS: its function is module.exports, with itself as `default` (what TypeScript's NodeNext types name).
const jsQR = jsqr.default;
const CVX = 'http://hl7.org/fhir/sid/cvx';
const SHC_TYPES = ['https://smarthealth.cards#health-card', 'https://smarthealth.cards#immunization'];

interface Raw {
  status: number;
  headers: Headers;
  bytes: Buffer;
}

/** A staff call read as bytes (the card file and the PNG are not JSON answers `api()` parses). */
async function raw(method: 'GET' | 'POST', url: string, token?: string): Promise<Raw> {
  const res = await fetch(url, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

/** Decodes the QR code in a PNG with pngjs and jsQR: its text and the modes of its segments. */
function readQr(png: Buffer): { text: string; modes: string[]; version: number } {
  const image = PNG.sync.read(png);
  const found = jsQR(new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.length), image.width, image.height);
  if (!found) throw new Error('no QR code found in the PNG');
  return { text: found.data, modes: found.chunks.map((c) => c.type), version: found.version };
}

/** `shc:/` + two digits per character (each the character's code minus 45) → the JWS, as the spec describes it. */
function jwsFromShc(text: string): string {
  expect(text).to.match(/^shc:\/(\d\d)+$/);
  return (text.slice('shc:/'.length).match(/\d\d/g) ?? []).map((pair) => String.fromCharCode(Number(pair) + 45)).join('');
}

interface Card {
  header: { alg?: string; zip?: string; kid?: string };
  /** The inflated payload as text, exactly as signed. */
  text: string;
  payload: {
    iss: string;
    nbf: number;
    vc: { type: string[]; credentialSubject: { fhirVersion: string; fhirBundle: { resourceType: string; type: string; entry: { fullUrl: string; resource: any }[] } } };
  };
}

/** Verifies the JWS with jose against a JWKS (ES256 only) and inflates the payload with zlib. */
async function verifyCard(jws: string, jwks: JSONWebKeySet): Promise<Card> {
  const { payload, protectedHeader } = await compactVerify(jws, createLocalJWKSet(jwks), { algorithms: ['ES256'] });
  const text = inflateRawSync(Buffer.from(payload)).toString('utf8');
  return { header: protectedHeader, text, payload: JSON.parse(text) as Card['payload'] };
}

const immunizations = (card: Card) => card.payload.vc.credentialSubject.fhirBundle.entry.slice(1).map((e) => e.resource);

/** Every key anywhere in a JSON value. */
function keysOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) keysOf(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      keysOf(v, out);
    }
  }
  return out;
}

const DOSES: RecordInput[] = [
  { occurrenceDate: '2021-06-01', vaccineCode: 'covid19-comirnaty', lotNumber: 'FF3620', doseNumber: 1, place: '田原本町保健センター' },
  { occurrenceDate: '2021-06-22', vaccineCode: 'covid19-comirnaty', lotNumber: 'FF4204', doseNumber: 2, place: '田原本町保健センター' },
  { occurrenceDate: '2022-02-10', vaccineCode: 'covid19-spikevax', lotNumber: '3004217', doseNumber: 3, place: '田原本町役場 集団接種会場' },
];

describe('vaccination certificate (接種証明書) as a SMART Health Card', function () {
  this.timeout(180_000);
  let m: RunningMunicipality;
  let clerk: string;
  let jwks: JSONWebKeySet;
  const holder = { myNumber: randomMyNumber(), addresseeNumber: '', name: '田原 花子', kana: 'タワラ ハナコ', birthDate: '1985-07-14' };

  /** Creates a resident with the given doses; returns the addressee number and the record ids, in order. */
  async function residentWith(doses: RecordInput[], overrides: Partial<ResidentInput> = {}) {
    const { resident } = await createResidentVia(m, clerk, overrides);
    const recordIds: string[] = [];
    for (const dose of doses) {
      const res = await postRecord(m, clerk, resident.addresseeNumber, dose);
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      recordIds.push(res.body.recordId as string);
    }
    return { addresseeNumber: resident.addresseeNumber, recordIds };
  }

  const certificateUrl = (addresseeNumber: string, form: 'file' | 'qr') =>
    `${m.url}/residents/${addresseeNumber}/vaccination-certificate${form === 'qr' ? '.png' : ''}`;

  /** Issues the QR form and reads it back to a verified card. */
  async function cardFromQr(addresseeNumber: string): Promise<Card & { jws: string; modes: string[]; version: number }> {
    const png = await raw('GET', certificateUrl(addresseeNumber, 'qr'), clerk);
    expect(png.status, png.bytes.toString('utf8').slice(0, 300)).to.equal(200);
    expect(png.headers.get('content-type')).to.equal('image/png');
    const qr = readQr(png.bytes);
    const jws = jwsFromShc(qr.text);
    return { ...(await verifyCard(jws, jwks)), jws, modes: qr.modes, version: qr.version };
  }

  before(async () => {
    m = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto);
    clerk = await m.tokenFor('clerk');
    const made = await residentWith(DOSES, { name: holder.name, kana: holder.kana, birthDate: holder.birthDate, myNumber: holder.myNumber });
    holder.addresseeNumber = made.addresseeNumber;
    // A verifier fetches the keys from the issuer without signing in.
    const res = await api('GET', `${m.url}/.well-known/jwks.json`);
    expect(res.status).to.equal(200);
    jwks = res.body as JSONWebKeySet;
  });

  after(async () => {
    await m?.stop();
    if (m) removeDir(m.dir);
  });

  it('when the JWKS is read without signing in, then it holds one ES256 P-256 public key whose kid is its RFC 7638 thumbprint, and no private member', async () => {
    expect(jwks.keys).to.have.length(1);
    const key = jwks.keys[0]!;
    expect(Object.keys(key).sort()).to.deep.equal(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(key).to.include({ kty: 'EC', crv: 'P-256', use: 'sig', alg: 'ES256' });
    expect(key.kid).to.equal(await calculateJwkThumbprint({ kty: key.kty!, crv: key.crv!, x: key.x!, y: key.y! }, 'sha256'));
    const res = await raw('GET', `${m.url}/.well-known/jwks.json`);
    expect(res.headers.get('access-control-allow-origin'), 'verifiers in a browser read it cross-origin').to.equal('*');
    // The private scalar is in no answer.
    const d = m.ctx.config.SHC_SIGNING_KEY!.export({ format: 'jwk' }).d!;
    expect(res.bytes.toString('utf8')).not.to.include(d);
  });

  it('when a clerk issues the certificate as a QR code, then jsQR reads shc:/ in byte mode and the digits in numeric mode, jose verifies it against the published JWKS, and the Bundle holds the resident\'s doses', async () => {
    const before = Math.floor(Date.now() / 1000);
    const card = await cardFromQr(holder.addresseeNumber);
    expect(card.modes, 'two segments: byte, then numeric').to.deep.equal(['byte', 'numeric']);
    expect(card.jws.length).to.be.at.most(1195);
    expect(card.header).to.deep.equal({ alg: 'ES256', zip: 'DEF', kid: jwks.keys[0]!.kid });
    expect(card.payload.iss, 'the origin that serves the JWKS').to.equal(m.url);
    expect(card.payload.nbf).to.be.within(before - 1, Math.ceil(Date.now() / 1000));
    expect(card.payload.vc.type).to.deep.equal(SHC_TYPES);
    const { fhirVersion, fhirBundle } = card.payload.vc.credentialSubject;
    expect(fhirVersion).to.equal('4.0.1');
    expect(fhirBundle).to.include({ resourceType: 'Bundle', type: 'collection' });
    expect(fhirBundle.entry.map((e) => e.fullUrl)).to.deep.equal(['resource:0', 'resource:1', 'resource:2', 'resource:3']);
    expect(fhirBundle.entry[0]!.resource).to.deep.equal({ resourceType: 'Patient', name: [{ family: '田原', given: ['花子'] }], birthDate: holder.birthDate });
    const doses = immunizations(card);
    expect(doses.map((i) => ({
      cvx: i.vaccineCode.coding[0], date: i.occurrenceDateTime, lot: i.lotNumber, status: i.status, patient: i.patient.reference, place: i.performer[0].actor.display,
    }))).to.deep.equal([
      { cvx: { system: CVX, code: '208' }, date: '2021-06-01', lot: 'FF3620', status: 'completed', patient: 'resource:0', place: '田原本町保健センター' },
      { cvx: { system: CVX, code: '208' }, date: '2021-06-22', lot: 'FF4204', status: 'completed', patient: 'resource:0', place: '田原本町保健センター' },
      { cvx: { system: CVX, code: '207' }, date: '2022-02-10', lot: '3004217', status: 'completed', patient: 'resource:0', place: '田原本町役場 集団接種会場' },
    ]);
    // The Japanese codes follow CVX (HOT9 and YJ of the catalogue).
    expect(doses[0].vaccineCode.coding.map((c: { code: string }) => c.code)).to.deep.equal(['208', '182110901', '631341DA1025']);
  });

  it('when the .smart-health-card file is issued, then it is an attachment of that media type whose one JWS is the same credential, and the answer matches the OpenAPI document', async () => {
    const res = await raw('POST', certificateUrl(holder.addresseeNumber, 'file'), clerk);
    expect(res.status).to.equal(200);
    const type = res.headers.get('content-type') ?? '';
    expect(type.split(';')[0]).to.equal('application/smart-health-card');
    expect(res.headers.get('content-disposition')).to.match(/^attachment; filename="vaccination-certificate-293610-\d{4}-\d{2}-\d{2}\.smart-health-card"$/);
    const file = JSON.parse(res.bytes.toString('utf8')) as { verifiableCredential: string[] };
    expect(Object.keys(file)).to.deep.equal(['verifiableCredential']);
    expect(file.verifiableCredential).to.have.length(1);
    const fromFile = await verifyCard(file.verifiableCredential[0]!, jwks);
    const fromQr = await cardFromQr(holder.addresseeNumber);
    // Signed anew at each issuance (ECDSA signatures differ, nbf may too); the credential is the same.
    expect(fromFile.payload.iss).to.equal(fromQr.payload.iss);
    expect(fromFile.payload.vc).to.deep.equal(fromQr.payload.vc);
    const doc = await (await fetch(`${m.url}/openapi.json`)).json() as object;
    checkAgainstDocument(doc, { method: 'POST', url: certificateUrl(holder.addresseeNumber, 'file'), status: res.status, type, body: file });
  });

  it('when the payload is searched, then it holds no My Number, no addressee number, no 12-digit run, and it is minified as the spec requires', async () => {
    const card = await cardFromQr(holder.addresseeNumber);
    const everything = JSON.stringify(card.header) + card.text;
    expect(everything).not.to.include(holder.myNumber);
    expect(everything).not.to.include(holder.addresseeNumber);
    expect(everything).not.to.include(holder.kana, 'nothing but the name and the birth date of the person');
    expect(everything).not.to.match(/\d{12}/);
    const patient = card.payload.vc.credentialSubject.fhirBundle.entry[0]!.resource;
    expect(Object.keys(patient).sort()).to.deep.equal(['birthDate', 'name', 'resourceType']);
    // Minified: no Resource.id, meta, text, CodeableConcept.text or Coding.display; JSON without whitespace.
    const keys = keysOf(card.payload.vc);
    for (const banned of ['id', 'meta', 'text', 'display', 'identifier', 'address']) {
      if (banned === 'display') {
        // Reference.display (the place) stays; Coding.display goes.
        const codings = immunizations(card).flatMap((i) => i.vaccineCode.coding as Record<string, unknown>[]);
        expect(codings.every((c) => Object.keys(c).sort().join() === 'code,system'), 'codings carry system and code only').to.equal(true);
        expect(immunizations(card).every((i) => Object.keys(i.vaccineCode).join() === 'coding')).to.equal(true);
      } else expect(keys, banned).not.to.include(banned);
    }
    expect(card.text).to.equal(JSON.stringify(JSON.parse(card.text)));
  });

  it('when a dose is corrected (new lot) and another voided through the staff API, then the next certificate carries the corrected lot and leaves the voided dose out', async () => {
    const { addresseeNumber, recordIds } = await residentWith(DOSES);
    const corrected = await api('POST', `${m.url}/residents/${addresseeNumber}/vaccinations/${recordIds[1]}/corrections`, {
      token: clerk, headers: { 'idempotency-key': newKey() }, body: { lotNumber: 'FF5357', reason: 'ロット番号の転記誤りを接種券の控えで訂正' },
    });
    expect(corrected.status, JSON.stringify(corrected.body)).to.equal(201);
    const voided = await api('POST', `${m.url}/residents/${addresseeNumber}/vaccinations/${recordIds[2]}/void`, {
      token: clerk, headers: { 'idempotency-key': newKey() }, body: { reason: '別人の接種記録を誤って登録したため取消' },
    });
    expect(voided.status, JSON.stringify(voided.body)).to.equal(201);
    const card = await cardFromQr(addresseeNumber);
    expect(immunizations(card).map((i) => [i.occurrenceDateTime, i.lotNumber])).to.deep.equal([['2021-06-01', 'FF3620'], ['2021-06-22', 'FF5357']]);
    expect(card.text).not.to.include('FF4204');
    expect(card.text).not.to.include('3004217');
    expect(card.text).not.to.include('2022-02-10');
  });

  it('when a card is too long for one QR code, then the PNG is refused with a 4xx problem (nothing logged as issued) and the file is still issued', async () => {
    // One influenza dose per season for thirty seasons: a card well over 1195 JWS characters.
    const seasons = Array.from({ length: 30 }, (_, i) => 1995 + i);
    const { addresseeNumber } = await residentWith(seasons.map((year, i) => ({
      occurrenceDate: `${year}-11-${String(1 + (i % 28)).padStart(2, '0')}`, vaccineCode: 'influenza-elderly', lotNumber: `HK${1000 + i * 37}`, doseNumber: 1,
      place: `田原本町 ${i + 1}番目の協力医療機関`,
    })), { birthDate: '1940-04-01' });
    const issuedBefore = await m.ctx.models.AccessLog.count({ where: { action: 'certificate.issue', subject: addresseeNumber } });
    const refused = await api('GET', certificateUrl(addresseeNumber, 'qr'), { token: clerk });
    expect(refused.status).to.equal(422);
    expect(refused.body).to.include({ type: `${PROBLEM_BASE}certificate-too-large-for-qr`, field: 'verifiableCredential' });
    expect(refused.body.rule).to.match(/1195/);
    expect(await m.ctx.models.AccessLog.count({ where: { action: 'certificate.issue', subject: addresseeNumber } })).to.equal(issuedBefore);
    const file = await raw('POST', certificateUrl(addresseeNumber, 'file'), clerk);
    expect(file.status).to.equal(200);
    const jws = (JSON.parse(file.bytes.toString('utf8')) as { verifiableCredential: string[] }).verifiableCredential[0]!;
    expect(jws.length).to.be.greaterThan(1195);
    expect(immunizations(await verifyCard(jws, jwks))).to.have.length(30);
  });

  describe('refusals, each named by status and problem type', () => {
    it('when no token is sent, then 401 on both forms; the JWKS needs none', async () => {
      for (const [method, url] of [['POST', certificateUrl(holder.addresseeNumber, 'file')], ['GET', certificateUrl(holder.addresseeNumber, 'qr')]] as const) {
        const res = await api(method, url);
        expect(res.status, url).to.equal(401);
        expect(res.body.type).to.equal(`${PROBLEM_BASE}unauthorized`);
      }
    });

    it('when the QR form is asked for with HEAD, then 405 method-not-allowed and no issuance is logged', async () => {
      const before = await m.ctx.models.AccessLog.count({ where: { action: 'certificate.issue' } });
      const res = await fetch(certificateUrl(holder.addresseeNumber, 'qr'), { method: 'HEAD', headers: { authorization: `Bearer ${clerk}` } });
      expect(res.status).to.equal(405);
      expect(res.headers.get('content-type')).to.match(/application\/problem\+json/);
      expect(await m.ctx.models.AccessLog.count({ where: { action: 'certificate.issue' } })).to.equal(before);
    });

    it('when an operator or a privacy officer asks, then 403: records are a clerk\'s to certify', async () => {
      for (const role of ['operator', 'privacy_officer', 'admin'] as const) {
        const token = await m.tokenFor(role);
        for (const [method, url] of [['POST', certificateUrl(holder.addresseeNumber, 'file')], ['GET', certificateUrl(holder.addresseeNumber, 'qr')]] as const) {
          const res = await api(method, url, { token });
          expect(res.status, `${role} ${method}`).to.equal(403);
          expect(res.body.type).to.equal(`${PROBLEM_BASE}forbidden`);
        }
      }
    });

    it('when the resident is unknown, then 404; when the addressee number is malformed, then 400 naming it; without a dose, then 422', async () => {
      const unknown = completeAddresseeNumber('987654321');
      for (const [method, form] of [['POST', 'file'], ['GET', 'qr']] as const) {
        const missing = await api(method, certificateUrl(unknown, form), { token: clerk });
        expect(missing.status).to.equal(404);
        expect(missing.body.type).to.equal(`${PROBLEM_BASE}not-found`);
        const malformed = await api(method, certificateUrl('12345', form), { token: clerk });
        expect(malformed.status).to.equal(400);
        expect(malformed.body).to.include({ type: `${PROBLEM_BASE}validation`, field: 'addresseeNumber' });
      }
      const { addresseeNumber } = await residentWith([]);
      const empty = await api('POST', certificateUrl(addresseeNumber, 'file'), { token: clerk });
      expect(empty.status).to.equal(422);
      expect(empty.body).to.include({ type: `${PROBLEM_BASE}no-doses-to-certify`, field: 'addresseeNumber' });
    });

    it('when no signing key is configured, then both forms and the JWKS answer 503 naming SHC_SIGNING_KEY, and the rest of the member keeps working', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'hikitsugi-nokey-'));
      const { code, name } = DEMO_MUNICIPALITIES.toda;
      const bare = await startMunicipality(DEMO_MUNICIPALITIES.toda, { dir, config: testConfig(code, name, dir, { SHC_SIGNING_KEY: undefined }) });
      try {
        expect(bare.ctx.config.SHC_SIGNING_KEY).to.equal(undefined);
        const token = await bare.tokenFor('clerk');
        const { resident } = await createResidentVia(bare, token, { address: '埼玉県戸田市上戸田1-1' });
        expect((await postRecord(bare, token, resident.addresseeNumber, DOSES[0])).status).to.equal(201);
        const calls = [
          await api('POST', `${bare.url}/residents/${resident.addresseeNumber}/vaccination-certificate`, { token }),
          await api('GET', `${bare.url}/residents/${resident.addresseeNumber}/vaccination-certificate.png`, { token }),
          await api('GET', `${bare.url}/.well-known/jwks.json`),
        ];
        for (const res of calls) {
          expect(res.status).to.equal(503);
          expect(res.body).to.include({ type: `${PROBLEM_BASE}certificate-signing-not-configured`, setting: 'SHC_SIGNING_KEY' });
          expect(res.body.detail).to.include('SHC_SIGNING_KEY');
        }
        expect(await bare.ctx.models.AccessLog.count({ where: { action: 'certificate.issue' } })).to.equal(0);
        expect((await api('GET', `${bare.url}/residents/${resident.addresseeNumber}`, { token })).status).to.equal(200);
        expect((await api('GET', `${bare.url}/residents/${resident.addresseeNumber}/vaccinations`, { token })).status).to.equal(200);
        expect((await api('GET', `${bare.url}/health`)).status).to.equal(200);
      } finally {
        await bare.stop();
        removeDir(dir);
      }
    });

    it('when the key setting is not an EC P-256 private key, then the config loader refuses to start, naming the setting and never echoing the value', () => {
      const base = {
        MUNICIPALITY_CODE: '293610', MUNICIPALITY_NAME: 'Tawaramoto', PORT: '0', DATABASE_PATH: 'x.sqlite', DATA_KEY: '0'.repeat(64), SESSION_SECRET: '1'.repeat(64),
      };
      const publicOnly = JSON.stringify({ ...jwks.keys[0] });
      for (const value of ['not-a-key-SECRETVALUE', publicOnly, healthCardKeyPem().replace('PRIVATE KEY', 'PUBLIC KEY')]) {
        let message = '';
        try {
          loadMunicipalityConfig({ ...base, SHC_SIGNING_KEY: value });
        } catch (e) {
          message = (e as Error).message;
        }
        expect(message).to.match(/SHC_SIGNING_KEY: SHC_SIGNING_KEY must be an EC P-256 private key/);
        expect(message).not.to.include(value.slice(0, 30));
      }
      // PEM with escaped line breaks (one-line environment values) and a private JWK are both taken.
      const pem = healthCardKeyPem();
      expect(loadMunicipalityConfig({ ...base, SHC_SIGNING_KEY: pem.replace(/\n/g, '\\n') }).SHC_SIGNING_KEY?.asymmetricKeyType).to.equal('ec');
      const jwk = JSON.stringify(m.ctx.config.SHC_SIGNING_KEY!.export({ format: 'jwk' }));
      expect(loadMunicipalityConfig({ ...base, SHC_SIGNING_KEY: jwk }).SHC_SIGNING_KEY?.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
      // The parsed config serializes without the key: a config logged by mistake carries nothing of it.
      const d = m.ctx.config.SHC_SIGNING_KEY!.export({ format: 'jwk' }).d!;
      expect(JSON.stringify(m.ctx.config)).not.to.include(d);
      expect(() => loadMunicipalityConfig({ ...base, SHC_ISSUER_URL: 'https://vaccination.example.jp/293610/' })).to.throw(/SHC_ISSUER_URL: must not end with a slash/);
    });
  });

  it('when SHC_ISSUER_URL is set, then the card names it as iss instead of the request\'s origin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hikitsugi-iss-'));
    const { code, name } = DEMO_MUNICIPALITIES.akiota;
    const issuer = 'https://vaccination.example.jp/343692';
    const other = await startMunicipality(DEMO_MUNICIPALITIES.akiota, { dir, config: testConfig(code, name, dir, { SHC_ISSUER_URL: issuer }) });
    try {
      const token = await other.tokenFor('clerk');
      const { resident } = await createResidentVia(other, token, { address: '広島県山県郡安芸太田町大字戸河内 1番地' });
      expect((await postRecord(other, token, resident.addresseeNumber, { ...DOSES[0]!, place: '安芸太田町保健センター' })).status).to.equal(201);
      const file = await raw('POST', `${other.url}/residents/${resident.addresseeNumber}/vaccination-certificate`, token);
      const ownKeys = (await api('GET', `${other.url}/.well-known/jwks.json`)).body as JSONWebKeySet;
      const card = await verifyCard((JSON.parse(file.bytes.toString('utf8')) as { verifiableCredential: string[] }).verifiableCredential[0]!, ownKeys);
      expect(card.payload.iss).to.equal(issuer);
      // Each municipality signs under its own key: Tawaramoto's JWKS does not verify Akiota's card.
      expect(ownKeys.keys[0]!.kid).not.to.equal(jwks.keys[0]!.kid);
    } finally {
      await other.stop();
      removeDir(dir);
    }
  });

  it('when certificates are issued, then each issuance is one access-log entry (certificate.issue, the addressee number, the number of doses) with no name, kana, birth date or My Number', async () => {
    const myNumber = randomMyNumber();
    const { addresseeNumber, recordIds } = await residentWith(DOSES.slice(0, 2), { name: '記録 確認', kana: 'キロク カクニン', birthDate: '1979-03-03', myNumber });
    const entries = () => m.ctx.models.AccessLog.findAll({ where: { action: 'certificate.issue', subject: addresseeNumber }, order: [['seq', 'ASC']], raw: true });
    expect(await entries()).to.have.length(0);
    expect((await raw('POST', certificateUrl(addresseeNumber, 'file'), clerk)).status).to.equal(200);
    expect((await raw('GET', certificateUrl(addresseeNumber, 'qr'), clerk)).status).to.equal(200);
    // Refusals issue nothing and log no issuance.
    expect((await api('GET', certificateUrl(addresseeNumber, 'qr'), { token: await m.tokenFor('operator') })).status).to.equal(403);
    expect((await api('GET', certificateUrl(addresseeNumber, 'qr'))).status).to.equal(401);
    const logged = await entries();
    expect(logged).to.have.length(2);
    for (const [i, entry] of logged.entries()) {
      expect(entry).to.include({ actorType: 'staff', actorRole: 'clerk', outcome: 'allowed', actingMunicipality: m.code });
      const details = JSON.parse(entry.details) as Record<string, unknown>;
      expect(details).to.include({ doses: 2, form: i === 0 ? 'file' : 'qr', kid: jwks.keys[0]!.kid });
      expect(JSON.parse(entry.recordIds)).to.deep.equal(recordIds);
      const text = JSON.stringify(entry);
      for (const personal of ['記録', 'キロク', '1979-03-03', '19790303', myNumber]) expect(text, personal).not.to.include(personal);
      // What the entry says beyond its hashes and ids: no 12-digit run at all.
      expect(JSON.stringify([entry.subject, entry.details, entry.reason, entry.purpose])).not.to.match(/\d{12}/);
    }
  });
});
