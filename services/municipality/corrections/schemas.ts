import { z } from 'zod';
import { OUTBOX_STATUSES } from './model.ts';

/** What the gateway relays to a recipient: A's signed notice, unchanged. */
export const relayedNoticeSchema = z.object({
  notice: z.string({ error: 'is required' }).min(1, 'is required').max(400_000, 'must be at most 400000 characters'),
}).strict();

/** Filter of the sender's outbox view (operators watch delivery). */
export const outboxQuerySchema = z.object({
  status: z.enum(OUTBOX_STATUSES, { error: `must be one of ${OUTBOX_STATUSES.join(', ')}` }).optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(500, 'must be at most 500').default(100),
}).strict();
export type OutboxQuery = z.infer<typeof outboxQuerySchema>;
