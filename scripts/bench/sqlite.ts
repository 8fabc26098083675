/**
 * Read-only peeks into a running member's SQLite file (WAL: a reader never blocks the member).
 * The benchmark watches the registration outbox drain this way instead of logging in as an
 * operator at every municipality (1,741 scrypt logins would cost more than the watch itself).
 */
import sqlite from '../../shared/platform/sqlite-driver.ts';

export function readScalar(file: string, sql: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const db = new sqlite.Database(file, sqlite.OPEN_READONLY, (openErr) => {
      if (openErr) return reject(openErr);
      db.get(sql, (err, row) => {
        db.close();
        if (err) return reject(err);
        const value = row ? Object.values(row as Record<string, unknown>)[0] : 0;
        resolve(Number(value ?? 0));
      });
    });
  });
}
