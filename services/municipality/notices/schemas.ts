import { z } from 'zod';
import { NOTICE_CHANNELS } from './model.ts';

/** Resident notification settings (spread into the municipality's config schema). */
export const noticeConfigShape = {
  /** How notices of cross-municipality access reach residents: by post, or in the resident portal. */
  NOTICE_CHANNEL: z.enum(NOTICE_CHANNELS).default('mail'),
  /** Seconds between rounds of the notice worker (new notices from the log, then delivery); 0 = on demand only. */
  NOTICE_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(86_400).default(30),
};
