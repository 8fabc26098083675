import { expect } from 'chai';
import fc from 'fast-check';
import {
  completeMunicipalityCode, completeMyNumber, findMyNumbers, isValidMunicipalityCode, isValidMyNumber, maskMyNumber,
} from '../../shared/identifiers.ts';

describe('identifiers', () => {
  describe('My Number', () => {
    it('when the check digit is right, then the number is valid (123456789018)', () => {
      expect(isValidMyNumber('123456789018')).to.equal(true);
    });

    it('when any single digit is misread, then the number is refused', () => {
      const good = '123456789018';
      for (let i = 0; i < 12; i++) {
        for (let d = 0; d <= 9; d++) {
          const digit = String(d);
          if (good[i] === digit) continue;
          const misread = good.slice(0, i) + digit + good.slice(i + 1);
          // A mod-11 check catches every single-digit substitution except where the weight
          // makes the difference a multiple of 11, which weights 2–7 never do.
          expect(isValidMyNumber(misread), misread).to.equal(false);
        }
      }
    });

    it('when the input is not 12 digits, then it is refused', () => {
      for (const bad of ['', '12345678901', '1234567890189', '12345678901a', ' 123456789018', 123456789018]) {
        expect(isValidMyNumber(bad)).to.equal(false);
      }
    });

    it('when completed from any 11 digits, then the result is valid (property)', () => {
      fc.assert(fc.property(fc.stringMatching(/^\d{11}$/), (prefix) => isValidMyNumber(completeMyNumber(prefix))));
    });

    it('when masked, then only the last four digits show', () => {
      expect(maskMyNumber('123456789018')).to.equal('********9018');
    });

    it('when a text holds valid and invalid 12-digit runs, then only the valid ones are found', () => {
      expect(findMyNumbers('a 123456789018 b 123456789019 c 1234567890180')).to.deep.equal(['123456789018']);
    });

    it('when a My Number is written with slashes, commas, parentheses, zero-width spaces or a long run of spaces between its digits, then it is found', () => {
      const written = [
        '1234/5678/9018', '1234／5678／9018', '1234,5678,9018', '1234，5678，9018', '(1234)5678-9018', '（1234）5678（9018）', '1234 (5678) 9018',
        '1234\u200B5678\u200B9018', '1\u200B2\u200B3\u200B4\u200B5\u200B6\u200B7\u200B8\u200B9\u200B0\u200B1\u200B8', '1234\u20605678\uFEFF9018',
        '1234          5678 9018', '1234\u3000\u3000\u3000\u3000\u30005678\u3000\u3000\u3000\u3000\u30009018', '１２３４／５６７８／９０１８',
      ];
      for (const text of written) expect(findMyNumbers(`番号 ${text} です`), JSON.stringify(text)).to.deep.equal(['123456789018']);
      // Still one digit group each: no separator joins a 13th digit, and a wrong check digit stays text.
      expect(findMyNumbers('1234/5678/90180')).to.deep.equal([]);
      expect(findMyNumbers('1234/5678/9019')).to.deep.equal([]);
      expect(findMyNumbers('1234' + ' '.repeat(13) + '5678 9018')).to.deep.equal([]);
    });

    it('when a UUID\'s middle groups or last group read as a valid My Number, then the UUID is taken whole; the same digits typed alone or beside a UUID are found', () => {
      // 4646-4957-9055 in the middle of a request id: a valid check digit, as about one UUID in 7,000 has.
      expect(isValidMyNumber('464649579055')).to.equal(true);
      expect(findMyNumbers('trace f47f6495-4646-4957-9055-ffdc37fd4ded done')).to.deep.equal([]);
      expect(findMyNumbers('key 6e0f1c2a-9b1d-4c3e-8f4a-123456789018')).to.deep.equal([]);
      expect(findMyNumbers('typed 4646-4957-9055 by hand')).to.deep.equal(['464649579055']);
      expect(findMyNumbers('f47f6495-4646-4957-9055-ffdc37fd4ded 1234-5678-9018')).to.deep.equal(['123456789018']);
      // Not a UUID: a longer hex run around it, or the groups of another shape.
      expect(findMyNumbers('af47f6495-4646-4957-9055-ffdc37fd4ded')).to.deep.equal(['464649579055']);
      expect(findMyNumbers('f47f6495-4646-4957-9055-ffdc37fd')).to.deep.equal(['464649579055']);
    });
  });

  describe('municipality code', () => {
    it('when it is one of the demo members, then it is valid', () => {
      for (const code of ['293610', '343692', '112241']) expect(isValidMunicipalityCode(code), code).to.equal(true);
    });

    it('when the check digit is wrong, then it is refused', () => {
      expect(isValidMunicipalityCode('293611')).to.equal(false);
      expect(isValidMunicipalityCode('11224')).to.equal(false);
    });

    it('when completed from any 5 digits, then the result is valid (property)', () => {
      fc.assert(fc.property(fc.stringMatching(/^\d{5}$/), (prefix) => isValidMunicipalityCode(completeMunicipalityCode(prefix))));
    });
  });
});
