import { DataTypes, QueryTypes } from 'sequelize';
import type { Migration } from '../../../shared/platform/migrate.ts';
import { todayInJapan } from '../../../shared/platform/dates.ts';

/** The append-only tables that hold data about a resident: only the retention path may delete their rows. */
const RESIDENT_APPEND_ONLY = ['resident_notices', 'correction_notices'] as const;

/**
 * Retention by the national rule (docs/DESIGN.md §4.13):
 * - `residents.deceasedOn`, the calendar date (Japan) the death took effect, from which the
 *   periods run. A resident already deceased gets the Japanese date of the history entry that
 *   recorded the status change (the latest such entry; the row's update time when none is found).
 * - `retired_addressee_numbers`: the addressee numbers of residents removed by the rule, so that
 *   no new resident is ever given one of them again (docs/DESIGN.md §3.3).
 * - `retention_permits`: a row per resident being removed, inside the removal's own transaction.
 *   The append-only triggers of `resident_notices` and `correction_notices` keep refusing every
 *   UPDATE, and refuse a DELETE unless its row's resident holds a permit; the retention job
 *   writes the permit, deletes, and takes the permit away before it commits.
 */
export const retention: Migration = {
  name: '0006-retention',
  async up(s) {
    const { sequelize, transaction, queryInterface } = s;
    const columns = await queryInterface.describeTable('residents', { transaction } as never);
    if (!('deceasedOn' in columns)) {
      await queryInterface.addColumn('residents', 'deceasedOn', { type: DataTypes.STRING(10), allowNull: true }, { transaction });
    }
    const deceased = await sequelize.query<{ id: string; updatedAt: string | Date | null }>(
      `SELECT id, "updatedAt" FROM residents WHERE status = 'deceased' AND "deceasedOn" IS NULL`, { type: QueryTypes.SELECT, transaction },
    );
    for (const resident of deceased) {
      const history = await sequelize.query<{ changes: string; createdAt: string | Date | null }>(
        `SELECT changes, "createdAt" FROM resident_history WHERE "residentId" = $1 ORDER BY id DESC`,
        { type: QueryTypes.SELECT, transaction, bind: [resident.id] },
      );
      const recorded = history.find((h) => {
        try {
          return (JSON.parse(h.changes) as { field: string; to: unknown }[]).some((c) => c.field === 'status' && c.to === 'deceased');
        } catch {
          return false;
        }
      });
      const at = recorded?.createdAt ?? resident.updatedAt;
      const deceasedOn = todayInJapan(at ? new Date(at) : new Date());
      await sequelize.query('UPDATE residents SET "deceasedOn" = $1 WHERE id = $2', { transaction, bind: [deceasedOn, resident.id] });
    }

    await s.createTable('retired_addressee_numbers', {
      addresseeNumber: { type: DataTypes.STRING(10), allowNull: false, primaryKey: true },
      retiredOn: { type: DataTypes.STRING(10), allowNull: false },
      createdAt: { type: DataTypes.DATE, allowNull: true },
    });
    await s.createTable('retention_permits', {
      residentId: { type: DataTypes.STRING(36), allowNull: false, primaryKey: true },
    });

    for (const table of RESIDENT_APPEND_ONLY) {
      if (sequelize.getDialect() === 'sqlite') {
        await sequelize.query(`DROP TRIGGER IF EXISTS ${table}_no_delete`, { transaction });
        await sequelize.query(
          `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table}
           WHEN NOT EXISTS (SELECT 1 FROM retention_permits p WHERE p."residentId" = OLD."residentId")
           BEGIN SELECT RAISE(ABORT, '${table} is append-only (only the retention rule deletes)'); END`,
          { transaction },
        );
      } else {
        await sequelize.query(`CREATE OR REPLACE FUNCTION ${table}_append_only() RETURNS trigger AS $$
          BEGIN
            IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM retention_permits p WHERE p."residentId" = OLD."residentId") THEN
              RETURN OLD;
            END IF;
            RAISE EXCEPTION '${table} is append-only (only the retention rule deletes)';
          END; $$ LANGUAGE plpgsql`, { transaction });
        await sequelize.query(`DROP TRIGGER IF EXISTS ${table}_no_change ON ${table}`, { transaction });
        await sequelize.query(`CREATE TRIGGER ${table}_no_change BEFORE UPDATE OR DELETE ON ${table}
          FOR EACH ROW EXECUTE FUNCTION ${table}_append_only()`, { transaction });
      }
    }
  },
};
