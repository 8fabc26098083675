import { expect } from 'chai';
import { mapWithLimit } from '../../shared/platform/concurrency.ts';

describe('mapWithLimit', () => {
  it('when items take different times, then results keep the input order and no more than the limit run at once', async () => {
    let inFlight = 0;
    let most = 0;
    const delays = [30, 5, 20, 1, 15, 2, 25, 3];
    const out = await mapWithLimit(delays, 3, async (ms, i) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, ms));
      inFlight -= 1;
      return i * 10;
    });
    expect(out).to.deep.equal([0, 10, 20, 30, 40, 50, 60, 70]);
    expect(most).to.equal(3);
  });

  it('when one call fails, then the whole map rejects with that error', async () => {
    const failed = await mapWithLimit([1, 2, 3], 2, async (n) => { if (n === 2) throw new Error('two'); return n; }).then(() => null, (err: Error) => err.message);
    expect(failed).to.equal('two');
  });

  it('when there is nothing to map, then it resolves to an empty list', async () => {
    expect(await mapWithLimit([], 4, async () => 1)).to.deep.equal([]);
  });
});
