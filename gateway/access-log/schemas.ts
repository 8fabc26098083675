import { z } from 'zod';
import { requestIdSchema } from '../../shared/platform/validation.ts';
import { dateTimeFilter } from '../../shared/platform/dates.ts';

const memberId = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be a member id (a municipality code, gateway or issuer)');
const time = dateTimeFilter();
const seq = z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be at least 0');

/** POST /checkpoints: a member's signed checkpoint of its own head. */
export const submitCheckpointSchema = z.object({
  jws: z.string().min(1, 'is required').max(10_000, 'must be at most 10000 characters'),
}).strict();

/** GET /checkpoints: what the gateway holds about `member` (its own when `gateway`), from seq `fromSeq` on. */
export const listCheckpointsQuery = z.object({
  member: memberId,
  fromSeq: seq.default(0),
}).strict();

export const MEMBER_ENTRIES_PAGE = 1000;

/** GET /audit/entries: the gateway's entries about the asking municipality's exchanges. */
export const memberEntriesQuery = z.object({
  member: memberId,
  requestId: requestIdSchema.optional(),
  from: time.optional(),
  to: time.optional(),
  /** Seq of the last entry of the previous page (pages run oldest first). */
  after: seq.default(0),
  limit: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1')
    .max(MEMBER_ENTRIES_PAGE, `must be at most ${MEMBER_ENTRIES_PAGE}`).default(MEMBER_ENTRIES_PAGE),
}).strict().refine((q) => !q.from || !q.to || q.from <= q.to, { message: 'must not be before from', path: ['to'] });

export type MemberEntriesQuery = z.infer<typeof memberEntriesQuery>;
