/**
 * FHIR Bulk Data export (HL7 FHIR Bulk Data Access IG v2, "Export" operation) at one
 * municipality: the kick-off stores a job, a runner in this process writes the NDJSON files into
 * the municipality's database, the status request answers 202 (X-Progress) until the manifest is
 * ready, and DELETE cancels a job or releases its files. Only the clerk who asked sees a job.
 * Files hold JP Core Patients and Immunizations built by the same serialisers as the API: no My
 * Number, no code (符号), listed fields only.
 */
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import { AppError, notFound } from '../../../../shared/platform/errors.ts';
import { Actions } from '../../access-log/actions.ts';
import { logStaffAccess } from '../../access-log/service.ts';
import type { MunicipalityContext } from '../../context.ts';
import { residentsAfter } from '../../residents/model.ts';
import { toPatient } from '../../residents/fhir.ts';
import type { Actor } from '../../staff/roles.ts';
import { toJpImmunization } from '../../vaccinations/fhir.ts';
import { currentVersionsOfMany } from '../../vaccinations/model.ts';
import { calendarDate, dateTime } from '../../../../shared/platform/dates.ts';
import { badParameter } from '../outcomes.ts';
import {
  deleteFiles, findJob, insertFile, insertJob, listFiles, nextRunnableJob, readFile, setJobStatus, updateRunningJob, type ExportFileInfo, type ExportJob,
} from './model.ts';

/** The resource types this server exports (Bulk Data IG `_type`). */
export const EXPORT_TYPES = ['Patient', 'Immunization'] as const;
export const NDJSON = 'application/fhir+ndjson';
const OUTPUT_FORMATS = [NDJSON, 'application/ndjson', 'ndjson'];
/** Residents read per step: the job's progress moves, and a cancel is seen, between steps. */
const RESIDENTS_PER_STEP = 200;
/** Resources per NDJSON file. */
const LINES_PER_FILE = 1000;

export interface KickOff {
  level: 'system' | 'patient';
  types: string[];
  since: string | null;
  requestUrl: string;
}

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The kick-off parameters (Bulk Data IG, "Query Parameters"): `_outputFormat`, `_type`, `_since`.
 * Parameters this server does not support (`_typeFilter`, `patient`, `_elements`, …) are
 * refused, not ignored, so a client never receives more than it asked for.
 */
export function parseKickOff(query: Record<string, unknown>, headers: { prefer?: string; accept?: string }): Omit<KickOff, 'level' | 'requestUrl'> {
  if (!/(^|[,;\s])respond-async($|[,;\s])/.test(headers.prefer ?? '')) throw badParameter('Prefer', 'must be respond-async (the export is asynchronous)');
  const accept = headers.accept;
  if (accept && !/application\/fhir\+json|application\/json|\*\/\*/.test(accept)) throw badParameter('Accept', 'must accept application/fhir+json');
  for (const key of Object.keys(query)) {
    if (!['_outputFormat', '_type', '_since'].includes(key)) throw badParameter(key, 'is not supported by this export (supported: _outputFormat, _type, _since)');
  }
  const one = (name: string): string | undefined => {
    const v = query[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw badParameter(name, 'must be given once');
    return v;
  };
  const format = one('_outputFormat');
  if (format !== undefined && !OUTPUT_FORMATS.includes(format)) throw badParameter('_outputFormat', `must be one of ${OUTPUT_FORMATS.join(', ')}`);
  const typeParam = one('_type');
  const types = typeParam === undefined ? [...EXPORT_TYPES] : [...new Set(typeParam.split(',').map((t) => t.trim()))];
  const unknown = types.find((t) => !(EXPORT_TYPES as readonly string[]).includes(t));
  if (types.length === 0 || unknown !== undefined) throw badParameter('_type', `must list resource types of ${EXPORT_TYPES.join(', ')}`);
  const since = one('_since');
  if (since !== undefined) {
    // A FHIR instant (seconds and a zone required), then the project's one date validator: a real
    // calendar day in the plausible range (2026-02-30 is refused, not read as 2026-03-02; no year 0000 or 9999).
    if (!INSTANT.test(since)) throw badParameter('_since', 'must be a FHIR instant, e.g. 2024-04-01T00:00:00Z');
    const issue = (calendarDate().safeParse(since.slice(0, 10)).error ?? dateTime().safeParse(since).error)?.issues[0];
    if (issue) throw badParameter('_since', issue.message);
  }
  return { types, since: since === undefined ? null : new Date(since).toISOString() };
}

/** Stores the job (in-progress) and logs the request; the runner does the rest. */
export async function startExport(ctx: MunicipalityContext, t: Transaction, kickOff: KickOff, actor: Actor): Promise<ExportJob> {
  const job = await insertJob(ctx.models.FhirExportJob, {
    id: randomUUID(), level: kickOff.level, types: kickOff.types.join(','), since: kickOff.since, requestedBy: actor.staffId,
    requestedByRole: actor.role, requestUrl: kickOff.requestUrl.slice(0, 1000), transactionTime: new Date().toISOString(), progress: 'queued',
  }, t);
  await logStaffAccess(ctx, t, actor, {
    action: Actions.FHIR_EXPORT_REQUEST, outcome: 'allowed', details: { jobId: job.id, level: job.level, types: job.types, since: job.since },
  });
  return job;
}

/** The job, for its requester only: anyone else (or a cancelled job) gets 404, as the IG's status URL is the requester's. */
export async function jobOf(ctx: MunicipalityContext, id: string, actor: Actor, t?: Transaction): Promise<ExportJob> {
  const job = /^[0-9a-f-]{36}$/.test(id) ? await findJob(ctx.models.FhirExportJob, id, t) : null;
  if (!job || job.requestedBy !== actor.staffId || job.status === 'cancelled') throw notFound('Export job');
  return job;
}

export const exportFiles = (ctx: MunicipalityContext, jobId: string): Promise<ExportFileInfo[]> => listFiles(ctx.models.FhirExportFile, jobId);

/** One NDJSON file of a completed job of this clerk; logs the download. */
export async function downloadFile(ctx: MunicipalityContext, t: Transaction, jobId: string, fileId: number, actor: Actor): Promise<string> {
  const job = await jobOf(ctx, jobId, actor, t);
  if (job.status !== 'completed') throw notFound('Export file');
  const file = await readFile(ctx.models.FhirExportFile, jobId, fileId, t);
  if (!file) throw notFound('Export file');
  await logStaffAccess(ctx, t, actor, {
    action: Actions.FHIR_EXPORT_DOWNLOAD, outcome: 'allowed', details: { jobId, type: file.type, file: file.seq, count: file.count },
  });
  return file.content;
}

/** DELETE on the status URL: cancels a running job, or releases a finished one's files. Logged. */
export async function cancelExport(ctx: MunicipalityContext, t: Transaction, jobId: string, actor: Actor): Promise<void> {
  const job = await jobOf(ctx, jobId, actor, t);
  await setJobStatus(ctx.models.FhirExportJob, job.id, 'cancelled', t);
  await deleteFiles(ctx.models.FhirExportFile, job.id, t);
  await logStaffAccess(ctx, t, actor, { action: Actions.FHIR_EXPORT_CANCEL, outcome: 'allowed', details: { jobId, was: job.status } });
}

/**
 * Runs one job from the start (a job interrupted by a restart is run again: its files are
 * removed first). Residents are read in id order, a step at a time; after each step the job's
 * progress is written, and a cancel in between stops it. Ends completed, with one access-log
 * entry under the requesting clerk that says what was read.
 */
export async function runExport(ctx: MunicipalityContext, job: ExportJob): Promise<void> {
  const { FhirExportJob, FhirExportFile } = ctx.models;
  await deleteFiles(FhirExportFile, job.id);
  const wanted = new Set(job.types);
  const since = job.since;
  const total = await ctx.models.Resident.count();
  const buffers = new Map<string, string[]>();
  const seqs = new Map<string, number>();
  const counts: Record<string, number> = {};
  const flush = async (type: string, force: boolean) => {
    const lines = buffers.get(type) ?? [];
    while (lines.length >= LINES_PER_FILE || (force && lines.length > 0)) {
      const chunk = lines.splice(0, LINES_PER_FILE);
      const seq = (seqs.get(type) ?? 0) + 1;
      seqs.set(type, seq);
      await insertFile(FhirExportFile, { jobId: job.id, type, seq, count: chunk.length, content: `${chunk.join('\n')}\n` });
    }
  };
  const add = (type: string, resource: unknown) => {
    const list = buffers.get(type) ?? [];
    list.push(JSON.stringify(resource));
    buffers.set(type, list);
    counts[type] = (counts[type] ?? 0) + 1;
  };
  let after: string | null = null;
  let done = 0;
  for (;;) {
    const residents = await residentsAfter(ctx.models.Resident, after, RESIDENTS_PER_STEP);
    if (residents.length === 0) break;
    after = residents[residents.length - 1]!.id;
    const records = wanted.has('Immunization') ? await currentVersionsOfMany(ctx.models.VaccinationRecord, residents.map((r) => r.id)) : new Map();
    for (const resident of residents) {
      if (wanted.has('Patient') && (since === null || resident.updatedAt >= since)) add('Patient', toPatient(resident, ctx.config.MUNICIPALITY_CODE));
      for (const v of records.get(resident.id) ?? []) {
        if (since === null || v.createdAt >= since) add('Immunization', toJpImmunization(v, { reference: `Patient/${resident.id}`, type: 'Patient' }));
      }
    }
    for (const type of buffers.keys()) await flush(type, false);
    done += residents.length;
    if (!(await updateRunningJob(FhirExportJob, job.id, { progress: `${done} of ${total} residents read` }))) {
      await deleteFiles(FhirExportFile, job.id);
      return;
    }
  }
  for (const type of buffers.keys()) await flush(type, true);
  await ctx.sequelize.transaction(async (t) => {
    if (!(await updateRunningJob(FhirExportJob, job.id, { status: 'completed', progress: `${done} of ${total} residents read`, completedAt: new Date().toISOString() }, t))) {
      await deleteFiles(FhirExportFile, job.id, t);
      return;
    }
    await logStaffAccess(ctx, t, { staffId: job.requestedBy, role: job.requestedByRole as Actor['role'], municipality: ctx.config.MUNICIPALITY_CODE }, {
      action: Actions.FHIR_EXPORT_RUN, outcome: 'allowed', details: { jobId: job.id, residents: done, resources: counts, since },
    });
  });
}

export interface ExportRunner {
  /** Runs waiting jobs now. */
  kick(): void;
  /** Lets the job in hand finish its step, then stops. */
  stop(): Promise<void>;
}

/**
 * The export runner of one municipality process: one job at a time, oldest first, until none
 * is waiting; on start it resumes whatever a previous run left in progress.
 */
export function startExportRunner(ctx: MunicipalityContext): ExportRunner {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const work = async () => {
    for (let job = await nextRunnableJob(ctx.models.FhirExportJob); job && !stopped; job = await nextRunnableJob(ctx.models.FhirExportJob)) {
      try {
        await runExport(ctx, job);
      } catch (err) {
        ctx.logger.error({ err, jobId: job.id }, 'export failed');
        await updateRunningJob(ctx.models.FhirExportJob, job.id, { status: 'failed', error: 'The export failed; see the service log' });
      }
    }
  };
  const round = (): void => {
    if (stopped) return;
    if (running) { again = true; return; }
    running = work()
      .catch((err) => ctx.logger.error({ err }, 'export round failed'))
      .finally(() => {
        running = undefined;
        if (again) { again = false; round(); }
      });
  };
  setImmediate(round);
  return {
    kick: round,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

/** The manifest of a completed job (Bulk Data IG, "Response - Complete Status"). */
export function manifest(job: ExportJob, files: ExportFileInfo[], fileUrl: (file: ExportFileInfo) => string) {
  return {
    transactionTime: job.transactionTime,
    request: job.requestUrl,
    requiresAccessToken: true,
    output: files.map((f) => ({ type: f.type, url: fileUrl(f), count: f.count })),
    error: [] as { type: string; url: string }[],
  };
}

/** A failed job's status answer. */
export const exportFailed = (job: ExportJob) => new AppError(500, 'export-failed', job.error ?? 'The export failed');
