/**
 * The one replay check of the federation: records a message's jti in a member's replay table
 * (primary key: issuer and jti) and says whether it was new. One statement, the primary key
 * deciding, so two copies arriving at once cannot both be new, on SQLite and on PostgreSQL alike.
 */
import { QueryTypes, type Model, type ModelStatic, type Transaction } from 'sequelize';
import { requirePlainNames } from '../platform/db.ts';

export async function rememberOnce(table: ModelStatic<Model>, row: Record<string, string | number>, transaction?: Transaction): Promise<boolean> {
  const columns = Object.keys(row);
  requirePlainNames('rememberOnce', columns);
  // The leading comment keeps Sequelize's SQLite dialect from treating this as a plain INSERT,
  // which it runs without returning rows; RETURNING is what tells a new jti from a replay.
  const rows = await table.sequelize!.query(
    `/* replay check */ INSERT INTO "${table.getTableName() as string}" (${columns.map((c) => `"${c}"`).join(', ')})
     VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT DO NOTHING RETURNING "${columns[0]}"`,
    { type: QueryTypes.SELECT, bind: Object.values(row), transaction },
  );
  return rows.length === 1;
}
