import { pino, destination as pinoDestination, type Logger, type DestinationStream } from 'pino';
import { findMyNumberSpans, findMyNumbers } from '../identifiers.ts';
import { currentClientRequestId, currentRequestId } from './context.ts';

const REDACTED = '[redacted]';
/** Keys whose values are never logged, whatever they hold. */
const SECRET_KEYS = /^(my_?number|mynumber|password|passwordHash|token|authorization|cookie|secret|key|privateKey|sealed)$/i;

/** Replaces every valid My Number inside a string, in whatever notation it was written (SECURITY.md, threat model §2). */
export function scrubText(text: string): string {
  const spans = findMyNumberSpans(text);
  if (spans.length === 0) return text;
  let out = '';
  let at = 0;
  for (const span of spans) {
    out += text.slice(at, span.start) + REDACTED;
    at = span.end;
  }
  return out + text.slice(at);
}

/**
 * Deep copy with secrets removed: values under secret keys, and any valid My Number anywhere
 * (in values and in keys). Runs on every log line, so a My Number cannot reach a log even when
 * someone logs a whole request body by mistake.
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[depth]';
  if (typeof value === 'string') return scrubText(value);
  if (typeof value === 'number' && Number.isInteger(value)) {
    const text = String(value);
    return findMyNumbers(text).length ? REDACTED : value;
  }
  if (value instanceof Error) {
    return { type: value.name, message: scrubText(value.message), stack: value.stack ? scrubText(value.stack) : undefined };
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[scrubText(k)] = SECRET_KEYS.test(k) ? REDACTED : scrub(v, depth + 1);
    }
    return out;
  }
  return value;
}

export interface LoggerOptions {
  name: string;
  level?: string;
  destination?: DestinationStream;
}

/** Structured JSON logs; every line carries the request id and passes through `scrub`. */
export function createLogger({ name, level = 'info', destination }: LoggerOptions): Logger {
  return pino(
    {
      name,
      level,
      base: { member: name },
      mixin: () => {
        const requestId = currentRequestId();
        const clientRequestId = currentClientRequestId();
        return { ...(requestId ? { requestId } : {}), ...(clientRequestId ? { clientRequestId } : {}) };
      },
      formatters: { log: (object) => scrub(object) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          // Message strings and printf-style arguments are scrubbed too, not only objects.
          const cleaned = args.map((a) => (typeof a === 'string' ? scrubText(a) : a));
          return method.apply(this, cleaned as Parameters<typeof method>);
        },
      },
      serializers: { err: (err: unknown) => scrub(err) },
    },
    destination ?? pinoDestination({ dest: 1, sync: false }),
  );
}

/**
 * The `ready` line launchers wait for (scripts/federation.ts): written whatever the configured
 * level, since it is the process's signal to its supervisor, not a diagnostic.
 */
export function announceReady(logger: Logger, fields: Record<string, unknown>): void {
  logger.child({}, { level: 'info' }).info(fields, 'ready');
}
