/**
 * Host mode (docs/DESIGN.md §7): many municipality instances in one process, for simulating the
 * whole country on one machine. Each instance is still a municipality of its own — its own
 * database file, its own data key and session secret, its own certificates (its own mTLS
 * client and server), its own two ports and its own log file — built by the same
 * `createMunicipality` a single-municipality process uses. What the instances share is only
 * what cannot differ between them: the process, and the federation directory as verified
 * against the CA (verifying 3,482 certificates once per host instead of once per instance,
 * and holding the keys once in memory).
 *
 *   HOST_PLAN=<plan.json> node --import tsx services/municipality/host.ts
 *
 * The plan is `{ "instances": [{ "env": {…one municipality's environment…}, "logFile": "…" }] }`
 * (mode 0600: it holds data keys). The host logs `ready` once every instance listens.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { destination, type Logger } from 'pino';
import { z } from 'zod';
import { createDirectoryClient, type Directory } from '../../shared/federation/directory.ts';
import { announceReady, createLogger } from '../../shared/platform/log.ts';
import { closeMemberServer, createMemberClient, listenMember, type MemberClient } from '../../shared/federation/member-http.ts';
import { loadMemberCredentials } from '../../shared/federation/pki.ts';
import { createRevocationGuard, gatewayRevocationSource, type RevocationGuard } from '../../shared/federation/revocation.ts';
import { closeServer, listen, memberProcessStackTraces, onShutdown } from '../../shared/platform/server.ts';
import { createMunicipality, type Municipality } from './app.ts';
import { loadMunicipalityConfig } from './config.ts';
import { isMainModule } from '../../shared/platform/main-module.ts';

export const hostPlanSchema = z.object({
  instances: z.array(z.object({
    env: z.record(z.string(), z.string()),
    /** Where this instance's log lines go (its own file, as a single-instance process's stdout would). */
    logFile: z.string().min(1).optional(),
  })).min(1, 'must list at least one instance'),
});
export type HostPlan = z.infer<typeof hostPlanSchema>;

export interface HostedInstance {
  code: string;
  url: string;
  federationUrl?: string;
  municipality: Municipality;
}

export interface Host {
  instances: HostedInstance[];
  /** Milliseconds from the first instance's start to the last one listening. */
  startupMs: number;
  close(): Promise<void>;
}

/**
 * Seconds between outbox polls (code registration, bulk jobs, correction notices) of each hosted
 * instance. A single instance polls every 1–2 s; 1,741 of them doing so on one machine spend more
 * than its two cores on empty polls (BENCHMARKS.md). New work still kicks an outbox at once; the
 * tick only picks up retries and work written while the instance was down.
 */
export const HOST_OUTBOX_POLL_SECONDS = 30;

/**
 * Registration calls (batches of residents) each hosted instance has in flight at once; a single
 * instance has 4. With 1,741 instances at 8 calls of one resident each, the issuer faced ~14,000
 * TLS handshakes at the first poll, refused most, and residents fell into backoff for minutes.
 */
export const HOST_REGISTRATION_CONCURRENCY = 1;

export interface HostOptions {
  /** Instances being opened at once (schema preparation waits on SQLite's threads). */
  concurrency?: number;
  /** See HOST_OUTBOX_POLL_SECONDS; 0 keeps each instance's own defaults. */
  outboxPollSeconds?: number;
  /** The host's own log (start, progress, failures); instances log to their own files. */
  logger?: Logger;
}

/**
 * Starts every instance of the plan and resolves once all listen. One instance that fails to
 * start stops the whole host: a federation with a silently missing member would skew any run.
 */
export async function startHost(plan: HostPlan, options: HostOptions = {}): Promise<Host> {
  const started = performance.now();
  const hostLog = options.logger ?? createLogger({ name: 'municipality-host' });
  const configs = plan.instances.map((i) => ({ config: loadMunicipalityConfig(i.env), logFile: i.logFile }));

  // One verified directory per host, fetched with the first instance's own certificate.
  // One revocation list too, refreshed by the host and kept in every instance's own database.
  let shared: { directory: Directory; client: MemberClient; revocations: RevocationGuard } | undefined;
  const first = configs[0]!.config;
  if (first.CERT_DIR && first.GATEWAY_URL && first.ISSUER_URL) {
    const credentials = loadMemberCredentials(first.CERT_DIR);
    const client = createMemberClient(credentials);
    const revocations = createRevocationGuard({
      ca: credentials.ca, source: gatewayRevocationSource(client, first.GATEWAY_URL), logger: hostLog,
      refreshSeconds: first.REVOCATION_REFRESH_SECONDS, graceSeconds: first.REVOCATION_GRACE_SECONDS,
    });
    await revocations.refresh().catch((err: Error) => hostLog.warn({ err: err.message }, 'revocation list not loaded at start'));
    revocations.start();
    shared = { client, revocations, directory: createDirectoryClient(client, first.GATEWAY_URL, credentials.ca, revocations) };
  }

  const instances: HostedInstance[] = [];
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    await Promise.all(closers.map((c) => c()));
    await shared?.revocations.stop();
    for (const i of instances) await i.municipality.close();
    shared?.client.close();
  };

  let next = 0;
  const startOne = async ({ config, logFile }: (typeof configs)[number]) => {
    if (logFile) mkdirSync(dirname(logFile), { recursive: true });
    const logger = createLogger({
      name: `municipality-${config.MUNICIPALITY_CODE}`, level: config.LOG_LEVEL,
      ...(logFile ? { destination: destination({ dest: logFile, sync: false, append: true }) } : {}),
    });
    const poll = options.outboxPollSeconds ?? HOST_OUTBOX_POLL_SECONDS;
    const municipality = await createMunicipality(config, logger, {
      directory: shared?.directory, registrationConcurrency: HOST_REGISTRATION_CONCURRENCY, ...(poll > 0 ? { outboxPollSeconds: poll } : {}),
    });
    const { server, url } = await listen(municipality.staffApp, config.PORT, config.HOST);
    closers.push(() => closeServer(server));
    let federationUrl: string | undefined;
    if (municipality.federationServer && config.FEDERATION_PORT !== undefined) {
      federationUrl = await listenMember(municipality.federationServer, config.FEDERATION_PORT, config.HOST);
      const federationServer = municipality.federationServer;
      closers.push(() => closeMemberServer(federationServer));
    }
    instances.push({ code: config.MUNICIPALITY_CODE, url, federationUrl, municipality });
    // The same line a single-instance process logs, in the instance's own log.
    announceReady(logger, { url, federationUrl, code: config.MUNICIPALITY_CODE, name: config.MUNICIPALITY_NAME, host: process.pid });
  };
  const worker = async () => {
    while (next < configs.length) {
      const item = configs[next++]!;
      await startOne(item);
      if (instances.length % 100 === 0) hostLog.info({ started: instances.length, of: configs.length }, 'instances started');
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 8, configs.length)) }, worker));
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  return { instances, startupMs: performance.now() - started, close };
}

if (isMainModule(import.meta.url)) {
  memberProcessStackTraces();
  const planFile = process.env.HOST_PLAN;
  if (!planFile) throw new Error('HOST_PLAN (a host plan JSON file) is required');
  const plan = hostPlanSchema.parse(JSON.parse(readFileSync(planFile, 'utf8')));
  const logger = createLogger({ name: 'municipality-host', level: process.env.LOG_LEVEL ?? 'info' });
  const host = await startHost(plan, {
    logger, concurrency: Number(process.env.HOST_CONCURRENCY ?? 8),
    outboxPollSeconds: Number(process.env.HOST_OUTBOX_POLL_SECONDS ?? HOST_OUTBOX_POLL_SECONDS),
  });
  // Launchers wait for this line.
  announceReady(logger, { instances: host.instances.length, startupMs: Math.round(host.startupMs), codes: host.instances.length <= 20 ? host.instances.map((i) => i.code) : undefined });
  onShutdown(() => host.close());
}
