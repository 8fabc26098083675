/**
 * The baseline's retrieval, as the centralized design does it: look every My Number up in the
 * shared table, take the records the other municipality entered, copy them into the receiving
 * municipality's partition (once), log the operation. One transaction per request, no crypto,
 * no hop: the work hikitsugi's protections are measured against.
 */
import { inTransaction } from '../../../shared/platform/db.ts';
import type { Sequelize } from 'sequelize';
import { copiedSourceIds, insertCopies, insertLog, originalRecordsOf, residentsByMyNumber, type CentralModels } from './model.ts';
import type { CentralQuery } from './schemas.ts';

export interface CentralOutcome {
  ref: string;
  status: 'ok' | 'not_found';
  recordCount: number;
  imported: number;
}

export async function retrieveHistories(sequelize: Sequelize, m: CentralModels, input: CentralQuery): Promise<CentralOutcome[]> {
  const rows = await residentsByMyNumber(m, [...new Set(input.myNumbers)]);
  const here = new Map<string, number>();
  const elsewhere = new Map<string, number[]>();
  for (const r of rows) {
    if (r.municipality === input.municipality && r.status === 'resident') here.set(r.myNumber, r.id);
    else if (r.municipality !== input.municipality) elsewhere.set(r.myNumber, [...(elsewhere.get(r.myNumber) ?? []), r.id]);
  }
  const sourceIds = [...elsewhere.values()].flat();
  const records = await originalRecordsOf(m, sourceIds);
  const byResident = new Map<number, typeof records>();
  for (const r of records) byResident.set(r.residentId, [...(byResident.get(r.residentId) ?? []), r]);

  return inTransaction(sequelize, async (t) => {
    const targets = [...here.values()];
    const held = await copiedSourceIds(m, targets, t);
    const copies = [];
    const at = new Date().toISOString();
    const log = [];
    const outcomes: CentralOutcome[] = [];
    for (const [index, myNumber] of input.myNumbers.entries()) {
      const target = here.get(myNumber);
      const found = (elsewhere.get(myNumber) ?? []).flatMap((id) => byResident.get(id) ?? []);
      if (target === undefined || !elsewhere.has(myNumber)) {
        outcomes.push({ ref: String(index), status: 'not_found', recordCount: 0, imported: 0 });
        continue;
      }
      let imported = 0;
      for (const r of found) {
        if (held.has(`${target}|${r.recordId}`)) continue;
        held.add(`${target}|${r.recordId}`);
        imported += 1;
        copies.push({
          municipality: input.municipality, residentId: target, recordId: r.recordId, occurrenceDate: r.occurrenceDate,
          vaccineCode: r.vaccineCode, lotNumber: r.lotNumber, doseNumber: r.doseNumber, place: r.place, status: r.status,
          sourceMunicipality: r.municipality, sourceRecordId: r.recordId,
        });
      }
      log.push({ at, municipality: input.municipality, action: 'history.retrieve', residentId: target, detail: JSON.stringify({ records: found.length, imported }) });
      outcomes.push({ ref: String(index), status: 'ok', recordCount: found.length, imported });
    }
    await insertCopies(m, copies, t);
    await insertLog(m, log, t);
    return outcomes;
  });
}
