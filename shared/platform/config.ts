import { z } from 'zod';
import { isValidMunicipalityCode } from '../identifiers.ts';

/**
 * The one config loader: a zod schema per member, parsed once at startup from the environment.
 * A bad or missing value stops the process with every problem listed; secrets have no defaults.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>, member: string): z.infer<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`Invalid configuration for ${member}:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** A 32-byte key from its hex or base64 form (configuration holds keys as text). */
export function parseKey(text: string, name: string): Buffer {
  const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new Error(`${name} must be 32 bytes (64 hex characters or base64)`);
  return key;
}

/* Building blocks that member schemas share. */
export const port = z.coerce.number().int().min(0).max(65535);
export const host = z.string().default('127.0.0.1');
export const municipalityCode = z.string().refine(isValidMunicipalityCode, 'must be a 6-digit municipality code with a valid check digit');
export const secretKey = (name: string) => z.string({ error: `${name} is required (no default for secrets)` })
  .transform((text, ctx) => {
    try {
      return parseKey(text, name);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });
export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');
