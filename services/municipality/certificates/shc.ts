/**
 * The SMART Health Cards encoding of a vaccination certificate (docs/DESIGN.md §4.11), as the
 * SMART Health Cards Framework specifies it (https://spec.smarthealth.cards/): a minified FHIR R4
 * `collection` Bundle (Patient `resource:0`, one Immunization per dose) inside a verifiable
 * credential, raw-DEFLATEd, signed as a compact ES256 JWS (shared/crypto.ts), and shown as a
 * `.smart-health-card` file or as one numeric-mode `shc:/` QR code. Pure: no database, no request.
 */
import { deflateRawSync } from 'node:zlib';
import type { KeyObject } from 'node:crypto';
import QRCode from 'qrcode';
import { signHealthCard } from '../../../shared/crypto.ts';
import { AppError } from '../../../shared/platform/errors.ts';

/** Media type of the `.smart-health-card` file (spec, "Via File Download"). */
export const HEALTH_CARD_MEDIA_TYPE = 'application/smart-health-card';
export const HEALTH_CARD_TYPES = ['https://smarthealth.cards#health-card', 'https://smarthealth.cards#immunization'] as const;
export const FHIR_VERSION = '4.0.1';
/**
 * The longest JWS one QR code carries (spec, "Chunking": version 22 at error correction L, in
 * numeric mode). Longer cards would need chunks, which the spec deprecates: they are refused.
 */
export const MAX_SINGLE_QR_JWS = 1195;
const SHC_PREFIX = 'shc:/';
/** Each JWS character is written as two digits, its code minus 45 ('-', the smallest of base64url and '.'). */
const SMALLEST_CHAR = 45;

/* ---------- the minified FHIR Bundle ---------- */

/** A coding as the spec's minification leaves it: no `display`. */
export interface CardCoding {
  system: string;
  code: string;
}

export interface CardPatient {
  resourceType: 'Patient';
  name: { family?: string; given?: string[]; text?: string }[];
  birthDate: string;
}

export interface CardImmunization {
  resourceType: 'Immunization';
  status: 'completed';
  vaccineCode: { coding: CardCoding[] };
  patient: { reference: 'resource:0' };
  occurrenceDateTime: string;
  performer?: { actor: { display: string } }[];
  lotNumber?: string;
}

export interface CardBundle {
  resourceType: 'Bundle';
  type: 'collection';
  entry: { fullUrl: string; resource: CardPatient | CardImmunization }[];
}

/** What the certificate says of the person: the name as written and the birth date, nothing else. */
export interface CardHolder {
  name: string;
  birthDate: string;
}

/** One dose as the certificate shows it. */
export interface CardDose {
  codings: CardCoding[];
  occurrenceDate: string;
  lotNumber: string | null;
  place: string | null;
}

/**
 * The name as a HumanName: family and given when the name has one space between them (ASCII or
 * ideographic, as residents are registered), the whole name as text otherwise.
 */
function humanName(name: string): CardPatient['name'][number] {
  const parts = name.trim().split(/[ \u3000]+/);
  return parts.length === 2 ? { family: parts[0]!, given: [parts[1]!] } : { text: name.trim() };
}

/**
 * The certificate's Bundle, minified as the spec requires ("Health Cards are small"): no
 * `Resource.id`, `meta`, `text`, `CodeableConcept.text` or `Coding.display`; `fullUrl` `resource:N`
 * and references to it. The Patient carries no identifier and no address: no My Number, no
 * addressee number (docs/DESIGN.md §3.1, §3.3). Each field is listed here, never copied from a row.
 */
export function cardBundle(holder: CardHolder, doses: CardDose[]): CardBundle {
  const patient: CardPatient = { resourceType: 'Patient', name: [humanName(holder.name)], birthDate: holder.birthDate };
  const immunizations = doses.map((d): CardImmunization => ({
    resourceType: 'Immunization',
    status: 'completed',
    vaccineCode: { coding: d.codings.map((c) => ({ system: c.system, code: c.code })) },
    patient: { reference: 'resource:0' },
    occurrenceDateTime: d.occurrenceDate,
    ...(d.place !== null ? { performer: [{ actor: { display: d.place } }] } : {}),
    ...(d.lotNumber !== null ? { lotNumber: d.lotNumber } : {}),
  }));
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [patient, ...immunizations].map((resource, i) => ({ fullUrl: `resource:${i}`, resource })),
  };
}

/* ---------- the credential and its signature ---------- */

export interface HealthCardPayload {
  iss: string;
  nbf: number;
  vc: { type: string[]; credentialSubject: { fhirVersion: string; fhirBundle: CardBundle } };
}

/** The JWS payload: issuer, issue time (`nbf`, seconds), the credential's types and the Bundle. */
export const healthCardPayload = (iss: string, issuedAt: Date, bundle: CardBundle): HealthCardPayload => ({
  iss,
  nbf: Math.floor(issuedAt.getTime() / 1000),
  vc: { type: [...HEALTH_CARD_TYPES], credentialSubject: { fhirVersion: FHIR_VERSION, fhirBundle: bundle } },
});

/**
 * The signed card: JSON without whitespace, raw DEFLATE (RFC 1951, no zlib header, as `zip: DEF`
 * means), then the compact JWS with the municipality's key.
 */
export function signCard(payload: HealthCardPayload, key: KeyObject, kid: string): Promise<string> {
  return signHealthCard(deflateRawSync(Buffer.from(JSON.stringify(payload), 'utf8')), key, kid);
}

/** The `.smart-health-card` file's content. */
export const healthCardFile = (jws: string) => ({ verifiableCredential: [jws] });

/* ---------- the QR code ---------- */

/** `shc:/` followed by two digits per JWS character (spec, "Encoding Chunks as QR codes"). */
export function numericShc(jws: string): string {
  let digits = '';
  for (const ch of jws) digits += String(ch.charCodeAt(0) - SMALLEST_CHAR).padStart(2, '0');
  return SHC_PREFIX + digits;
}

/** Refuses a card one QR code cannot carry (the `.smart-health-card` file has no such limit). */
export function requireSingleQr(jws: string): void {
  if (jws.length > MAX_SINGLE_QR_JWS) {
    throw new AppError(422, 'certificate-too-large-for-qr', 'The certificate does not fit in one QR code', {
      field: 'verifiableCredential',
      rule: `one QR code carries a card of at most ${MAX_SINGLE_QR_JWS} JWS characters (this one has ${jws.length}); issue the .smart-health-card file instead`,
    });
  }
}

/** The two segments the spec prescribes: `shc:/` in byte mode, the digits in numeric mode. */
const qrSegments = (jws: string) => [
  { mode: 'byte' as const, data: Buffer.from(SHC_PREFIX, 'ascii') },
  { mode: 'numeric' as const, data: numericShc(jws).slice(SHC_PREFIX.length) },
];

/** The QR code's version (its size) for a card, at error correction L. */
export const qrVersionOf = (jws: string): number => QRCode.create(qrSegments(jws), { errorCorrectionLevel: 'L' }).version;

/** The card as one QR code in a PNG, error correction L (spec); a card too long for one QR is refused. */
export async function qrPng(jws: string): Promise<Buffer> {
  requireSingleQr(jws);
  return QRCode.toBuffer(qrSegments(jws), { type: 'png', errorCorrectionLevel: 'L', margin: 4, scale: 4 });
}
