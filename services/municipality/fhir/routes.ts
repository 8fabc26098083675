/**
 * The municipality's FHIR R4 API under one base (`/fhir/R4`): JP Core Patients and
 * Immunizations for clerks' systems and clinics' vendors, and a Bulk Data export. Clerks only,
 * like the staff routes for records (DESIGN.md §6); every read is access-logged where the data is
 * read (./service.ts, ./export/service.ts). `INTERACTIONS` is the one list of what is routed:
 * the routes are registered from it and metadata.ts describes it, so the CapabilityStatement
 * says exactly what this server does.
 */
import { Router, type Request } from 'express';
import { inTransaction } from '../../../shared/platform/db.ts';
import type { MunicipalityContext } from '../context.ts';
import { actorOf, authenticate, requireRole } from '../staff/middleware.ts';
import { IMMUNIZATION_ELEMENTS, IMMUNIZATION_MANDATORY } from '../vaccinations/fhir.ts';
import {
  cancelExport, downloadFile, exportFailed, exportFiles, jobOf, manifest, NDJSON, parseKickOff, startExport, type ExportRunner,
} from './export/service.ts';
import { capabilityStatement, type Interaction } from './metadata.ts';
import { badParameter, FHIR_JSON, fhirNotFound, outcome, sendFhir } from './outcomes.ts';
import {
  IMMUNIZATION_SEARCH_PARAMS, parseDateFilter, parseResultParams, patientIdOf, refuseUnknownParams, RESULT_PARAMS, searchsetBundle, stringValues, subset,
} from './search.ts';
import { readPatient, searchImmunizations } from './service.ts';

export const FHIR_BASE = '/fhir/R4';

/** The absolute base URL of this request's FHIR API (for fullUrl, links and the export's URLs). */
export const baseUrlOf = (req: Request): string => `${req.protocol}://${req.get('host')}${req.baseUrl}`;

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;


export function fhirRoutes(ctx: MunicipalityContext, exports: ExportRunner): Router {
  const router = Router();
  const clerk = [authenticate(ctx), requireRole('clerk')];

  const interactions: Interaction[] = [
    {
      // The capabilities interaction (FHIR R4 §3.1.0.11) names no person: no sign-in needed to learn what the server does.
      method: 'get', path: '/metadata', kind: { internal: 'capabilities' },
      handler: (req, res) => sendFhir(res, 200, capabilityStatement(ctx, baseUrlOf(req), interactions)),
    },
    {
      method: 'get', path: '/Patient/:id', kind: { resource: 'Patient', interaction: 'read' },
      handler: async (req, res) => {
        refuseUnknownParams(req.query, ['_format']);
        parseResultParams(req.query, []);
        const id = String(req.params.id);
        if (!FHIR_ID.test(id)) throw badParameter('id', 'must be a FHIR id ([A-Za-z0-9-.]{1,64})');
        sendFhir(res, 200, await inTransaction(ctx.sequelize, (t) => readPatient(ctx, t, id, actorOf(req))));
      },
    },
    {
      method: 'get', path: '/Immunization', kind: { resource: 'Immunization', interaction: 'search-type' },
      handler: async (req, res) => {
        const base = baseUrlOf(req);
        refuseUnknownParams(req.query, [...IMMUNIZATION_SEARCH_PARAMS.map((p) => p.name), ...Object.keys(RESULT_PARAMS), '_format']);
        const patients = stringValues(req.query, 'patient');
        if (patients.length !== 1) throw badParameter('patient', patients.length ? 'must be given once' : 'is required: Immunizations are searched per resident');
        const patientId = patientIdOf(patients[0]!, base);
        const dates = stringValues(req.query, 'date').map(parseDateFilter);
        const page = parseResultParams(req.query, IMMUNIZATION_ELEMENTS);
        const found = await inTransaction(ctx.sequelize, (t) => searchImmunizations(ctx, t, { patientId, dates, page }, actorOf(req)));
        const url = ({ count, offset }: { count: number; offset: number }) => {
          const q = new URLSearchParams({ patient: `Patient/${patientId}` });
          for (const d of dates) q.append('date', d.raw);
          if (page.summaryCount) q.set('_summary', 'count');
          if (page.elements) q.set('_elements', page.elements.join(','));
          q.set('_count', String(count));
          q.set('_offset', String(offset));
          return `${base}/Immunization?${q.toString()}`;
        };
        sendFhir(res, 200, searchsetBundle({
          total: found.total, page, url,
          entries: found.page.map((r) => ({
            fullUrl: `${base}/Immunization/${r.id}`,
            resource: page.elements ? subset(r, page.elements, IMMUNIZATION_MANDATORY) : r,
          })),
        }));
      },
    },
    ...(['system', 'Patient'] as const).map((level): Interaction => ({
      method: 'get', path: level === 'system' ? '/$export' : '/Patient/$export',
      kind: {
        operation: 'export', level,
        definition: level === 'system' ? 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' : 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export',
      },
      handler: async (req, res) => {
        const parsed = parseKickOff(req.query, { prefer: req.get('prefer'), accept: req.get('accept') });
        const base = baseUrlOf(req);
        const job = await inTransaction(ctx.sequelize, (t) => startExport(ctx, t, {
          ...parsed, level: level === 'system' ? 'system' : 'patient', requestUrl: `${base}${req.url}`,
        }, actorOf(req)));
        exports.kick();
        res.setHeader('Content-Location', `${base}/$export-status/${job.id}`);
        sendFhir(res, 202, outcome({ severity: 'information', code: 'informational', diagnostics: `Export ${job.id} accepted; poll the Content-Location URL` }));
      },
    })),
    {
      method: 'get', path: '/$export-status/:jobId', kind: { internal: 'export-status' },
      handler: async (req, res) => {
        const job = await jobOf(ctx, String(req.params.jobId), actorOf(req));
        if (job.status === 'in-progress') {
          res.setHeader('X-Progress', job.progress ?? 'in progress');
          res.setHeader('Retry-After', '1');
          res.status(202).end();
          return;
        }
        if (job.status === 'failed') throw exportFailed(job);
        const base = baseUrlOf(req);
        const files = await exportFiles(ctx, job.id);
        res.setHeader('Expires', new Date(Date.now() + 24 * 3600 * 1000).toUTCString());
        res.status(200).type('application/json').send(JSON.stringify(manifest(job, files, (f) => `${base}/$export-file/${job.id}/${f.id}`)));
      },
    },
    {
      method: 'delete', path: '/$export-status/:jobId', kind: { internal: 'export-status' },
      handler: async (req, res) => {
        await inTransaction(ctx.sequelize, (t) => cancelExport(ctx, t, String(req.params.jobId), actorOf(req)));
        sendFhir(res, 202, outcome({ severity: 'information', code: 'informational', diagnostics: 'Export cancelled; its files are deleted' }));
      },
    },
    {
      method: 'get', path: '/$export-file/:jobId/:fileId', kind: { internal: 'export-file' },
      handler: async (req, res) => {
        const fileId = String(req.params.fileId);
        if (!/^\d{1,12}$/.test(fileId)) throw badParameter('fileId', 'must be a file number of the manifest');
        const content = await inTransaction(ctx.sequelize, (t) => downloadFile(ctx, t, String(req.params.jobId), Number(fileId), actorOf(req)));
        res.status(200).type(NDJSON).send(content);
      },
    },
  ];

  // Operations first: `Patient/$export` must not be taken for the read of a Patient with id `$export`.
  const byPrecedence = [...interactions].sort((a, b) => Number(b.path.includes('$')) - Number(a.path.includes('$')));
  for (const i of byPrecedence) {
    const guards = 'internal' in i.kind && i.kind.internal === 'capabilities' ? [] : clerk;
    router[i.method](i.path, ...guards, i.handler);
  }
  // Errors go on to the app's FHIR error handler (app.ts), which also sees the common front's errors.
  router.use(fhirNotFound);
  return router;
}

export { FHIR_JSON };
