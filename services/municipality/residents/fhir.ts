/**
 * A resident as a FHIR R4 Patient shaped by JP Core's JP_Patient profile
 * (http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient). Fields are listed one by one:
 * the My Number, its index, the code (符号) and the move history never leave through here.
 */
import type { ResidentRecord } from './model.ts';

export const JP_PATIENT_PROFILE = 'http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient';
/** ISO 21090 name representation (JP_HumanName slice NameRepresentationUse, 1..*): IDE kanji, SYL kana. */
export const NAME_REPRESENTATION_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation';

/**
 * The namespace of a municipality's addressee numbers (宛名番号). JP_Patient requires an
 * identifier (1..*); the addressee number is the municipality's own, meaningless elsewhere, and
 * no public OID names it, so the system is this project's own URI per municipality.
 */
export const addresseeNumberSystem = (municipalityCode: string): string =>
  `https://hikitsugi.example/fhir/sid/addressee-number/${municipalityCode}`;

export interface HumanName {
  extension: { url: string; valueCode: 'IDE' | 'SYL' }[];
  use: 'official';
  text: string;
  family?: string;
  given?: string[];
}

export interface Patient {
  resourceType: 'Patient';
  id: string;
  meta: { lastUpdated: string; profile: string[] };
  identifier: { system: string; value: string }[];
  active: boolean;
  name: HumanName[];
  gender: ResidentRecord['sex'];
  birthDate: string;
  address: { use: 'home'; text: string; country: 'JP' }[];
  deceasedBoolean?: true;
}

export type PatientSource = Pick<ResidentRecord, 'id' | 'addresseeNumber' | 'name' | 'kana' | 'birthDate' | 'sex' | 'address' | 'status' | 'updatedAt'>;

/**
 * One name form (JP Core JP_HumanName): family and given when the name has a space between
 * them (ASCII or ideographic), the whole name as text in every case.
 */
function humanName(value: string, representation: 'IDE' | 'SYL'): HumanName {
  const text = value.trim();
  const parts = text.split(/[ \u3000]+/);
  return {
    extension: [{ url: NAME_REPRESENTATION_EXTENSION, valueCode: representation }],
    use: 'official',
    text,
    ...(parts.length === 2 ? { family: parts[0], given: [parts[1]!] } : {}),
  };
}

/**
 * The Patient of a resident. `id` is the resident's opaque id (a UUID), never the My Number or
 * the addressee number; the addressee number is its identifier. A resident who moved out is still
 * a valid record here (active: true); `active: false` in JP Core marks a record made in error.
 */
export function toPatient(resident: PatientSource, municipalityCode: string): Patient {
  return {
    resourceType: 'Patient',
    id: resident.id,
    meta: { lastUpdated: resident.updatedAt, profile: [JP_PATIENT_PROFILE] },
    identifier: [{ system: addresseeNumberSystem(municipalityCode), value: resident.addresseeNumber }],
    active: true,
    name: [humanName(resident.name, 'IDE'), humanName(resident.kana, 'SYL')],
    gender: resident.sex,
    birthDate: resident.birthDate,
    address: [{ use: 'home', text: resident.address, country: 'JP' }],
    ...(resident.status === 'deceased' ? { deceasedBoolean: true as const } : {}),
  };
}
