import { expect } from 'chai';
import fc from 'fast-check';
import { allProducts, CATALOGUE_SYSTEM, CVX_SYSTEM, findProduct, findProductByCoding } from '../../services/municipality/vaccinations/catalogue.ts';
import {
  checkAgainstBirth, checkDoseSequence, checkRecordFields, nextDoseNumber, seasonOf, type ExistingDose,
} from '../../services/municipality/vaccinations/rules.ts';
import { isCalendarDate, todayInJapan } from '../../shared/platform/dates.ts';

const TODAY = '2024-06-30';
const valid = { vaccineCode: 'covid19-comirnaty', lotNumber: 'FF3620', doseNumber: 1, occurrenceDate: '2021-06-01' };
const dose = (recordId: string, vaccineCode: string, doseNumber: number, occurrenceDate: string): ExistingDose => ({ recordId, vaccineCode, doseNumber, occurrenceDate });

describe('vaccination record rules', () => {
  describe('dates', () => {
    it('when a date is a real calendar day in YYYY-MM-DD, then it is accepted; otherwise refused', () => {
      for (const ok of ['2024-02-29', '2021-12-31', '1900-01-01']) expect(isCalendarDate(ok), ok).to.equal(true);
      for (const bad of ['2023-02-29', '2021-13-01', '2021-04-31', '2021-6-1', '20210601', '2021-06-01T00:00:00Z', '', 20210601, null]) {
        expect(isCalendarDate(bad), String(bad)).to.equal(false);
      }
    });

    it('when it is 15:30 UTC on 31 March, then it is already 1 April in Japan', () => {
      expect(todayInJapan(new Date('2024-03-31T15:30:00Z'))).to.equal('2024-04-01');
      expect(todayInJapan(new Date('2024-03-31T14:59:59Z'))).to.equal('2024-03-31');
    });

    it('when a seasonal dose falls between September and August, then it belongs to the season that began in September', () => {
      expect(seasonOf('2023-10-15')).to.equal(2023);
      expect(seasonOf('2024-01-20')).to.equal(2023);
      expect(seasonOf('2024-08-31')).to.equal(2023);
      expect(seasonOf('2024-09-01')).to.equal(2024);
    });
  });

  describe('fields against the catalogue', () => {
    it('when every field is right, then there is no violation', () => {
      expect(checkRecordFields(valid, TODAY)).to.deep.equal([]);
    });

    it('when the date is after today, then occurrenceDate must not be in the future', () => {
      expect(checkRecordFields({ ...valid, occurrenceDate: '2024-07-01' }, TODAY)).to.deep.equal([{ field: 'occurrenceDate', rule: 'must not be in the future' }]);
      expect(checkRecordFields({ ...valid, occurrenceDate: TODAY }, TODAY)).to.deep.equal([]);
    });

    it('when the vaccine is not in the catalogue, then vaccineCode is named', () => {
      expect(checkRecordFields({ ...valid, vaccineCode: 'snake-oil' }, TODAY).map((v) => v.field)).to.deep.equal(['vaccineCode']);
    });

    it('when the lot does not have the product format, then lotNumber is named with an example', () => {
      const [violation] = checkRecordFields({ ...valid, lotNumber: 'F3620' }, TODAY);
      expect(violation).to.deep.equal({ field: 'lotNumber', rule: 'must match the lot format of covid19-comirnaty (e.g. FF3620)' });
      expect(checkRecordFields({ ...valid, vaccineCode: 'covid19-spikevax', lotNumber: 'FF3620' }, TODAY).map((v) => v.field)).to.deep.equal(['lotNumber']);
    });

    it('when the dose is outside 1..maxDoses of the product, then doseNumber is named with the range', () => {
      expect(checkRecordFields({ ...valid, vaccineCode: 'bcg', lotNumber: 'KH123', doseNumber: 2 }, TODAY)).to.deep.equal([{ field: 'doseNumber', rule: 'must be between 1 and 1 for bcg' }]);
      expect(checkRecordFields({ ...valid, doseNumber: 0 }, TODAY).map((v) => v.field)).to.deep.equal(['doseNumber']);
      expect(checkRecordFields({ ...valid, doseNumber: 1.5 }, TODAY).map((v) => v.field)).to.deep.equal(['doseNumber']);
    });

    it('when a dose precedes the birth date, then occurrenceDate is named', () => {
      expect(checkAgainstBirth('2021-06-01', '2021-06-02')).to.deep.equal([{ field: 'occurrenceDate', rule: 'must not be before the birth date' }]);
      expect(checkAgainstBirth('2021-06-02', '2021-06-02')).to.deep.equal([]);
    });

    it('when the catalogue is loaded, then every product has a series, a lot example matching its format, and unique codes', () => {
      const products = allProducts();
      expect(products.length).to.be.greaterThan(20);
      expect(new Set(products.map((p) => p.code)).size).to.equal(products.length);
      for (const p of products) {
        expect(p.lot.test(p.lotExample), p.code).to.equal(true);
        expect(p.seriesDisplay, p.code).to.be.a('string').and.not.equal('');
      }
      expect(findProduct('covid19-daichirona')?.cvx).to.equal(undefined);
    });

    it('when a coding names a product by our code, HOT9 (URI or OID), YJ or CVX, then that product is found; an unknown system or a code of two products is not', () => {
      expect(findProductByCoding(CATALOGUE_SYSTEM, 'covid19-spikevax')?.code).to.equal('covid19-spikevax');
      expect(findProductByCoding(CVX_SYSTEM, '208')?.code).to.equal('covid19-comirnaty');
      expect(findProductByCoding('http://medis.or.jp/CodeSystem/master-HOT9', '182111601')?.code).to.equal('covid19-spikevax');
      expect(findProductByCoding('urn:oid:1.2.392.200119.4.403.1', '182111601')?.code).to.equal('covid19-spikevax');
      expect(findProductByCoding('http://capstandard.jp/iyaku.info/CodeSystem/YJ-code', '631341EA1038')?.code).to.equal('covid19-spikevax');
      expect(findProductByCoding('http://example.org/other', '182111601')).to.equal(undefined);
      expect(findProductByCoding(CVX_SYSTEM, '999')).to.equal(undefined);
    });
  });

  describe('dose sequence within a series', () => {
    const history = [dose('r1', 'covid19-comirnaty', 1, '2021-06-01'), dose('r2', 'covid19-comirnaty', 2, '2021-06-22')];

    it('when the next dose follows the last one, then there is no violation', () => {
      expect(checkDoseSequence({ ...valid, doseNumber: 3, occurrenceDate: '2022-02-01' }, history)).to.deep.equal([]);
    });

    it('when a dose number is already recorded in the series (even with another product), then doseNumber is named', () => {
      const v = checkDoseSequence({ ...valid, vaccineCode: 'covid19-spikevax', lotNumber: '3004217', doseNumber: 2, occurrenceDate: '2022-02-01' }, history);
      expect(v).to.deep.include({ field: 'doseNumber', rule: 'dose 2 of covid-19 is already recorded' });
    });

    it('when dose n is dated on or before dose n-1, then occurrenceDate must be after it', () => {
      expect(checkDoseSequence({ ...valid, doseNumber: 3, occurrenceDate: '2021-06-22' }, history))
        .to.deep.equal([{ field: 'occurrenceDate', rule: 'must be after dose 2 of covid-19 (2021-06-22)' }]);
    });

    it('when dose n is dated on or after dose n+1, then occurrenceDate must be before it', () => {
      const later = [dose('r3', 'hib', 3, '2023-04-01')];
      expect(checkDoseSequence({ vaccineCode: 'hib', lotNumber: 'R1234', doseNumber: 2, occurrenceDate: '2023-04-01' }, later))
        .to.deep.equal([{ field: 'occurrenceDate', rule: 'must be before dose 3 of hib (2023-04-01)' }]);
    });

    it('when the other doses belong to another series, then they do not count', () => {
      expect(checkDoseSequence({ vaccineCode: 'hib', lotNumber: 'R1234', doseNumber: 1, occurrenceDate: '2020-01-01' }, history)).to.deep.equal([]);
    });

    it('when a record is corrected, then its own earlier version does not count against it', () => {
      expect(checkDoseSequence({ ...valid, recordId: 'r2', doseNumber: 2, occurrenceDate: '2021-06-29' }, history)).to.deep.equal([]);
    });

    it('when a seasonal dose is given twice in one season, then the second is refused; next season is fine', () => {
      const flu = [dose('f1', 'influenza-elderly', 1, '2023-10-20')];
      const second = { vaccineCode: 'influenza-elderly', lotNumber: 'HA231', doseNumber: 1, occurrenceDate: '2024-01-10' };
      expect(checkDoseSequence(second, flu).map((v) => v.field)).to.deep.equal(['occurrenceDate']);
      expect(checkDoseSequence({ ...second, occurrenceDate: '2024-10-10' }, flu)).to.deep.equal([]);
    });

    it('when the next dose is asked, then it is one more than the highest recorded dose of the series', () => {
      expect(nextDoseNumber('covid19-spikevax', history)).to.equal(3);
      expect(nextDoseNumber('hib', history)).to.equal(1);
      expect(nextDoseNumber('influenza-elderly', [dose('f1', 'influenza-elderly', 1, '2023-10-20')])).to.equal(1);
    });

    it('when doses 1..n have strictly increasing dates, then each passes; swapping two dates breaks the order (property)', () => {
      const days = fc.uniqueArray(fc.integer({ min: 0, max: 3000 }), { minLength: 2, maxLength: 8 }).map((xs) => xs.sort((a, b) => a - b));
      fc.assert(fc.property(days, fc.nat(), (offsets, pick) => {
        const dates = offsets.map((d) => new Date(Date.UTC(2015, 0, 1) + d * 86_400_000).toISOString().slice(0, 10));
        const doses = dates.map((date, i) => dose(`r${i + 1}`, 'covid19-comirnaty', i + 1, date));
        for (const d of doses) expect(checkDoseSequence({ ...valid, ...d }, doses)).to.deep.equal([]);
        const i = pick % (doses.length - 1);
        const swapped = { ...valid, recordId: doses[i]!.recordId, doseNumber: doses[i]!.doseNumber, occurrenceDate: dates[i + 1]! };
        expect(checkDoseSequence(swapped, doses).map((v) => v.field)).to.include('occurrenceDate');
      }));
    });
  });
});
