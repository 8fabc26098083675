import { oprfKeyRefusal } from '../crypto.ts';
import { secretKey } from '../platform/config.ts';

/**
 * A member's share of the code derivation's OPRF key (docs/DESIGN.md §3.4): a secret like any
 * other (32 bytes, hex or base64, no default), and a P-256 scalar in [1, n−1]. The issuer and the
 * gateway each configure their own under `OPRF_KEY`.
 */
export const oprfKey = (name: string) => secretKey(name).superRefine((key, ctx) => {
  const refusal = oprfKeyRefusal(key);
  if (refusal) ctx.addIssue({ code: 'custom', message: `${name} ${refusal}` });
});
