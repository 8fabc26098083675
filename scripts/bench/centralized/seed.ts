/** Loads the benchmark's population into the baseline's one database: the same people and records. */
import { openDatabase } from '../../../shared/platform/db.ts';
import type { Dataset } from '../dataset.ts';
import { prepareCentralSchema } from './app.ts';

const CHUNK = 400;

export async function seedCentral(storage: string, dataset: Dataset): Promise<{ residents: number; records: number }> {
  const sequelize = await openDatabase({ storage });
  try {
    const m = await prepareCentralSchema(sequelize);
    let residents = 0;
    let records = 0;
    await sequelize.transaction(async (t) => {
      for (let i = 0; i < dataset.transfers.length; i += CHUNK) {
        const part = dataset.transfers.slice(i, i + CHUNK);
        const person = (p: (typeof part)[number]['person']) => ({ myNumber: p.myNumber, name: p.name, kana: p.kana, birthDate: p.birthDate, sex: p.sex });
        // Explicit ids: the records below point at the source rows without reading them back.
        await m.Resident.bulkCreate(part.map((x, k) => ({
          id: 2 * (i + k) + 1, ...person(x.person), municipality: x.source, addresseeNumber: x.person.addresseeNumber, address: `自治体${x.source}本町1番地`, status: 'moved-out',
        })), { transaction: t });
        await m.Resident.bulkCreate(part.map((x, k) => ({
          id: 2 * (i + k) + 2, ...person(x.person), municipality: x.receiver, addresseeNumber: x.receiverAddressee, address: x.receiverAddress, status: 'resident',
        })), { transaction: t });
        residents += part.length * 2;
        const rows = part.flatMap((x, k) => x.person.records.map((r) => ({
          municipality: x.source, residentId: 2 * (i + k) + 1, recordId: crypto.randomUUID(), occurrenceDate: r.occurrenceDate,
          vaccineCode: r.vaccineCode, lotNumber: r.lotNumber, doseNumber: r.doseNumber, place: r.place, status: 'completed',
          sourceMunicipality: null, sourceRecordId: null,
        })));
        for (let j = 0; j < rows.length; j += CHUNK) await m.VaccinationRecord.bulkCreate(rows.slice(j, j + CHUNK), { transaction: t });
        records += rows.length;
      }
    });
    return { residents, records };
  } finally {
    await sequelize.close();
  }
}
