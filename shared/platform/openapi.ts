/**
 * OpenAPI 3.1 documents built from the zod schemas that validate requests (docs/PROTOCOL.md §2):
 * one source of truth. Each member describes its routes as a list of operations that name the
 * schemas its routes parse with (`parseInput`) and the shapes its answers have; this turns them
 * into one document with zod 4's own JSON Schema output (draft 2020-12, the dialect of OpenAPI
 * 3.1): request bodies, parameters and headers as the schema accepts them (`io: 'input'`), answers
 * as they are sent (`io: 'output'`). Every operation answers errors as RFC 9457 problem+json
 * (`Problem`). No new dependency: zod already writes JSON Schema.
 */
import type { RequestHandler } from 'express';
import { z } from 'zod';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * Who may call an operation: anyone (`public`), a signed-in staff member of the listed roles
 * (`staff`, `'any'` for every role), or a federation member whose certificate is of the listed
 * kinds or ids (`members`, `'any'` for every member).
 */
export type Access =
  | { public: true }
  | { staff: readonly string[] | 'any' }
  /** A resident signed in at their own page (a resident session, never a staff one). */
  | { resident: true }
  | { members: readonly string[] | 'any' };

export interface ResponseSpec {
  description: string;
  /** The body; omitted for an empty answer (204, a 202 without body). */
  body?: z.ZodType;
  /** Media type of the body (application/json unless given). */
  type?: string;
  headers?: Record<string, string>;
}

export interface HeaderSpec {
  description: string;
  schema: z.ZodType;
  required?: boolean;
}

export interface OperationSpec {
  method: HttpMethod;
  /** The path as Express routes it: `:name` for a path parameter. */
  path: string;
  summary: string;
  description?: string;
  tags: string[];
  access: Access;
  /** Path parameters by name (a parameter without a schema is a plain string). */
  params?: Record<string, z.ZodType>;
  /** The query-string schema the route parses with (an object). */
  query?: z.ZodType;
  headers?: Record<string, HeaderSpec>;
  /** The JSON body the route parses with. */
  body?: z.ZodType;
  /** A body may be left out (the route reads `req.body ?? {}`). */
  bodyOptional?: boolean;
  /** An example body (synthetic data only: never a My Number, test/integration/openapi.test.ts checks). */
  bodyExample?: unknown;
  responses: Record<number, ResponseSpec>;
}

export interface DocumentSpec {
  title: string;
  version: string;
  description: string;
  /** `staff`: a staff port (session token); `member`: a federation (mTLS) port. */
  port: 'staff' | 'member';
  operations: OperationSpec[];
  /** Response shapes shared by several operations, by component name. */
  components?: Record<string, z.ZodType>;
}

/** A JSON value of an OpenAPI document (kept loose: the document is checked by a validator in the tests). */
export type OpenApiDocument = Record<string, unknown> & { openapi: string; paths: Record<string, Record<string, unknown>> };

type JsonSchema = Record<string, unknown>;

/** Base of every problem `type` (shared/platform/errors.ts). */
const PROBLEM_TYPE = 'https://hikitsugi.example/problems/<code>';

/**
 * RFC 9457 problem details as every member answers errors (shared/platform/errors.ts): the
 * stable `type`, the field at fault and the rule it broke, the request id. Extension members
 * (`retryAfter`, `lockedUntil`, `checks`…) may follow.
 */
export const problemSchema = z.looseObject({
  type: z.string().describe(`The problem type, ${PROBLEM_TYPE}: clients switch on it`),
  title: z.string(),
  status: z.number().int().min(400).max(599),
  detail: z.string().optional(),
  instance: z.string().optional().describe('The request path, without its query string'),
  requestId: z.string().optional().describe('The answering member\'s request id (X-Request-Id)'),
  field: z.string().optional().describe('The input field at fault, as a dotted path'),
  rule: z.string().optional().describe('The rule that field broke, in words a clerk can act on'),
  errors: z.array(z.object({ field: z.string(), rule: z.string() })).optional().describe('Every field at fault (the first is also field/rule)'),
});

export const PROBLEM_JSON = 'application/problem+json';

/** GET /ready's report (shared/platform/health.ts; its 503 is a problem carrying the same report as `checks`). */
export const readyReportSchema = z.looseObject({
  status: z.literal('ready'),
  ready: z.literal(true),
  member: z.string(),
  database: z.looseObject({ status: z.enum(['up', 'down']), ms: z.number() }),
  peers: z.record(z.string(), z.looseObject({ status: z.enum(['up', 'down']), ms: z.number() })),
  degraded: z.boolean(),
});

/** `/residents/:addresseeNumber` → `/residents/{addresseeNumber}`. */
export const openApiPath = (path: string): string => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const pathParams = (path: string): string[] => [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);

/**
 * Converts one zod schema. Named components met inside it are left as `$ref`s to
 * `#/components/schemas/<name>` and collected into `found`, so one shape is written once.
 */
function toSchema(schema: z.ZodType, io: 'input' | 'output', found: Map<string, JsonSchema>): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  delete json.$schema;
  const defs = (json.$defs ?? {}) as Record<string, JsonSchema>;
  delete json.$defs;
  const relink = <T>(value: T): T => JSON.parse(JSON.stringify(value).replaceAll('"#/$defs/', '"#/components/schemas/')) as T;
  for (const [name, def] of Object.entries(defs)) {
    const linked = relink(def);
    const held = found.get(name);
    if (held && JSON.stringify(held) !== JSON.stringify(linked)) throw new Error(`OpenAPI component ${name} converts two ways (input and output?)`);
    found.set(name, linked);
  }
  return relink(json);
}

function accessOf(access: Access, port: DocumentSpec['port']): { security: Record<string, string[]>[]; note: string; extension: Record<string, unknown> } {
  if ('public' in access) return { security: [], note: 'No sign-in: this answer names no person.', extension: { 'x-access': 'public' } };
  if ('resident' in access) {
    if (port !== 'staff') throw new Error('a resident operation on a member port');
    return { security: [{ residentBearer: [] }, { residentCookie: [] }], note: 'Resident session: the signed-in resident\'s own data only.', extension: { 'x-access': 'resident' } };
  }
  if ('staff' in access) {
    if (port !== 'staff') throw new Error('a staff operation on a member port');
    const roles = access.staff === 'any' ? 'any signed-in staff member' : `role ${access.staff.join(' or ')}`;
    return {
      security: [{ staffBearer: [] }, { staffCookie: [] }],
      note: `Staff session: ${roles}.`,
      extension: { 'x-roles': access.staff === 'any' ? ['any'] : [...access.staff] },
    };
  }
  if (port !== 'member') throw new Error('a member operation on a staff port');
  const who = access.members === 'any' ? 'any federation member' : access.members.join(' or ');
  return { security: [{ memberCertificate: [] }], note: `Federation certificate: ${who}.`, extension: { 'x-members': access.members === 'any' ? ['any'] : [...access.members] } };
}

/**
 * Builds the OpenAPI 3.1 document of one port from its operations. The named components carry an
 * `id` in zod's global registry only while the document is built (zod reads descriptions from
 * that registry too, so a private one would lose them); the build is synchronous, and the
 * registry is as it was afterwards.
 */
export function buildOpenApiDocument(spec: DocumentSpec): OpenApiDocument {
  const named = Object.entries({ Problem: problemSchema, ...spec.components });
  const before = named.map(([, schema]) => z.globalRegistry.get(schema));
  named.forEach(([id, schema], i) => z.globalRegistry.add(schema, { ...before[i], id }));
  try {
    return build(spec);
  } finally {
    named.forEach(([, schema], i) => {
      z.globalRegistry.remove(schema);
      if (before[i]) z.globalRegistry.add(schema, before[i]);
    });
  }
}

function build(spec: DocumentSpec): OpenApiDocument {
  const found = new Map<string, JsonSchema>();
  const output = (schema: z.ZodType) => toSchema(schema, 'output', found);
  const input = (schema: z.ZodType) => toSchema(schema, 'input', found);

  const paths: Record<string, Record<string, unknown>> = {};
  const seen = new Set<string>();
  for (const op of spec.operations) {
    const key = `${op.method.toUpperCase()} ${op.path}`;
    if (seen.has(key)) throw new Error(`OpenAPI: ${key} described twice`);
    seen.add(key);
    const access = accessOf(op.access, spec.port);
    const parameters: unknown[] = pathParams(op.path).map((name) => ({
      name, in: 'path', required: true, schema: op.params?.[name] ? input(op.params[name]) : { type: 'string' },
    }));
    for (const name of Object.keys(op.params ?? {})) if (!pathParams(op.path).includes(name)) throw new Error(`OpenAPI: ${key} has no path parameter ${name}`);
    if (op.query) {
      const q = input(op.query);
      const required = new Set((q.required as string[] | undefined) ?? []);
      for (const [name, schema] of Object.entries((q.properties ?? {}) as Record<string, JsonSchema>)) {
        parameters.push({ name, in: 'query', required: required.has(name), schema });
      }
    }
    for (const [name, h] of Object.entries(op.headers ?? {})) {
      parameters.push({ name, in: 'header', required: Boolean(h.required), description: h.description, schema: input(h.schema) });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(op.responses)) {
      responses[status] = {
        description: r.description,
        ...(r.headers ? { headers: Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) } : {}),
        ...(r.body ? { content: { [r.type ?? 'application/json']: { schema: output(r.body) } } } : {}),
      };
    }
    responses.default = {
      description: 'An error, as RFC 9457 problem details',
      content: { [PROBLEM_JSON]: { schema: { $ref: '#/components/schemas/Problem' } } },
    };
    const operation = {
      operationId: operationId(op),
      summary: op.summary,
      description: [op.description, access.note].filter(Boolean).join('\n\n'),
      tags: op.tags,
      security: access.security,
      ...access.extension,
      ...(parameters.length ? { parameters } : {}),
      ...(op.body ? {
        requestBody: {
          required: !op.bodyOptional,
          content: { 'application/json': { schema: input(op.body), ...(op.bodyExample !== undefined ? { example: op.bodyExample } : {}) } },
        },
      } : {}),
      responses,
    };
    (paths[openApiPath(op.path)] ??= {})[op.method] = operation;
  }
  // Problem is referenced by every default answer even where no schema mentions it.
  if (!found.has('Problem')) output(z.object({ p: problemSchema }));

  const securitySchemes = spec.port === 'staff'
    ? {
      staffBearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The session token of POST /auth/login' },
      staffCookie: { type: 'apiKey', in: 'cookie', name: 'hikitsugi_session', description: 'The same token as an httpOnly SameSite cookie (the console)' },
      residentBearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A resident\'s session token of POST /resident/sign-in (not valid on staff routes)' },
      residentCookie: { type: 'apiKey', in: 'cookie', name: 'hikitsugi_resident', description: 'The same token as an httpOnly SameSite cookie (the resident page)' },
    }
    : { memberCertificate: { type: 'mutualTLS', description: 'A client certificate from the federation CA; the member is its CN (docs/PROTOCOL.md §1)' } };
  return {
    openapi: '3.1.0',
    info: { title: spec.title, version: spec.version, description: spec.description },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: [...new Set(spec.operations.flatMap((o) => o.tags))].sort().map((name) => ({ name })),
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
    components: {
      schemas: Object.fromEntries([...found].sort(([a], [b]) => a.localeCompare(b))),
      securitySchemes,
    },
  };
}

/** `GET /residents/:addresseeNumber` → `getResidentsAddresseeNumber`: stable, unique per document. */
function operationId(op: OperationSpec): string {
  const words = op.path.split(/[/.\-:]+/).filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1));
  return op.method + (words.join('') || 'Root');
}

/** GET /openapi.json: the document, built once on first request. */
export function serveOpenApi(build: () => OpenApiDocument): RequestHandler {
  let document: OpenApiDocument | undefined;
  return (_req, res) => {
    document ??= build();
    res.json(document);
  };
}

/** The operation of GET /openapi.json itself, for the document that describes it. */
export function openApiOperation(access: Access, tag = 'meta'): OperationSpec {
  return {
    method: 'get', path: '/openapi.json', summary: 'This OpenAPI 3.1 document', tags: [tag], access,
    description: 'Generated from the zod schemas that validate requests (docs/PROTOCOL.md §2).',
    responses: { 200: { description: 'The OpenAPI document', body: z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) }) } },
  };
}
