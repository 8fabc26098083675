import { expect } from 'chai';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { announceReady, createLogger } from '../../shared/platform/log.ts';
import { completeMyNumber, findMyNumbers } from '../../shared/identifiers.ts';

function capture(level = 'debug') {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { lines, logger: createLogger({ name: 'redaction-test', level, destination }) };
}

describe('log redaction', () => {
  it('when a My Number is logged anywhere (message, fields, nested, keys, errors, numbers), then no line contains it', () => {
    const myNumber = '123456789018';
    const { lines, logger } = capture();
    logger.info(`resident ${myNumber} registered`);
    logger.info({ body: { resident: { myNumber, note: `card ${myNumber}` } } }, 'payload');
    logger.info({ list: [myNumber, { deep: [[myNumber]] }], [myNumber]: 'as key', asNumber: Number(myNumber) }, 'shapes');
    logger.error({ err: new Error(`lookup failed for ${myNumber}`) }, 'failure');
    logger.warn('printf %s style', myNumber);
    expect(lines.length).to.equal(5);
    for (const line of lines) expect(line).not.to.include(myNumber);
    expect(lines.join('')).to.include('[redacted]');
  });

  it('when secrets are logged under their usual names, then their values are hidden', () => {
    const { lines, logger } = capture();
    logger.info({ password: 'hunter2-hunter2', authorization: 'Bearer abc.def.ghi', token: 'abc.def.ghi' }, 'secrets');
    expect(lines[0]).not.to.include('hunter2');
    expect(lines[0]).not.to.include('abc.def.ghi');
  });

  it('when random text embeds a valid My Number, then the line never contains it (property)', () => {
    fc.assert(fc.property(fc.string(), fc.stringMatching(/^\d{11}$/), fc.string(), (before, prefix, after) => {
      const myNumber = completeMyNumber(prefix);
      const { lines, logger } = capture();
      // Separators keep the number a 12-digit run of its own, as it would be in real text.
      logger.info({ field: `${before} ${myNumber} ${after}` }, `${before} ${myNumber} ${after}`);
      return lines.every((l) => !l.includes(myNumber));
    }), { numRuns: 200 });
  });

  it('when ordinary 12-digit values without a valid check digit are logged, then they are kept', () => {
    const { lines, logger } = capture();
    logger.info({ ticket: '123456789019' }, 'not a My Number');
    expect(lines[0]).to.include('123456789019');
  });

  it('when a valid My Number is written in any notation (hyphens, ASCII or 全角 spaces, long space runs, dots, slashes, commas, parentheses, zero-width spaces, 全角 digits, mixed) inside any text, then no log line holds it in any notation (property)', () => {
    const separator = fc.constantFrom('', '', '-', ' ', '\u3000', '.', '－', 'ー', ' - ', '・', '\t', '/', '／', ',', '，', '(', ')', '（', '）', ') ', '\u200B', '\uFEFF', '      ');
    const digitForm = fc.constantFrom<(d: string) => string>((d) => d, (d) => String.fromCharCode(0xff10 + Number(d)));
    const notation = fc.record({
      prefix: fc.stringMatching(/^\d{11}$/),
      forms: fc.array(digitForm, { minLength: 12, maxLength: 12 }),
      seps: fc.array(separator, { minLength: 11, maxLength: 11 }),
      groups: fc.constantFrom<number[]>([4, 8], [3, 7], [6], [], [2, 4, 6, 8, 10], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    });
    const boundary = fc.constantFrom(' ', '\u3000', '、', ': ', '（', '"');
    let cases = 0;
    fc.assert(fc.property(fc.string({ maxLength: 30 }), boundary, notation, boundary, fc.string({ maxLength: 30 }), (before, open, n, close, after) => {
      cases += 1;
      const myNumber = completeMyNumber(n.prefix);
      let written = '';
      for (let i = 0; i < 12; i++) {
        written += n.forms[i]!(myNumber[i]!);
        if (i < 11 && n.groups.includes(i + 1)) written += n.seps[i]!;
      }
      const text = `${before}${open}${written}${close}${after}`;
      const { lines, logger } = capture();
      logger.info({ field: text, nested: { note: text } }, text);
      logger.warn({ username: text }, 'login refused');
      const logged = lines.map((l) => JSON.parse(l) as { msg: string; field: string; nested: { note: string }; username?: string });
      return logged.every((l) => [l.msg, l.field, l.nested?.note, l.username].every((v) => v === undefined || !findMyNumbers(v).includes(myNumber)))
        && lines.every((l) => !l.includes(written));
    }), { numRuns: 400, seed: 7 });
    expect(cases).to.be.greaterThan(0);
  });

  it('when the configured level hides info, then the ready line launchers wait for is still written, scrubbed like any other', () => {
    for (const level of ['warn', 'error', 'silent']) {
      const { lines, logger } = capture(level);
      logger.info('hidden at this level');
      announceReady(logger, { url: 'https://127.0.0.1:1', note: 'card 123456789018' });
      expect(lines, level).to.have.length(1);
      const line = JSON.parse(lines[0]!) as { msg: string; url: string; note: string };
      expect(line.msg).to.equal('ready');
      expect(line.url).to.equal('https://127.0.0.1:1');
      expect(line.note).to.equal('card [redacted]');
    }
  });
});
