import { expect } from 'chai';
import { classifyPeerReply, retryAfterSeconds } from '../../shared/federation/peer-reply.ts';

describe('classifyPeerReply: how a member reads a peer\'s reply (docs/PROTOCOL.md §2)', () => {
  it('when the peer answers 2xx, then it is an answer', () => {
    for (const status of [200, 201, 204]) expect(classifyPeerReply({ status }), String(status)).to.deep.equal({ outcome: 'ok' });
  });

  it('when the peer answers 408, 429 or 5xx, then the work is retried', () => {
    for (const status of [408, 429, 500, 502, 503, 504]) {
      expect(classifyPeerReply({ status }), String(status)).to.deep.equal({ outcome: 'retry', retryAfter: null });
    }
  });

  it('when the peer answers any other 4xx, then its refusal is final', () => {
    for (const status of [400, 401, 403, 404, 409, 413, 422]) expect(classifyPeerReply({ status }), String(status)).to.deep.equal({ outcome: 'final' });
  });

  it('when a retryable reply carries Retry-After in seconds, then the retry waits that long', () => {
    expect(classifyPeerReply({ status: 503, headers: { 'retry-after': '120' } })).to.deep.equal({ outcome: 'retry', retryAfter: 120 });
    expect(classifyPeerReply({ status: 429, headers: { 'retry-after': ['7', '9'] } })).to.deep.equal({ outcome: 'retry', retryAfter: 7 });
  });

  it('when Retry-After is absent, malformed, zero, negative or over a day, then it is ignored', () => {
    for (const header of [undefined, '', 'soon', 'Wed, 21 Oct 2015 07:28:00 GMT', '0', '-5', '1.5', '86401']) {
      expect(retryAfterSeconds(header), String(header)).to.equal(null);
    }
    expect(retryAfterSeconds('86400')).to.equal(86_400);
  });

  it('when a final refusal carries Retry-After, then it stays final', () => {
    expect(classifyPeerReply({ status: 400, headers: { 'retry-after': '30' } })).to.deep.equal({ outcome: 'final' });
  });
});
