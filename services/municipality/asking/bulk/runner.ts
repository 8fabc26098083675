/**
 * The bulk-job runner of one municipality process: works through due chunks until none is left,
 * then sleeps until the next tick or a `kick()` (new job, on-demand retry). One round at a time,
 * so two chunks of this database never run at once. On start it simply finds what is due: a job
 * interrupted by a crash or a restart resumes from its subject rows.
 */
import type { MunicipalityContext } from '../../context.ts';
import type { FederationLink } from '../../federation/link.ts';
import { runNextChunk } from './service.ts';

export interface BulkRunner {
  /** Runs a round now instead of at the next tick. */
  kick(): void;
  /** Finishes the chunk in hand (never leaves one half-written), then stops. */
  stop(): Promise<void>;
}

export function startBulkRunner(ctx: MunicipalityContext, fed: FederationLink, tickMs = 1000): BulkRunner {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let wake: (() => void) | undefined;

  const pause = (ms: number) => new Promise<void>((resolve) => {
    if (ms <= 0 || stopped) return resolve();
    const timer = setTimeout(() => { wake = undefined; resolve(); }, ms);
    wake = () => { clearTimeout(timer); wake = undefined; resolve(); };
  });

  const work = async () => {
    while (!stopped) {
      const handled = await runNextChunk(ctx, fed);
      if (handled === 0) break;
      await pause(ctx.config.BULK_CHUNK_PAUSE_MS);
    }
  };

  const round = (): void => {
    if (stopped) return;
    if (running) { again = true; return; }
    running = work()
      .catch((err) => ctx.logger.error({ err }, 'bulk round failed'))
      .finally(() => {
        running = undefined;
        if (again) { again = false; round(); }
      });
  };

  const timer = setInterval(round, tickMs);
  timer.unref();
  // Resume whatever a previous run of this process left behind.
  setImmediate(round);
  return {
    kick: round,
    async stop() {
      stopped = true;
      clearInterval(timer);
      wake?.();
      await running;
    },
  };
}
