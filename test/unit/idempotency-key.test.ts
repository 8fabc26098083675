/** The Idempotency-Key header: never a My Number, and a client's UUID always accepted. */
import { expect } from 'chai';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { parseIdempotencyKey } from '../../services/municipality/idempotency/schemas.ts';

describe('the Idempotency-Key header', () => {
  const myNumber = completeMyNumber('12345678901');

  it('when a UUID\'s last group happens to be a valid My Number, then the key is still accepted', () => {
    const key = `5f0c1e2a-9b7d-4c3e-8a1f-${myNumber}`;
    expect(parseIdempotencyKey(key, true)).to.equal(key);
  });

  it('when a key carries a My Number outside a UUID, in any notation, then 400 names the header', () => {
    for (const key of [`key-${myNumber}`, `${myNumber.slice(0, 4)}-${myNumber.slice(4, 8)}-${myNumber.slice(8)}`, `5f0c1e2a-9b7d-4c3e-8a1f-000000000000:${myNumber}`]) {
      expect(() => parseIdempotencyKey(key, true), key).to.throw().with.property('extra').that.deep.includes({ field: 'Idempotency-Key' });
    }
  });
});
