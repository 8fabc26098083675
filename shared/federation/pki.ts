/**
 * The federation PKI: a CA (offline, used by scripts/ only) issues each member two EC P-256
 * certificates, one for TLS and message signing, one for key agreement only (docs/DESIGN.md §6.1).
 * Keys are made with node:crypto; @peculiar/x509 builds the certificates and signs them (ECDSA
 * with SHA-256) through Node's WebCrypto. Verification is done here once for everyone, with
 * Node's X509Certificate for the chain and validity and @peculiar/x509 to read names and
 * extensions: chain to the CA, validity, an EC P-256 key, CN == member id, OU == kind, key usage,
 * and the CA-signed revocation list.
 */
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { generateKeyPair, createHash, createPublicKey, createPrivateKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { AppError } from '../platform/errors.ts';
import { isCalendarDate } from '../platform/dates.ts';
import type { Signer } from './messages.ts';
import { peekJwt, verifyPayload } from '../crypto.ts';
import { directoryEntrySchema, Typ, type DirectoryEntry } from './protocol.ts';
import { normalizeSerial, signRevocationList, verifyRevocationList, DEFAULT_LIST_VALID_SECONDS, type RevocationList } from './revocation.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

// The library's default provider is the global `crypto`; naming Node's WebCrypto (OpenSSL) makes
// the choice explicit. It is process-wide configuration, the same for every caller.
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

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

/** The one curve of the federation's keys (docs/PROTOCOL.md §1); OpenSSL's name for P-256. */
const CURVE = 'prime256v1';
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
/** How every certificate is signed: ECDSA with SHA-256 (RFC 5758 §3.2, ecdsa-with-SHA256). */
const CERTIFICATE_SIGNATURE = { name: 'ECDSA', hash: 'SHA-256' } as const;

/**
 * The rule a certificate's key must meet, in every refusal that names it. RSA keys are refused
 * outright, not accepted alongside (SECURITY.md, "Keys and algorithms"): the CA re-issues.
 */
export const KEY_RULE = 'must hold an EC P-256 key (docs/PROTOCOL.md §1); RSA certificates are refused: re-issue with npm run pki -- init (--replace-rsa-ca for an RSA CA)';

/** True when `key` is an EC key on P-256, the only key the federation accepts. */
export const isP256Key = (key: KeyObject): boolean => key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === CURVE;

/** A fresh EC P-256 key pair as PEM (PKCS#8 private, SPKI public). */
export async function generateEcKeyPair(): Promise<{ publicKey: string; privateKey: string }> {
  return generateKeyPairAsync('ec', {
    namedCurve: 'P-256',
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
  const x509Cert = typeof cert === 'string' ? parseCertificate(cert) : cert;
  return createHash('sha256').update(x509Cert.raw).digest('base64url').slice(0, 22);
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

/** Copies bytes into a plain ArrayBuffer-backed array, the BufferSource WebCrypto and the library take. */
const bytesOf = (data: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(data);
const spkiDer = (publicKeyPem: string): Uint8Array<ArrayBuffer> => bytesOf(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' }));

/** The CA's private key as WebCrypto wants it for signing certificates (not extractable). */
function caSigningKey(ca: CertificateAuthority): Promise<CryptoKey> {
  const der = createPrivateKey(ca.key).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, ECDSA_P256, false, ['sign']) as Promise<CryptoKey>;
}

/** Reads the CA certificate for issuing: its subject (copied byte for byte as the issuer) and key identifier. */
function caForIssuing(ca: CertificateAuthority): { subject: x509.Name; keyId: string } {
  const caCert = new x509.X509Certificate(ca.cert);
  const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!ski) throw new Error('the CA certificate carries no subjectKeyIdentifier');
  return { subject: caCert.subjectName, keyId: ski.keyId };
}

/** Issues one certificate under the CA: a fresh serial, the CA's name as issuer, its key identifier, signed ECDSA/SHA-256. */
async function issue(ca: CertificateAuthority, params: {
  subject: x509.JsonNameParams; publicKey: string; when: { notBefore: Date; notAfter: Date }; extensions: x509.Extension[];
}): Promise<string> {
  const { subject, keyId } = caForIssuing(ca);
  const publicKey = spkiDer(params.publicKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: new x509.Name(params.subject),
    issuer: subject,
    notBefore: params.when.notBefore,
    notAfter: params.when.notAfter,
    publicKey,
    signingKey: await caSigningKey(ca),
    signingAlgorithm: CERTIFICATE_SIGNATURE,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      ...params.extensions,
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      new x509.AuthorityKeyIdentifierExtension(keyId),
    ],
  });
  return cert.toString('pem');
}

/** Creates the federation CA: a self-signed EC P-256 certificate allowed to sign certificates only. */
export async function createCertificateAuthority(options: ValidityOptions & { commonName?: string } = {}): Promise<CertificateAuthority> {
  const keys = await generateEcKeyPair();
  const when = validity(options, DEFAULT_CA_DAYS);
  const [privateKey, publicKey] = await Promise.all([
    webcrypto.subtle.importKey('pkcs8', createPrivateKey(keys.privateKey).export({ type: 'pkcs8', format: 'der' }), ECDSA_P256, false, ['sign']),
    webcrypto.subtle.importKey('spki', spkiDer(keys.publicKey), ECDSA_P256, true, ['verify']),
  ]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name: new x509.Name([{ CN: [options.commonName ?? CA_COMMON_NAME] }, { O: [ORGANIZATION] }]),
    notBefore: when.notBefore,
    notAfter: when.notAfter,
    keys: { privateKey, publicKey } as CryptoKeyPair,
    signingAlgorithm: CERTIFICATE_SIGNATURE,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(spkiDer(keys.publicKey)),
    ],
  });
  return { cert: cert.toString('pem'), key: keys.privateKey };
}

const memberSubject = (member: MemberSpec): x509.JsonNameParams => [{ CN: [member.id] }, { OU: [member.kind] }, { O: [ORGANIZATION] }];

/**
 * Issues a member's two certificates. The TLS one (client and server auth, and message signing:
 * ES256) names 127.0.0.1, localhost and the member id so loopback TLS verifies; the encryption one
 * allows keyAgreement only (ECDH-ES, RFC 5480 §3), so it can never pass for a signature key.
 */
export async function issueMemberCertificates(ca: CertificateAuthority, member: MemberSpec, options: ValidityOptions = {}): Promise<{ tls: PemPair; enc: PemPair }> {
  const when = validity(options, DEFAULT_MEMBER_DAYS);
  const [tlsKeys, encKeys] = await Promise.all([generateEcKeyPair(), generateEcKeyPair()]);
  const [tls, enc] = await Promise.all([
    issue(ca, {
      subject: memberSubject(member), publicKey: tlsKeys.publicKey, when, extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }, { type: 'dns', value: 'localhost' }, { type: 'dns', value: member.id }]),
      ],
    }),
    issue(ca, {
      subject: memberSubject(member), publicKey: encKeys.publicKey, when, extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyAgreement, true),
      ],
    }),
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

/** What the verifiers read from a certificate's bytes; none of it depends on time, the CA or revocation. */
interface CertificateContent {
  node: X509Certificate;
  /** The one value of CN and of OU, or undefined when missing or repeated. */
  cn?: string;
  ou?: string;
  /** The keyUsage bits, or undefined without the extension. */
  keyUsage?: x509.KeyUsageFlags;
  /** A resident's date of birth and sex (RFC 3739), or null. */
  personal: Pick<ResidentIdentity, 'birthDate' | 'sex'> | null;
}

/*
 * Certificates are read once per PEM text and the reading kept: a certificate's bytes never
 * change, and a directory of 1,741 members is verified again whenever a new revocation list
 * arrives, where parsing (Node's and @peculiar/x509's) would be most of the work. Only what the
 * bytes say is kept — every check against the CA, the clock and the revocation list runs on each
 * call. Shared by every member in the process, since equal text reads alike; bounded, emptied when full.
 */
const READ_LIMIT = 8192;
const readings = new Map<string, CertificateContent>();

/** Parses a certificate and reads its names and extensions (through the cache above); a malformed one is a 400 naming `field`. */
function readCertificate(pem: string, field: string): CertificateContent {
  const kept = typeof pem === 'string' ? readings.get(pem) : undefined;
  if (kept) return kept;
  const node = parseCertificate(pem, field);
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(node.raw);
  } catch {
    throw new AppError(400, 'invalid-certificate', 'Certificate malformed', { field, rule: 'must be a PEM X.509 certificate' });
  }
  const one = (short: string) => {
    const values = cert.subjectName.getField(short);
    return values.length === 1 ? values[0] : undefined;
  };
  const content: CertificateContent = {
    node, cn: one('CN'), ou: one('OU'), keyUsage: cert.getExtension(x509.KeyUsagesExtension)?.usages, personal: readPersonalData(cert),
  };
  if (readings.size >= READ_LIMIT) readings.clear();
  readings.set(pem, content);
  return content;
}

const allows = (usages: x509.KeyUsageFlags | undefined, flag: x509.KeyUsageFlags): boolean => usages !== undefined && (usages & flag) !== 0;

/** Checks the CA certificate itself: an EC P-256 key, self-signed, a CA, in its validity period. */
export function verifyCaCertificate(caPem: string, at = new Date()): X509Certificate {
  const ca = readCertificate(caPem, 'ca').node;
  if (!isP256Key(ca.publicKey)) throw refuse('ca', KEY_RULE);
  if (!ca.ca || !ca.checkIssued(ca) || !ca.verify(ca.publicKey)) throw refuse('ca', 'must be a self-signed CA certificate');
  if (at < new Date(ca.validFrom) || at > new Date(ca.validTo)) throw refuse('ca', 'must be within its validity period');
  return ca;
}

/**
 * What every certificate check starts with, the one place a certificate's key is judged: an EC
 * P-256 key (an RSA one is refused by name, before anything else), issued and signed by the CA,
 * not a CA, in validity, not revoked.
 */
function checkIssuedByCa(pem: string, caPem: string, field: string, what: string, options: { at?: Date; isRevoked?: (serial: string) => boolean }) {
  const content = readCertificate(pem, field);
  const { node } = content;
  if (!isP256Key(node.publicKey)) throw refuse(field, KEY_RULE);
  const ca = readCertificate(caPem, 'ca').node;
  if (!node.checkIssued(ca) || !node.verify(ca.publicKey)) throw refuse(field, 'must be signed by the federation CA');
  if (node.ca) throw refuse(field, `must be ${what}, not a CA`);
  const at = options.at ?? new Date();
  const notBefore = new Date(node.validFrom);
  const notAfter = new Date(node.validTo);
  if (at < notBefore || at > notAfter) throw refuse(field, 'must be within its validity period');
  const serial = normalizeSerial(node.serialNumber);
  if (options.isRevoked?.(serial)) throw refuse(field, 'must not be revoked');
  return { node, content, serial, notBefore, notAfter };
}

/**
 * Verifies one member certificate against the federation CA: an EC P-256 key, issued and signed
 * by the CA, in its validity period, not revoked, CN == expected id, OU a member kind, and the key
 * usage that fits `usage` (signing: digitalSignature; encryption: keyAgreement and never
 * digitalSignature). Any failure is a 400 `invalid-certificate` naming the rule.
 */
export function verifyMemberCertificate(pem: string, caPem: string, options: VerifyCertificateOptions): VerifiedCertificate {
  const field = options.field ?? 'certificate';
  const { node, content, serial, notBefore, notAfter } = checkIssuedByCa(pem, caPem, field, 'a member certificate', options);
  const { cn: id, ou: kind } = content;
  if (!id) throw refuse(field, 'must name the member in CN');
  if (options.expectedId !== undefined && id !== options.expectedId) throw refuse(field, `CN must equal the member id ${options.expectedId}`);
  if (!MEMBER_KINDS.includes(kind as MemberKind)) throw refuse(field, 'OU must be a member kind');
  if (options.expectedKind && kind !== options.expectedKind) throw refuse(field, `OU must be ${options.expectedKind}`);
  const usage = content.keyUsage;
  if (usage === undefined) throw refuse(field, 'must carry a keyUsage extension');
  if (options.usage === 'signing' && !allows(usage, x509.KeyUsageFlags.digitalSignature)) throw refuse(field, 'a signing certificate must allow digitalSignature');
  // An encryption certificate that could also sign would blur who vouched for a message.
  if (options.usage === 'encryption' && (!allows(usage, x509.KeyUsageFlags.keyAgreement) || allows(usage, x509.KeyUsageFlags.digitalSignature))) {
    throw refuse(field, 'an encryption certificate must allow keyAgreement and not digitalSignature');
  }
  return { id, kind: kind as MemberKind, serial, kid: certificateKid(node), publicKey: node.publicKey, notBefore, notAfter, pem };
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

/*
 * The few DER shapes the personal data needs that @peculiar/x509 has no class for (X.690 §8.1:
 * tag, definite length, content). Attribute itself (type and SET OF values) is the library's.
 */
const DER = { SEQUENCE: 0x30, GENERALIZED_TIME: 0x18, PRINTABLE_STRING: 0x13 } as const;

function der(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), content]);
}

/** Splits DER bytes into their top-level elements; throws on a malformed or indefinite length. */
function derElements(bytes: Buffer): { tag: number; content: Buffer; raw: Buffer }[] {
  const found: { tag: number; content: Buffer; raw: Buffer }[] = [];
  let at = 0;
  while (at < bytes.length) {
    const tag = bytes[at]!;
    let length = bytes[at + 1];
    let header = 2;
    if (length === undefined) throw new Error('truncated DER');
    if (length === 0x81 || length === 0x82) {
      const size = length - 0x80;
      if (at + 2 + size > bytes.length) throw new Error('truncated DER');
      length = size === 1 ? bytes[at + 2]! : (bytes[at + 2]! << 8) | bytes[at + 3]!;
      header += size;
    } else if (length >= 0x80) {
      throw new Error('unsupported DER length');
    }
    const end = at + header + length;
    if (end > bytes.length) throw new Error('truncated DER');
    found.push({ tag, content: bytes.subarray(at + header, end), raw: bytes.subarray(at, end) });
    at = end;
  }
  return found;
}

/** SubjectDirectoryAttributes (RFC 5280 §4.2.1.8) with the date of birth and sex of RFC 3739 §3.2.2. */
function personalDataAttributes(identity: ResidentIdentity): Buffer {
  const ascii = (text: string) => Buffer.from(text, 'ascii');
  return der(DER.SEQUENCE, Buffer.concat([
    // GeneralizedTime at noon GMT, as RFC 3739 recommends for a date of birth.
    Buffer.from(new x509.Attribute(OID_DATE_OF_BIRTH, [bytesOf(der(DER.GENERALIZED_TIME, ascii(`${identity.birthDate.replace(/-/g, '')}120000Z`)))]).rawData),
    Buffer.from(new x509.Attribute(OID_GENDER, [bytesOf(der(DER.PRINTABLE_STRING, ascii(GENDER_CODES[identity.sex])))]).rawData),
  ]));
}

function readPersonalData(cert: x509.X509Certificate): Pick<ResidentIdentity, 'birthDate' | 'sex'> | null {
  const ext = cert.extensions.find((e) => e.type === OID_SUBJECT_DIRECTORY_ATTRIBUTES);
  if (!ext) return null;
  try {
    const [outer] = derElements(Buffer.from(ext.value));
    if (outer?.tag !== DER.SEQUENCE) return null;
    const found = new Map<string, string>();
    for (const element of derElements(outer.content)) {
      const attribute = new x509.Attribute(bytesOf(element.raw));
      const [value] = derElements(Buffer.from(attribute.values[0] ?? new ArrayBuffer(0)));
      if (value && (value.tag === DER.GENERALIZED_TIME || value.tag === DER.PRINTABLE_STRING)) found.set(attribute.type, value.content.toString('ascii'));
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
 * My Number card): CN = the name in katakana (UTF8String), OU `resident`, the date of birth and sex
 * as RFC 3739 subjectDirectoryAttributes, keyUsage digitalSignature + nonRepudiation (the holder
 * commits to what they sign), an EC P-256 key (ES256 signatures). With `publicKey` the key stays
 * with the resident (as on the card); without it a key pair is made and returned (scripts and tests).
 */
export async function issueResidentCertificate(
  ca: CertificateAuthority, identity: ResidentIdentity, options: ValidityOptions & { publicKey?: string } = {},
): Promise<{ cert: string; key?: string }> {
  if (!isCalendarDate(identity.birthDate)) throw new Error('birthDate must be a calendar date YYYY-MM-DD');
  if (!(identity.sex in GENDER_CODES)) throw new Error(`sex must be one of ${Object.keys(GENDER_CODES).join(', ')}`);
  if (options.publicKey !== undefined && !isP256Key(createPublicKey(options.publicKey))) throw new Error(`publicKey ${KEY_RULE}`);
  const keys = options.publicKey ? { publicKey: options.publicKey, privateKey: undefined } : await generateEcKeyPair();
  const cert = await issue(ca, {
    subject: [{ CN: [{ utf8String: identity.kana }] }, { OU: [RESIDENT_KIND] }, { O: [ORGANIZATION] }],
    publicKey: keys.publicKey,
    when: validity(options, DEFAULT_RESIDENT_DAYS),
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true),
      new x509.Extension(OID_SUBJECT_DIRECTORY_ATTRIBUTES, false, bytesOf(personalDataAttributes(identity))),
    ],
  });
  return { cert, ...(keys.privateKey ? { key: keys.privateKey } : {}) };
}

/**
 * Verifies a resident's personal certificate against the federation CA: an EC P-256 key, issued
 * and signed by the CA, within validity at `at`, not revoked, OU `resident`, a signing key usage,
 * and the identity attributes present. Any failure is a 400 `invalid-certificate` naming the rule.
 */
export function verifyResidentCertificate(
  pem: string, caPem: string, options: { at?: Date; isRevoked?: (serial: string) => boolean; field?: string } = {},
): VerifiedResidentCertificate {
  const field = options.field ?? 'certificate';
  const { node, content, serial, notBefore, notAfter } = checkIssuedByCa(pem, caPem, field, 'a personal certificate', options);
  if (content.ou !== RESIDENT_KIND) throw refuse(field, `OU must be ${RESIDENT_KIND}`);
  if (!allows(content.keyUsage, x509.KeyUsageFlags.digitalSignature)) throw refuse(field, 'a personal certificate must allow digitalSignature');
  const kana = content.cn ?? '';
  const { personal } = content;
  if (!kana || !personal) throw refuse(field, 'must name the resident: kana in CN, date of birth and sex in subjectDirectoryAttributes');
  return { kana, ...personal, serial, kid: certificateKid(node), publicKey: node.publicKey, notBefore, notAfter };
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

/**
 * Loads a member's credentials from its folder (ca.pem, tls.pem, tls.key, enc.pem, enc.key). A
 * refused certificate stops the member at start with the folder, the file and the rule (an RSA
 * folder of an earlier version says what to run).
 */
export function loadMemberCredentials(dir: string): MemberCredentials {
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  try {
    return credentialsFromPem({ ca: read('ca.pem'), tlsCert: read('tls.pem'), tlsKey: read('tls.key'), encCert: read('enc.pem'), encKey: read('enc.key') });
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    const file = err.extra.field === 'ca' ? 'ca.pem' : String(err.extra.field ?? 'certificate');
    throw new Error(`${join(dir, file)} ${String(err.extra.rule ?? err.message)}`, { cause: err });
  }
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
  /** Where a CA whose key was not EC P-256 was moved, when `replaceRsaCa` replaced it. */
  retiredCa?: string;
}

export interface InitOptions {
  listValidSeconds?: number;
  /**
   * Replace a CA whose key is not EC P-256 (one made before the federation moved to P-256): the
   * old ca/ folder is moved aside, a new CA is made, every member is re-issued, and the new CA's
   * first revocation list continues the old list's numbering, so members that kept the old lists
   * take it as newer. Without it such a CA is an error that says what to run.
   */
  replaceRsaCa?: boolean;
}

const memberIdPattern = /^[A-Za-z0-9-]{1,32}$/;

/**
 * Why the CA under `dir` cannot stay, or null when it can (or there is none yet): its key is not
 * EC P-256, as a CA made by an earlier version (RSA-2048) is not.
 */
export function caKeyRefusal(dir: string): string | null {
  const { caCert } = pkiPaths(dir);
  if (!existsSync(caCert)) return null;
  let key: KeyObject;
  try {
    key = parseCertificate(readFileSync(caCert, 'utf8'), 'ca').publicKey;
  } catch {
    return null;
  }
  return isP256Key(key) ? null : `${caCert} holds an ${String(key.asymmetricKeyType).toUpperCase()} key; the federation's keys are EC P-256 (docs/PROTOCOL.md §1)`;
}

/** The number of the list in a retired CA folder, read without verifying (the CA's own file). */
function retiredListNumber(path: string): number {
  try {
    const number = peekJwt(readFileSync(path, 'utf8').trim()).claims.number;
    return typeof number === 'number' && Number.isSafeInteger(number) && number > 0 ? number : 0;
  } catch {
    return 0;
  }
}

/**
 * Creates what is missing under `dir`: the CA, each member's certificates, and directory.json
 * (without endpoints), and re-signs the revocation list (an empty one the first time). Existing
 * keys are kept; a member whose certificate was revoked, has expired or holds an RSA key gets new
 * keys and certificates. A CA with an RSA key is replaced only with `replaceRsaCa`.
 */
export async function initPki(dir: string, members: MemberSpec[], options: InitOptions = {}): Promise<InitResult> {
  const paths = pkiPaths(dir);
  let retiredCa: string | undefined;
  let previousNumber = 0;
  const refusal = caKeyRefusal(dir);
  if (refusal) {
    if (!options.replaceRsaCa) {
      throw new Error(`${refusal}. Make a new CA and re-issue every member: npm run pki -- init --replace-rsa-ca --dir ${dir} --member … (then give each member its new folder)`);
    }
    retiredCa = join(dir, `ca.retired-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    previousNumber = retiredListNumber(paths.revocations);
    renameSync(join(dir, 'ca'), retiredCa);
  }
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
  const revocations = await publishRevocations(dir, [], { validSeconds: options.listValidSeconds, after: previousNumber });
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
  return retiredCa ? { ...result, retiredCa } : result;
}

/** The CA's key and kid, for what the CA signs besides certificates (the revocation list). */
export function caSigner(ca: CertificateAuthority): { key: KeyObject; kid: string } {
  return { key: createPrivateKey(ca.key), kid: certificateKid(ca.cert) };
}

/**
 * Signs the next revocation list: the serials of the current one plus `add`, its number plus one,
 * valid for `validSeconds` (docs/PROTOCOL.md §1); a new CA's first list starts `after` the
 * number of the CA it replaced. Written to ca/revocations.jws and, when the
 * folder exists, to public/revocations.jws (what deployments mount for the gateway).
 */
export async function publishRevocations(dir: string, add: string[], options: { validSeconds?: number; now?: Date; after?: number } = {}): Promise<RevocationList> {
  const paths = pkiPaths(dir);
  const ca = readCertificateAuthority(dir);
  const current = existsSync(paths.revocations) ? await currentCaList(readFileSync(paths.revocations, 'utf8'), ca.cert) : undefined;
  const issuedAt = options.now ?? new Date();
  const jws = await signRevocationList(caSigner(ca), {
    number: Math.max(current?.number ?? 0, options.after ?? 0) + 1,
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
