import { expect } from 'chai';
import fc from 'fast-check';
import { AppError } from '../../shared/platform/errors.ts';
import { completeMunicipalityCode, isValidMunicipalityCode } from '../../shared/identifiers.ts';
import { formatOcrLine, parseOcrLine, ticketAdmits } from '../../services/municipality/vaccinations/tickets.ts';

/** Parses a line that must be refused and returns the rule it broke. */
function refusal(line: unknown): string {
  try {
    parseOcrLine(line);
  } catch (err) {
    expect(err).to.be.instanceOf(AppError);
    const e = err as AppError;
    expect(e.status).to.equal(400);
    expect(e.extra.field).to.equal('ocrLine');
    return String(e.extra.rule);
  }
  throw new Error(`line ${JSON.stringify(line)} was accepted`);
}

describe('vaccination ticket OCR line', () => {
  it('when a well-formed line is parsed, then type, dose, municipality and ticket number come back', () => {
    expect(parseOcrLine('122936100000012345')).to.deep.equal({ type: 1, doseNumber: 2, municipalityCode: '293610', ticketNumber: '0000012345' });
    expect(parseOcrLine('213436929876543210')).to.deep.equal({ type: 2, doseNumber: 1, municipalityCode: '343692', ticketNumber: '9876543210' });
  });

  it('when the line has full-width digits, spaces or hyphens (as scanners and keyboards give them), then it still parses', () => {
    const expected = { type: 1, doseNumber: 3, municipalityCode: '112241', ticketNumber: '1234567890' };
    expect(parseOcrLine('１３１１２２４１１２３４５６７８９０')).to.deep.equal(expected);
    expect(parseOcrLine('1 3 112241 1234567890')).to.deep.equal(expected);
    expect(parseOcrLine('13-112241-1234567890')).to.deep.equal(expected);
    expect(parseOcrLine('13\u3000112241\u30001234567890')).to.deep.equal(expected);
  });

  it('when the line is not a string, then it is refused as such', () => {
    // 18 digits as a number (exactly representable: a double near 1.2e17 steps by 16).
    for (const bad of [122936100000012352, null, undefined, {}, ['122936100000012345'], true]) {
      expect(refusal(bad)).to.match(/string of 18 digits/);
    }
  });

  it('when the line holds anything but digits, then it is refused naming that rule', () => {
    for (const bad of ['12293610000001234A', '1229361O000012345', '12293610000001234.', '١٢٢٩٣٦١٠٠٠٠٠٠١٢٣٤٥', '+22936100000012345']) {
      expect(refusal(bad), bad).to.match(/digits only/);
    }
  });

  it('when the line is shorter or longer than 18 digits, then it is refused naming the layout', () => {
    for (const bad of ['', '12293610000001234', '1229361000000123456', '1', '9'.repeat(40)]) {
      expect(refusal(bad), bad).to.match(/exactly 18 digits/);
    }
  });

  it('when the ticket type digit is unknown, then it is refused naming digit 1', () => {
    for (const type of ['0', '3', '9']) expect(refusal(`${type}22936100000012345`)).to.match(/ticket type \(digit 1\)/);
  });

  it('when the dose digit is 0, then it is refused naming digit 2', () => {
    expect(refusal('102936100000012345')).to.match(/dose number \(digit 2\)/);
  });

  it('when the municipality code has a wrong check digit (an OCR misread), then it is refused naming digits 3 to 8', () => {
    for (let d = 0; d <= 9; d++) {
      const code = `29361${d}`;
      if (isValidMunicipalityCode(code)) continue;
      expect(refusal(`12${code}0000012345`)).to.match(/municipality code \(digits 3 to 8\)/);
    }
  });

  it('when the ticket number is all zeros, then it is refused naming digits 9 to 18', () => {
    expect(refusal('122936100000000000')).to.match(/ticket number \(digits 9 to 18\)/);
  });

  it('when any valid ticket is formatted and parsed again, then it comes back unchanged (property)', () => {
    fc.assert(fc.property(
      fc.constantFrom(1 as const, 2 as const), fc.integer({ min: 1, max: 9 }), fc.stringMatching(/^\d{5}$/),
      fc.stringMatching(/^\d{10}$/).filter((n) => !/^0+$/.test(n)),
      (type, doseNumber, prefix, ticketNumber) => {
        const ticket = { type, doseNumber, municipalityCode: completeMunicipalityCode(prefix), ticketNumber };
        expect(parseOcrLine(formatOcrLine(ticket))).to.deep.equal(ticket);
      },
    ));
  });

  it('when random text is parsed, then it either parses to a valid municipality code or is a 400 naming ocrLine (property)', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.stringMatching(/^\d{18}$/)), (line) => {
      try {
        expect(isValidMunicipalityCode(parseOcrLine(line).municipalityCode)).to.equal(true);
      } catch (err) {
        expect((err as AppError).status).to.equal(400);
        expect((err as AppError).extra.field).to.equal('ocrLine');
      }
    }));
  });

  it('when a ticket type is matched with a vaccine series, then COVID-19 tickets admit only COVID-19 products', () => {
    expect(ticketAdmits(1, 'covid-19')).to.equal(true);
    expect(ticketAdmits(1, 'mr')).to.equal(false);
    expect(ticketAdmits(2, 'mr')).to.equal(true);
    expect(ticketAdmits(2, 'covid-19')).to.equal(false);
  });
});
