/**
 * The queue side of every outbox and relay (a municipality's correction notices and consent
 * revocations, the gateway's relays of both): rows wait as `pending` with the time of their next
 * attempt, are taken oldest-due first, and change only while still pending — a state once final
 * stays final. Each table keeps its own model and columns; this is the one way they are queued.
 */
import { Op, type Model, type ModelStatic, type Transaction, type WhereOptions } from 'sequelize';

// The queue needs only these columns; each table's model has them and more.
type Queue = ModelStatic<Model>;

/** Pending rows due by `now`, the longest-waiting first. */
export async function duePending<Row>(M: Queue, now: Date, limit: number): Promise<Row[]> {
  return (await M.findAll({
    where: { status: 'pending', nextAttemptAt: { [Op.lte]: now.toISOString() } } as WhereOptions,
    order: [['nextAttemptAt', 'ASC'], ['createdAt', 'ASC']], limit, raw: true,
  })) as unknown as Row[];
}

/** Changes a row only while it is pending. */
export async function updatePending(M: Queue, id: string, values: Record<string, unknown>, transaction?: Transaction): Promise<void> {
  await M.update(values, { where: { id, status: 'pending' } as WhereOptions, transaction });
}

/** The latest rows (of one status, or all) and the count per status, as operators watch a queue. */
export async function listQueue<Row>(M: Queue, statuses: readonly string[], status: string | undefined, limit: number): Promise<{ rows: Row[]; counts: Record<string, number> }> {
  const rows = (await M.findAll({ where: (status ? { status } : {}) as WhereOptions, order: [['createdAt', 'DESC']], limit, raw: true })) as unknown as Row[];
  const grouped = await M.count({ group: ['status'] }) as unknown as { status: string; count: number }[];
  const counts: Record<string, number> = Object.fromEntries(statuses.map((s) => [s, 0]));
  for (const g of grouped) counts[g.status] = Number(g.count);
  return { rows, counts };
}
