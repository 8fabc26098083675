/**
 * The CapabilityStatement (FHIR R4 capabilitystatement.html) of one municipality's FHIR API,
 * built from the interactions routes.ts registers and the search table of search.ts: a resource,
 * interaction, search parameter or operation appears here only because it is routed.
 */
import type { RequestHandler } from 'express';
import type { MunicipalityContext } from '../context.ts';
import { JP_PATIENT_PROFILE } from '../residents/fhir.ts';
import { JP_IMMUNIZATION_PROFILE, PROVENANCE_EXTENSION } from '../vaccinations/fhir.ts';
import { FHIR_JSON } from './outcomes.ts';
import { IMMUNIZATION_SEARCH_PARAMS, RESULT_PARAMS } from './search.ts';

export interface Interaction {
  method: 'get' | 'delete';
  path: string;
  /** For the CapabilityStatement: a resource interaction, a search, or an operation. */
  kind: { resource: 'Patient'; interaction: 'read' } | { resource: 'Immunization'; interaction: 'search-type' }
    | { operation: 'export'; level: 'system' | 'Patient'; definition: string } | { internal: 'capabilities' | 'export-status' | 'export-file' };
  handler: RequestHandler;
}

/** The server's software version (package.json of the project). */
const SOFTWARE_VERSION = '0.1.0';

const PROFILES: Record<string, string> = { Patient: JP_PATIENT_PROFILE, Immunization: JP_IMMUNIZATION_PROFILE };

const DOCUMENTATION: Record<string, string> = {
  Patient: 'A resident of this municipality (JP Core JP_Patient): id is an opaque id, never the My Number; the addressee number is the identifier; '
    + 'kanji and kana names carry the ISO 21090 name representation (IDE, SYL).',
  Immunization: 'A vaccination record (JP Core JP_Immunization), the current version of each record; voided records have status entered-in-error. '
    + 'vaccineCode carries published codes only (JP HOT/YJ first, CVX second); a product with no published code is text only, with a note. '
    + 'A copy imported from another municipality keeps its provenance: meta.source = urn:hikitsugi:municipality:{code} and the extension '
    + `${PROVENANCE_EXTENSION} (source municipality, source record id and version, request id, retrieved at); primarySource is false. `
    + `Result parameters: ${Object.entries(RESULT_PARAMS).map(([k, v]) => `${k} (${v})`).join('; ')}`,
};

export function capabilityStatement(ctx: MunicipalityContext, base: string, interactions: readonly Interaction[]) {
  const resources = new Map<string, { type: string; profile: string; interaction: { code: string }[]; searchParam?: unknown[]; operation?: unknown[]; documentation: string }>();
  const resource = (type: string) => {
    let r = resources.get(type);
    if (!r) {
      r = { type, profile: PROFILES[type]!, interaction: [], documentation: DOCUMENTATION[type]! };
      resources.set(type, r);
    }
    return r;
  };
  const systemOperations: { name: string; definition: string; documentation: string }[] = [];
  for (const i of interactions) {
    const kind = i.kind;
    if ('resource' in kind) {
      const r = resource(kind.resource);
      r.interaction.push({ code: kind.interaction });
      if (kind.interaction === 'search-type' && kind.resource === 'Immunization') {
        r.searchParam = IMMUNIZATION_SEARCH_PARAMS.map((p) => ({ name: p.name, ...(p.definition ? { definition: p.definition } : {}), type: p.type, documentation: p.documentation }));
      }
    } else if ('operation' in kind) {
      const op = {
        name: 'export', definition: kind.definition,
        documentation: 'FHIR Bulk Data export (asynchronous): Prefer: respond-async; _type (Patient, Immunization), _since, _outputFormat application/fhir+ndjson. '
          + 'Poll the Content-Location URL (202 with X-Progress, then 200 with the manifest); DELETE it to cancel. Files need the same sign-in.',
      };
      if (kind.level === 'system') systemOperations.push(op);
      else (resource('Patient').operation ??= []).push(op);
    }
  }
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: ctx.config.MUNICIPALITY_NAME,
    kind: 'instance',
    software: { name: 'hikitsugi', version: SOFTWARE_VERSION },
    implementation: { description: `FHIR API of municipality ${ctx.config.MUNICIPALITY_CODE} (${ctx.config.MUNICIPALITY_NAME})`, url: base },
    fhirVersion: '4.0.1',
    format: [FHIR_JSON, 'json'],
    rest: [{
      mode: 'server',
      documentation: 'Clerks of this municipality only; every read is written to the municipality\'s access log. Errors are OperationOutcomes.',
      security: {
        description: 'A staff session token of this municipality (POST /auth/login; Authorization: Bearer) with the clerk role; no other municipality\'s session is accepted.',
      },
      resource: [...resources.values()],
      ...(systemOperations.length ? { operation: systemOperations } : {}),
    }],
  };
}
