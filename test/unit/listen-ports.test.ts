/**
 * Launchers side by side on one machine (parallel test workers and the benchmark one of them
 * starts) hand out members' ports from their own share of the listen range (scripts/federation.ts).
 */
import { expect } from 'chai';
import { freePort, listenPortRange } from '../../scripts/federation.ts';

describe('members\' listen ports shared between launchers', () => {
  const saved = process.env.LISTEN_PORTS_SHARE;
  const withShare = <T>(share: string | undefined, read: () => T): T => {
    if (share === undefined) delete process.env.LISTEN_PORTS_SHARE;
    else process.env.LISTEN_PORTS_SHARE = share;
    try {
      return read();
    } finally {
      if (saved === undefined) delete process.env.LISTEN_PORTS_SHARE;
      else process.env.LISTEN_PORTS_SHARE = saved;
    }
  };

  it('when launchers take different shares, then their ranges lie inside the whole range and do not overlap; share k and k + 8 are the same', () => {
    const all = withShare(undefined, listenPortRange);
    const shares = [0, 1, 2, 7].map((k) => withShare(String(k), listenPortRange));
    for (const r of shares) {
      expect(r.low).to.be.at.least(all.low);
      expect(r.high).to.be.at.most(all.high);
      expect(r.high).to.be.greaterThan(r.low);
    }
    for (let i = 1; i < shares.length; i += 1) expect(shares[i]!.low, `share ${i}`).to.be.at.least(shares[i - 1]!.high);
    expect(withShare('9', listenPortRange)).to.deep.equal(shares[1]);
  });

  it('when a share is not a whole number, then the launcher refuses to start, naming the variable', () => {
    for (const bad of ['-1', '1.5', 'two']) expect(() => withShare(bad, listenPortRange), bad).to.throw(/LISTEN_PORTS_SHARE/);
  });

  it('when a port is handed out under a share, then it lies in that share', async () => {
    const range = withShare('5', listenPortRange);
    // The range is read when the call is made: the default of a launcher that names none.
    const port = await withShare('5', () => freePort());
    expect(port).to.be.at.least(range.low).and.below(range.high);
  });
});
