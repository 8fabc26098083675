/**
 * The federation PKI: a CA (offline, used by scripts/ only) issues each member two RSA-2048
 * certificates, one for TLS and message signing, one for encryption only (docs/DESIGN.md §6.1).
 * Keys are made with node:crypto (fast, native); node-forge builds and signs the certificates.
 * Verification is done here once for everyone: chain to the CA, validity, CN == member id, OU ==
 * kind, key usage, and the CA-signed revocation list.
 */
import { generateKeyPair, createHash, createPublicKey, createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { z } from 'zod';
import { AppError } from '../platform/errors.ts';
import { isCalendarDate } from '../platform/dates.ts';
import type { Signer } from './messages.ts';
import { verifyPayload } from '../crypto.ts';
import { directoryEntrySchema, Typ, type DirectoryEntry } from './protocol.ts';
import { normalizeSerial, signRevocationList, verifyRevocationList, DEFAULT_LIST_VALID_SECONDS, type RevocationList } from './revocation.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

export const MEMBER_KINDS = ['municipality', 'gateway', 'issuer'] as const;
export type MemberKind = (typeof MEMBER_KINDS)[number];

export interface MemberSpec {
  id: string;
  kind: MemberKind;
  name: string;
}

export interface PemPair {
  cert: string;
  key: string;
}

export const CA_COMMON_NAME = 'hikitsugi federation CA';
const ORGANIZATION = 'hikitsugi federation';
const DEFAULT_MEMBER_DAYS = 825;
const DEFAULT_CA_DAYS = 3650;
const DAY_MS = 24 * 3600 * 1000;

/* ---------- keys, kids, serials ---------- */

/** A fresh RSA-2048 key pair as PEM (PKCS#8 private, SPKI public). */
export async function generateRsaKeyPair(): Promise<{ publicKey: string; privateKey: string }> {
  return generateKeyPairAsync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

/** Parses a PEM certificate; anything else is a 400 naming the field. */
export function parseCertificate(pem: string, field = 'certificate'): X509Certificate {
  try {
    if (typeof pem !== 'string' || !pem.includes('BEGIN CERTIFICATE')) throw new Error('not PEM');
    return new X509Certificate(pem);
  } catch {
    throw new AppError(400, 'invalid-certificate', 'Certificate malformed', { field, rule: 'must be a PEM X.509 certificate' });
  }
}

/** The kid of a certificate: base64url SHA-256 of its DER, first 22 characters. The one kid function. */
export function certificateKid(cert: string | X509Certificate): string {
  const x509 = typeof cert === 'string' ? parseCertificate(cert) : cert;
  return createHash('sha256').update(x509.raw).digest('base64url').slice(0, 22);
}

/** 16 random bytes, positive and without a leading zero byte, so every encoder writes it alike. */
function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x10;
  return bytes.toString('hex');
}

/* ---------- building certificates (scripts and tests) ---------- */

export interface CertificateAuthority {
  cert: string;
  key: string;
}

export interface ValidityOptions {
  notBefore?: Date;
  notAfter?: Date;
  days?: number;
}

function validity(options: ValidityOptions, defaultDays: number): { notBefore: Date; notAfter: Date } {
  // Backdated a minute so a peer whose clock runs slightly behind still accepts a fresh certificate.
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + (options.days ?? defaultDays) * DAY_MS);
  return { notBefore, notAfter };
}

function forgeCertificate(publicKeyPem: string, subject: forge.pki.CertificateField[], when: { notBefore: Date; notAfter: Date }) {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = newSerial();
  cert.validity.notBefore = when.notBefore;
  cert.validity.notAfter = when.notAfter;
  cert.setSubject(subject);
  return cert;
}

/** Creates the federation CA: a self-signed RSA-2048 certificate allowed to sign certificates only. */
export async function createCertificateAuthority(options: ValidityOptions & { commonName?: string } = {}): Promise<CertificateAuthority> {
  const keys = await generateRsaKeyPair();
  const subject = [{ name: 'commonName', value: options.commonName ?? CA_COMMON_NAME }, { name: 'organizationName', value: ORGANIZATION }];
  const cert = forgeCertificate(keys.publicKey, subject, validity(options, DEFAULT_CA_DAYS));
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.privateKey) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privateKey };
}

/**
 * Issues a member's two certificates. The TLS one (client and server auth, and message signing)
 * names 127.0.0.1, localhost and the member id so loopback TLS verifies; the encryption one can
 * only encipher keys and data, so it can never pass for a signature key.
 */
export async function issueMemberCertificates(ca: CertificateAuthority, member: MemberSpec, options: ValidityOptions = {}): Promise<{ tls: PemPair; enc: PemPair }> {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key) as forge.pki.rsa.PrivateKey;
  const when = validity(options, DEFAULT_MEMBER_DAYS);
  const subject = [
    { name: 'commonName', value: member.id },
    { name: 'organizationalUnitName', value: member.kind },
    { name: 'organizationName', value: ORGANIZATION },
  ];
  const [tlsKeys, encKeys] = await Promise.all([generateRsaKeyPair(), generateRsaKeyPair()]);
  const make = (publicKey: string, extensions: object[]) => {
    const cert = forgeCertificate(publicKey, subject, when);
    cert.setIssuer(caCert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      ...extensions,
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    ]);
    cert.sign(caKey, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  };
  const tls = make(tlsKeys.publicKey, [
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }, { type: 2, value: member.id }] },
  ]);
  const enc = make(encKeys.publicKey, [
    { name: 'keyUsage', keyEncipherment: true, dataEncipherment: true, critical: true },
  ]);
  return { tls: { cert: tls, key: tlsKeys.privateKey }, enc: { cert: enc, key: encKeys.privateKey } };
}

/* ---------- verifying certificates ---------- */

export type CertificateUsage = 'signing' | 'encryption';

export interface VerifiedCertificate {
  id: string;
  kind: MemberKind;
  serial: string;
  kid: string;
  publicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  pem: string;
}

export interface VerifyCertificateOptions {
  usage: CertificateUsage;
  /** The member id the certificate must name (CN). */
  expectedId?: string;
  expectedKind?: MemberKind;
  isRevoked?: (serial: string) => boolean;
  at?: Date;
  /** Field name for the problem, e.g. `directory.293610.signingCertificate`. */
  field?: string;
}

const refuse = (field: string, rule: string) => new AppError(400, 'invalid-certificate', 'Certificate refused', { field, rule });

function subjectField(cert: forge.pki.Certificate, short: string): string | undefined {
  const value = cert.subject.getField(short)?.value;
  return typeof value === 'string' ? value : undefined;
}

/** Checks the CA certificate itself: self-signed, a CA, in its validity period. */
export function verifyCaCertificate(caPem: string, at = new Date()): X509Certificate {
  const ca = parseCertificate(caPem, 'ca');
  if (!ca.ca || !ca.checkIssued(ca) || !ca.verify(ca.publicKey)) throw refuse('ca', 'must be a self-signed CA certificate');
  if (at < new Date(ca.validFrom) || at > new Date(ca.validTo)) throw refuse('ca', 'must be within its validity period');
  return ca;
}

/** What every certificate check starts with: issued and signed by the CA, not a CA, in validity, not revoked. */
function checkIssuedByCa(pem: string, caPem: string, field: string, what: string, options: { at?: Date; isRevoked?: (serial: string) => boolean }) {
  const x509 = parseCertificate(pem, field);
  const ca = parseCertificate(caPem, 'ca');
  if (!x509.checkIssued(ca) || !x509.verify(ca.publicKey)) throw refuse(field, 'must be signed by the federation CA');
  if (x509.ca) throw refuse(field, `must be ${what}, not a CA`);
  const at = options.at ?? new Date();
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  if (at < notBefore || at > notAfter) throw refuse(field, 'must be within its validity period');
  const serial = normalizeSerial(x509.serialNumber);
  if (options.isRevoked?.(serial)) throw refuse(field, 'must not be revoked');
  return { x509, cert: forge.pki.certificateFromPem(pem), serial, notBefore, notAfter };
}

/**
 * Verifies one member certificate against the federation CA: issued and signed by the CA, in its
 * validity period, not revoked, CN == expected id, OU a member kind, and the key usage that fits
 * `usage`. Any failure is a 400 `invalid-certificate` naming the rule.
 */
export function verifyMemberCertificate(pem: string, caPem: string, options: VerifyCertificateOptions): VerifiedCertificate {
  const field = options.field ?? 'certificate';
  const { x509, cert, serial, notBefore, notAfter } = checkIssuedByCa(pem, caPem, field, 'a member certificate', options);
  const id = subjectField(cert, 'CN');
  const kind = subjectField(cert, 'OU');
  if (!id) throw refuse(field, 'must name the member in CN');
  if (options.expectedId !== undefined && id !== options.expectedId) throw refuse(field, `CN must equal the member id ${options.expectedId}`);
  if (!MEMBER_KINDS.includes(kind as MemberKind)) throw refuse(field, 'OU must be a member kind');
  if (options.expectedKind && kind !== options.expectedKind) throw refuse(field, `OU must be ${options.expectedKind}`);
  const usage = cert.getExtension('keyUsage') as { digitalSignature?: boolean; keyEncipherment?: boolean } | undefined;
  if (!usage) throw refuse(field, 'must carry a keyUsage extension');
  if (options.usage === 'signing' && !usage.digitalSignature) throw refuse(field, 'a signing certificate must allow digitalSignature');
  // An encryption certificate that could also sign would blur who vouched for a message.
  if (options.usage === 'encryption' && (!usage.keyEncipherment || usage.digitalSignature)) {
    throw refuse(field, 'an encryption certificate must allow keyEncipherment and not digitalSignature');
  }
  return { id, kind: kind as MemberKind, serial, kid: certificateKid(x509), publicKey: x509.publicKey, notBefore, notAfter, pem };
}

/* ---------- residents' personal signing certificates (docs/DESIGN.md §4.4) ---------- */

/**
 * OU of a resident's personal certificate. It is not a member kind, so `verifyMemberCertificate`
 * refuses it and a resident's key can never pass for a municipality's (and the reverse).
 */
export const RESIDENT_KIND = 'resident';
const OID_SUBJECT_DIRECTORY_ATTRIBUTES = '2.5.29.9';
/** RFC 3739 §3.2.2 personal data attributes, carried in subjectDirectoryAttributes. */
const OID_DATE_OF_BIRTH = '1.3.6.1.5.5.7.9.1';
const OID_GENDER = '1.3.6.1.5.5.7.9.3';
/** RFC 3739 defines M and F; X (unspecified) and U (unknown) follow ICAO 9303 for the other registered values. */
const GENDER_CODES = { male: 'M', female: 'F', other: 'X', unknown: 'U' } as const;
/** A personal signing certificate is valid for five years, like the My Number card's. */
const DEFAULT_RESIDENT_DAYS = 5 * 365;

export type ResidentSex = keyof typeof GENDER_CODES;

/** What a resident's certificate says about its holder: the identity a municipality cross-checks. Never a My Number. */
export interface ResidentIdentity {
  kana: string;
  birthDate: string;
  sex: ResidentSex;
}

export interface VerifiedResidentCertificate extends ResidentIdentity {
  serial: string;
  kid: string;
  publicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
}

function personalDataAttributes(identity: ResidentIdentity): string {
  const { asn1 } = forge;
  const attribute = (oid: string, value: forge.asn1.Asn1) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [value]),
  ]);
  return asn1.toDer(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    // GeneralizedTime at noon GMT, as RFC 3739 recommends for a date of birth.
    attribute(OID_DATE_OF_BIRTH, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, `${identity.birthDate.replace(/-/g, '')}120000Z`)),
    attribute(OID_GENDER, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.PRINTABLESTRING, false, GENDER_CODES[identity.sex])),
  ])).getBytes();
}

function readPersonalData(cert: forge.pki.Certificate): Pick<ResidentIdentity, 'birthDate' | 'sex'> | null {
  const ext = (cert.extensions as { id?: string; value?: unknown }[]).find((e) => e.id === OID_SUBJECT_DIRECTORY_ATTRIBUTES);
  if (typeof ext?.value !== 'string') return null;
  try {
    const attributes = forge.asn1.fromDer(ext.value).value as forge.asn1.Asn1[];
    const found = new Map<string, string>();
    for (const a of attributes) {
      const [oid, set] = a.value as forge.asn1.Asn1[];
      const value = (set!.value as forge.asn1.Asn1[])[0]!.value;
      if (typeof value === 'string') found.set(forge.asn1.derToOid(oid!.value as string), value);
    }
    const dob = found.get(OID_DATE_OF_BIRTH)?.match(/^(\d{4})(\d{2})(\d{2})120000Z$/);
    const sex = (Object.keys(GENDER_CODES) as ResidentSex[]).find((k) => GENDER_CODES[k] === found.get(OID_GENDER));
    return dob && sex ? { birthDate: `${dob[1]}-${dob[2]}-${dob[3]}`, sex } : null;
  } catch {
    return null;
  }
}

/**
 * Issues a resident's personal signing certificate (standing in for the signing certificate of the
 * My Number card): CN = the name in katakana, OU `resident`, the date of birth and sex as RFC 3739
 * subjectDirectoryAttributes, keyUsage digitalSignature + nonRepudiation (the holder commits to what
 * they sign). With `publicKey` the key stays with the resident (as on the card); without it a key
 * pair is made and returned (scripts and tests).
 */
export async function issueResidentCertificate(
  ca: CertificateAuthority, identity: ResidentIdentity, options: ValidityOptions & { publicKey?: string } = {},
): Promise<{ cert: string; key?: string }> {
  if (!isCalendarDate(identity.birthDate)) throw new Error('birthDate must be a calendar date YYYY-MM-DD');
  if (!(identity.sex in GENDER_CODES)) throw new Error(`sex must be one of ${Object.keys(GENDER_CODES).join(', ')}`);
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const keys = options.publicKey ? { publicKey: options.publicKey, privateKey: undefined } : await generateRsaKeyPair();
  const cert = forgeCertificate(keys.publicKey, [
    // UTF8String: the typings call valueTagClass a class, forge reads it as the ASN.1 type.
    { name: 'commonName', value: identity.kana, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class },
    { name: 'organizationalUnitName', value: RESIDENT_KIND },
    { name: 'organizationName', value: ORGANIZATION },
  ], validity(options, DEFAULT_RESIDENT_DAYS));
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, nonRepudiation: true, critical: true },
    { id: OID_SUBJECT_DIRECTORY_ATTRIBUTES, critical: false, value: personalDataAttributes(identity) },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), ...(keys.privateKey ? { key: keys.privateKey } : {}) };
}

/**
 * Verifies a resident's personal certificate against the federation CA: issued and signed by the
 * CA, within validity at `at`, not revoked, OU `resident`, a signing key usage, and the identity
 * attributes present. Any failure is a 400 `invalid-certificate` naming the rule.
 */
export function verifyResidentCertificate(
  pem: string, caPem: string, options: { at?: Date; isRevoked?: (serial: string) => boolean; field?: string } = {},
): VerifiedResidentCertificate {
  const field = options.field ?? 'certificate';
  const { x509, cert, serial, notBefore, notAfter } = checkIssuedByCa(pem, caPem, field, 'a personal certificate', options);
  if (subjectField(cert, 'OU') !== RESIDENT_KIND) throw refuse(field, `OU must be ${RESIDENT_KIND}`);
  const usage = cert.getExtension('keyUsage') as { digitalSignature?: boolean } | undefined;
  if (!usage?.digitalSignature) throw refuse(field, 'a personal certificate must allow digitalSignature');
  const cn = cert.subject.getField('CN') as { value?: unknown; valueTagClass?: number } | null;
  const kana = typeof cn?.value === 'string' ? (cn.valueTagClass === (forge.asn1.Type.UTF8 as number) ? forge.util.decodeUtf8(cn.value) : cn.value) : '';
  const personal = readPersonalData(cert);
  if (!kana || !personal) throw refuse(field, 'must name the resident: kana in CN, date of birth and sex in subjectDirectoryAttributes');
  return { kana, ...personal, serial, kid: certificateKid(x509), publicKey: x509.publicKey, notBefore, notAfter };
}

/* ---------- a member's own credentials ---------- */

export interface MemberCredentials {
  id: string;
  kind: MemberKind;
  /** The federation CA certificate (PEM): the only trust anchor. */
  ca: string;
  tls: PemPair;
  enc: PemPair;
  serial: string;
  /** Signs this member's messages with the TLS/signing key. */
  signer: Signer;
  /** Opens JWEs addressed to this member. */
  decryption: { key: KeyObject; kid: string };
  /** This member's own public encryption key (what peers encrypt to). */
  encryption: { key: KeyObject; kid: string };
}

/** Builds credentials from PEM text, checking that both certificates are the CA's and match their keys. */
export function credentialsFromPem(pem: { ca: string; tlsCert: string; tlsKey: string; encCert: string; encKey: string }): MemberCredentials {
  verifyCaCertificate(pem.ca);
  const signing = verifyMemberCertificate(pem.tlsCert, pem.ca, { usage: 'signing', field: 'tls.pem' });
  const encryption = verifyMemberCertificate(pem.encCert, pem.ca, { usage: 'encryption', expectedId: signing.id, expectedKind: signing.kind, field: 'enc.pem' });
  const signKey = createPrivateKey(pem.tlsKey);
  const decryptKey = createPrivateKey(pem.encKey);
  const samePublic = (priv: KeyObject, pub: KeyObject) =>
    createPublicKey(priv).export({ type: 'spki', format: 'der' }).equals(pub.export({ type: 'spki', format: 'der' }));
  if (!samePublic(signKey, signing.publicKey)) throw new Error('tls.key does not match tls.pem');
  if (!samePublic(decryptKey, encryption.publicKey)) throw new Error('enc.key does not match enc.pem');
  return {
    id: signing.id,
    kind: signing.kind,
    ca: pem.ca,
    tls: { cert: pem.tlsCert, key: pem.tlsKey },
    enc: { cert: pem.encCert, key: pem.encKey },
    serial: signing.serial,
    signer: { id: signing.id, key: signKey, kid: signing.kid },
    decryption: { key: decryptKey, kid: encryption.kid },
    encryption: { key: encryption.publicKey, kid: encryption.kid },
  };
}

/** Loads a member's credentials from its folder (ca.pem, tls.pem, tls.key, enc.pem, enc.key). */
export function loadMemberCredentials(dir: string): MemberCredentials {
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return credentialsFromPem({ ca: read('ca.pem'), tlsCert: read('tls.pem'), tlsKey: read('tls.key'), encCert: read('enc.pem'), encKey: read('enc.key') });
}

/* ---------- the on-disk layout (scripts/pki.ts and tests) ---------- */

export const pkiPaths = (dir: string) => ({
  caCert: join(dir, 'ca', 'ca.pem'),
  caKey: join(dir, 'ca', 'ca.key'),
  revocations: join(dir, 'ca', 'revocations.jws'),
  directory: join(dir, 'directory.json'),
  member: (id: string) => join(dir, id),
});

function writePrivate(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function readCertificateAuthority(dir: string): CertificateAuthority {
  const paths = pkiPaths(dir);
  return { cert: readFileSync(paths.caCert, 'utf8'), key: readFileSync(paths.caKey, 'utf8') };
}

export interface InitResult {
  created: string[];
  kept: string[];
  reissued: string[];
}

const memberIdPattern = /^[A-Za-z0-9-]{1,32}$/;

/**
 * Creates what is missing under `dir`: the CA, each member's certificates, and directory.json
 * (without endpoints), and re-signs the revocation list (an empty one the first time). Existing keys are kept; a member whose
 * certificate was revoked or has expired gets new keys and certificates.
 */
export async function initPki(dir: string, members: MemberSpec[], options: { listValidSeconds?: number } = {}): Promise<InitResult> {
  const paths = pkiPaths(dir);
  mkdirSync(join(dir, 'ca'), { recursive: true, mode: 0o700 });
  if (!existsSync(paths.caCert) || !existsSync(paths.caKey)) {
    const ca = await createCertificateAuthority();
    writeFileSync(paths.caCert, ca.cert);
    writePrivate(paths.caKey, ca.key);
  }
  const ca = readCertificateAuthority(dir);
  verifyCaCertificate(ca.cert);
  // Every init re-signs the list (same serials, next number, fresh nextUpdate), so a federation
  // started from it is never handed a list that is about to go stale.
  const revocations = await publishRevocations(dir, [], { validSeconds: options.listValidSeconds });
  const result: InitResult = { created: [], kept: [], reissued: [] };
  for (const member of members) {
    if (!memberIdPattern.test(member.id)) throw new Error(`member id ${member.id} must be 1-32 letters, digits or '-'`);
    const memberDir = paths.member(member.id);
    let state: 'missing' | 'valid' | 'stale' = 'missing';
    if (existsSync(join(memberDir, 'tls.pem')) && existsSync(join(memberDir, 'enc.pem'))) {
      try {
        for (const [file, usage] of [['tls.pem', 'signing'], ['enc.pem', 'encryption']] as const) {
          verifyMemberCertificate(readFileSync(join(memberDir, file), 'utf8'), ca.cert, {
            usage, expectedId: member.id, expectedKind: member.kind, isRevoked: revocations.isRevoked,
          });
        }
        state = 'valid';
      } catch {
        state = 'stale';
      }
    }
    if (state === 'valid') {
      result.kept.push(member.id);
      continue;
    }
    const issued = await issueMemberCertificates(ca, member);
    mkdirSync(memberDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(memberDir, 'ca.pem'), ca.cert);
    writeFileSync(join(memberDir, 'tls.pem'), issued.tls.cert);
    writePrivate(join(memberDir, 'tls.key'), issued.tls.key);
    writeFileSync(join(memberDir, 'enc.pem'), issued.enc.cert);
    writePrivate(join(memberDir, 'enc.key'), issued.enc.key);
    writeFileSync(join(memberDir, 'member.json'), JSON.stringify({ id: member.id, kind: member.kind, name: member.name }, null, 2));
    (state === 'missing' ? result.created : result.reissued).push(member.id);
  }
  writeDirectoryFile(paths.directory, buildDirectory(dir));
  return result;
}

/** The CA's key and kid, for what the CA signs besides certificates (the revocation list). */
export function caSigner(ca: CertificateAuthority): { key: KeyObject; kid: string } {
  return { key: createPrivateKey(ca.key), kid: certificateKid(ca.cert) };
}

/**
 * Signs the next revocation list: the serials of the current one plus `add`, its number plus one,
 * valid for `validSeconds` (docs/PROTOCOL.md §1). Written to ca/revocations.jws and, when the
 * folder exists, to public/revocations.jws (what deployments mount for the gateway).
 */
export async function publishRevocations(dir: string, add: string[], options: { validSeconds?: number; now?: Date } = {}): Promise<RevocationList> {
  const paths = pkiPaths(dir);
  const ca = readCertificateAuthority(dir);
  const current = existsSync(paths.revocations) ? await currentCaList(readFileSync(paths.revocations, 'utf8'), ca.cert) : undefined;
  const issuedAt = options.now ?? new Date();
  const jws = await signRevocationList(caSigner(ca), {
    number: (current?.number ?? 0) + 1,
    serials: [...(current?.serials ?? []), ...add],
    issuedAt,
    nextUpdate: new Date(issuedAt.getTime() + (options.validSeconds ?? DEFAULT_LIST_VALID_SECONDS) * 1000),
  });
  writeFileSync(paths.revocations, jws);
  if (existsSync(join(dir, 'public'))) writeFileSync(join(dir, 'public', 'revocations.jws'), jws);
  return verifyRevocationList(jws, ca.cert);
}

/**
 * The CA's own current list. A list signed before lists were numbered (`{ iss, iat, serials }`)
 * counts as number 0, so its serials carry over into list 1 instead of being lost.
 */
async function currentCaList(jws: string, caPem: string): Promise<{ number: number; serials: Iterable<string> }> {
  try {
    return await verifyRevocationList(jws, caPem);
  } catch (err) {
    const legacy = z.object({ iss: z.string(), iat: z.number(), serials: z.array(z.string()) }).strict()
      .safeParse(await verifyPayload(jws.trim(), parseCertificate(caPem, 'ca').publicKey, Typ.REVOCATIONS).catch(() => undefined));
    if (!legacy.success) throw err;
    return { number: 0, serials: legacy.data.serials };
  }
}

/** The CA's current list (ca/revocations.jws), verified. */
export async function readCaRevocations(dir: string): Promise<RevocationList> {
  return verifyRevocationList(readFileSync(pkiPaths(dir).revocations, 'utf8'), readCertificateAuthority(dir).cert);
}

/** Revokes both certificates of a member: the next list carries their serials. */
export async function revokeMember(dir: string, id: string, options: { validSeconds?: number } = {}): Promise<string[]> {
  const memberDir = pkiPaths(dir).member(id);
  if (!existsSync(join(memberDir, 'tls.pem'))) throw new Error(`no member ${id} under ${dir}`);
  const serials = ['tls.pem', 'enc.pem'].map((f) => normalizeSerial(parseCertificate(readFileSync(join(memberDir, f), 'utf8')).serialNumber));
  await publishRevocations(dir, serials, options);
  return serials;
}

/** The directory of every member folder under `dir` (certificates only; endpoints are added by whoever runs them). */
export function buildDirectory(dir: string, endpoints: Record<string, string> = {}): DirectoryEntry[] {
  const paths = pkiPaths(dir);
  const kindOrder = (kind: MemberKind) => MEMBER_KINDS.indexOf(kind);
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'member.json')))
    .map((d) => JSON.parse(readFileSync(join(dir, d.name, 'member.json'), 'utf8')) as MemberSpec)
    .sort((a, b) => kindOrder(b.kind) - kindOrder(a.kind) || a.id.localeCompare(b.id))
    .map((meta) => {
      const memberDir = paths.member(meta.id);
      return directoryEntry(meta, readFileSync(join(memberDir, 'tls.pem'), 'utf8'), readFileSync(join(memberDir, 'enc.pem'), 'utf8'), endpoints[meta.id]);
    });
}

export function directoryEntry(member: MemberSpec, signingCertificate: string, encryptionCertificate: string, endpoint?: string): DirectoryEntry {
  return directoryEntrySchema.parse({ id: member.id, kind: member.kind, name: member.name, ...(endpoint ? { endpoint } : {}), signingCertificate, encryptionCertificate });
}

/** Reads a directory file; the shape is checked, the certificates are checked by whoever trusts them. */
export function readDirectoryFile(path: string): DirectoryEntry[] {
  return z.array(directoryEntrySchema).parse(JSON.parse(readFileSync(path, 'utf8')));
}

export function writeDirectoryFile(path: string, entries: DirectoryEntry[]): void {
  writeFileSync(path, JSON.stringify(entries, null, 2) + '\n');
}
