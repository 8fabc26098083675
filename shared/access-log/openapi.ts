/**
 * OpenAPI descriptions of the access-log routes several members mount from here: the privacy
 * officer's console (./console.ts), the alerts (./alerts.ts) and the witnessed heads a member
 * reads about its own log (./heads.ts). Request schemas are the ones the routes parse with; each
 * member adds these operations to its own document (docs/PROTOCOL.md §2, docs/DESIGN.md §5).
 */
import { z } from 'zod';
import type { Access, OperationSpec } from '../platform/openapi.ts';
import { alertFilterSchema } from './alerts.ts';
import { reconcileSchema, requestIdParamSchema, seqParamSchema } from './console.ts';
import { headsQuerySchema } from './heads.ts';
import { accessFilterSchema } from './query.ts';

const hash = z.string().regex(/^[0-9a-f]{64}$/);

/** One access-log entry as the console lists it: listed fields, JSON columns parsed. */
export const accessEntryView = z.object({
  seq: z.number().int().min(1),
  at: z.string(),
  requestId: z.string(),
  actorType: z.string(),
  actorId: z.string(),
  /** A staff actor's display name beside the id, when the account is this member's. */
  actorName: z.string().optional(),
  actorRole: z.string().nullable(),
  actingMunicipality: z.string().nullable(),
  subject: z.string().nullable(),
  action: z.string(),
  purpose: z.string().nullable(),
  legalBasis: z.string().nullable(),
  consentId: z.string().nullable(),
  outcome: z.string(),
  reason: z.string().nullable(),
  recordIds: z.array(z.string()),
  requestHash: z.string().nullable(),
  flags: z.array(z.string()),
  details: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash,
});

/** An alert a detector raised (metadata and the evidence's log seqs). */
export const alertView = z.object({
  id: z.uuid(),
  kind: z.string(),
  key: z.string(),
  subject: z.string().nullable(),
  count: z.number().int(),
  threshold: z.number().int(),
  window: z.object({ from: z.string(), to: z.string() }),
  details: z.record(z.string(), z.unknown()),
  evidence: z.array(z.number().int()),
  raisedAt: z.string(),
});

/** One page of the heads of the asker's own log that this member kept from its messages. */
export const witnessedHeadsPage = z.object({
  heads: z.array(z.object({
    member: z.string(), seq: z.number().int().min(0), hash, seenAt: z.string(), exchange: z.string(),
    /** Always null here: the request id ties a head to the holder's log, and the asker has its own. */
    requestId: z.null(),
  })),
  nextAfter: z.number().int().nullable(),
});

const verifyResult = z.object({
  ok: z.boolean(),
  member: z.string(),
  entries: z.number().int(),
  head: z.object({ seq: z.number().int(), hash }).nullable(),
  checkpoints: z.object({ checked: z.number().int(), agreeing: z.number().int() }),
  /** The first entry at which the chain stops being what it claims to be. */
  broken: z.looseObject({ seq: z.number().int(), kind: z.string(), detail: z.string() }).optional(),
  checkpointsRejected: z.number().int(),
  remoteCheckpoints: z.enum(['checked', 'unavailable', 'none']),
  witnessedHeads: z.object({
    checked: z.number().int(),
    sources: z.array(z.object({ holder: z.string(), heads: z.number().int(), unavailable: z.string().optional() })),
  }),
});

/** Components the operations below refer to by name. */
export const accessLogComponents = { AccessEntry: accessEntryView, Alert: alertView };

/**
 * The console's routes (docs/DESIGN.md §5.3): the page's labels, then the log API behind the
 * member's login and `roles`. The console's static page under /console/ is not an API and is
 * not described.
 */
export function auditConsoleOperations(roles: readonly string[]): OperationSpec[] {
  const tags = ['access log'];
  const access: Access = { staff: roles };
  return [
    {
      method: 'get', path: '/console/labels.json', summary: 'What the log\'s codes mean, in Japanese (the console\'s labels)', tags: ['console'],
      access: { public: true },
      responses: { 200: { description: 'Label tables by kind of code', body: z.record(z.string(), z.record(z.string(), z.string())) } },
    },
    {
      method: 'get', path: '/audit/entries', summary: 'One page of the access log, newest first (the reading is logged)', tags, access,
      query: accessFilterSchema,
      responses: { 200: { description: 'A page of entries', body: z.object({ entries: z.array(accessEntryView), nextCursor: z.number().int().nullable() }) } },
    },
    {
      method: 'get', path: '/audit/entries/:seq', summary: 'One entry', tags, access, params: { seq: seqParamSchema.shape.seq },
      responses: { 200: { description: 'The entry', body: accessEntryView } },
    },
    {
      method: 'get', path: '/audit/trace/:requestId', summary: 'One request followed across members, hop by hop', tags, access,
      params: { requestId: requestIdParamSchema.shape.requestId },
      responses: {
        200: {
          description: 'This member\'s entries, then the other hops\' (metadata only)',
          body: z.object({
            requestId: z.string(),
            hops: z.array(z.object({ member: z.string(), entries: z.array(z.record(z.string(), z.unknown())), unavailable: z.string().optional() })),
          }),
        },
      },
    },
    {
      method: 'post', path: '/audit/verify', summary: 'Verify the chain against every checkpoint and witnessed head this member can see', tags, access,
      responses: { 200: { description: 'The verification report', body: verifyResult } },
    },
    {
      method: 'get', path: '/audit/export.csv', summary: 'The matching entries as CSV (UTF-8 with BOM), streamed', tags, access,
      query: accessFilterSchema,
      responses: { 200: { description: 'CSV of the entries', type: 'text/csv', body: z.string() } },
    },
    {
      method: 'get', path: '/audit/checkpoints', summary: 'The checkpoints held here (own, and countersigned ones)', tags, access,
      responses: {
        200: {
          description: 'Checkpoints',
          body: z.object({
            checkpoints: z.array(z.object({
              id: z.number().int(), member: z.string(), seq: z.number().int(), hash, at: z.string(),
              witnessedBy: z.string().nullable(), jws: z.string(), countersignature: z.string().nullable(),
            })),
          }),
        },
      },
    },
    {
      method: 'post', path: '/audit/checkpoints', summary: 'Sign the current head now and have it countersigned', tags, access,
      responses: {
        201: {
          description: 'The checkpoint made',
          body: z.object({
            checkpoint: z.object({ member: z.string(), seq: z.number().int(), hash, at: z.string(), jws: z.string() }),
            witnessedBy: z.string().nullable(),
          }),
        },
      },
    },
    {
      method: 'post', path: '/audit/reconcile', summary: 'Reconcile this log with the counterpart\'s entries about the same exchanges', tags, access,
      description: 'Where no counterpart log exists here (the gateway) the answer is 404 reconciliation-unavailable; a municipality without its gateway 503.',
      body: reconcileSchema, bodyOptional: true,
      responses: {
        200: {
          description: 'What matched and what is one-sided',
          body: z.looseObject({ ok: z.boolean() }),
        },
      },
    },
  ];
}

/** GET /alerts and POST /alerts/run (docs/DESIGN.md §4.12), for `roles`. */
export function alertOperations(roles: readonly string[]): OperationSpec[] {
  const tags = ['alerts'];
  return [
    {
      method: 'get', path: '/alerts', summary: 'Alerts raised, newest first', tags, access: { staff: roles }, query: alertFilterSchema,
      responses: { 200: { description: 'Alerts', body: z.object({ alerts: z.array(alertView) }) } },
    },
    {
      method: 'post', path: '/alerts/run', summary: 'Run the detectors now', tags, access: { staff: roles },
      responses: { 200: { description: 'The alerts raised by this run', body: z.object({ raised: z.array(alertView) }) } },
    },
  ];
}

/** GET `path` (witnessed heads, docs/PROTOCOL.md §3.0) on a member port, for the listed members. */
export function witnessedHeadsOperation(path: string, members: readonly string[]): OperationSpec {
  return {
    method: 'get', path, summary: 'Heads of the asker\'s own log that this member kept from its messages', tags: ['witnessed heads'],
    description: 'A member reads only the heads of its own log (`member` must be its own id, else 403); 1,000 per page.',
    access: { members }, query: headsQuerySchema,
    responses: { 200: { description: 'One page of heads', body: witnessedHeadsPage } },
  };
}
