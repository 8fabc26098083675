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
