/**
 * A curious or compromised gateway: the test plays the gateway's part with its real keys, its
 * real correspondence table and its own captured traffic, and tries to get records out of A
 * without a genuine request of B, or to bend a genuine one (another person's code, another
 * purpose, another requester), or to swap a member's key in the directory it serves. A must
 * refuse, or B must notice; nothing may be released to anyone but B.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { createDirectoryClient } from '../../shared/federation/directory.ts';
import { signPayload } from '../../shared/crypto.ts';
import type { MemberClient, MemberResponse } from '../../shared/federation/member-http.ts';
import type { MemberCredentials } from '../../shared/federation/pki.ts';
import { answerClaimsSchema, GATEWAY_ID, ISSUER_ID, Typ, type ForwardSubject } from '../../shared/federation/protocol.ts';
import { companionDigest, companionMatches, verifyMessage } from '../../shared/federation/messages.ts';
import { api } from '../fixtures/http.ts';
import { foreignCredentials } from '../fixtures/pki.ts';
import { CAPTURE_FILE } from '../../gateway/routing/capture.ts';
import { AKIOTA, securityFederation, TAWARAMOTO, TODA, type SecurityFederation } from './federation.ts';
import {
  answerOf, AttackTally, clientOf, codesOf, credentialsOf, federationUrl, genuineBatch, genuineQuery, heldResidents, moveResident,
  rawJwt, recordsOf, refusedByA, releasedTo, signForward, type RefusalByA, signQuery, withPayload, attestationOf, type Moved, type SignedQuery,
} from './support.ts';
import { isRefusal } from '../fixtures/refusals.ts';

const A = TAWARAMOTO;
const B = TODA;
const C = AKIOTA;

describe('security: a rogue gateway', function () {
  this.timeout(180_000);
  const tally = new AttackTally('rogue gateway', 'refused by A or detected by B');
  let fed: SecurityFederation;
  let a: MemberCredentials;
  let b: MemberCredentials;
  let gw: MemberCredentials;
  let asGateway: MemberClient;
  let moved: Moved;
  let codes: Awaited<ReturnType<typeof codesOf>>;
  /** A second resident who moved from A to B, for batches of two. */
  let moved2: Moved;
  let codes2: Awaited<ReturnType<typeof codesOf>>;

  /** The gateway's envelope sent to A, with the sealed part it relays beside it (B's, unless the test swaps it). */
  const toA = (forward: string, sealed?: string): Promise<MemberResponse> =>
    asGateway.postJson(`${federationUrl(fed, A)}/federation/record-requests`, { forward, ...(sealed ? { sealed } : {}) }, { timeoutMs: 30_000 });
  /** B's query relayed in an envelope the gateway signs with its real key, the query's sealed part beside it. */
  const relay = async (query: SignedQuery, subjects: ForwardSubject[], overrides: Record<string, unknown> = {}): Promise<MemberResponse> =>
    toA((await signForward(gw, A, query.compact, subjects, overrides)).compact, query.sealed);
  /** The envelope an honest gateway would build for B's query. */
  const honestSubjects = (): ForwardSubject[] => [{ ref: '0', code: codes.fromCode, requesterAttestation: codes.toAttestation, sourceAttestation: codes.fromAttestation }];
  /** The honest envelope's entry for one subject of a batch. */
  const forwardOf = (ref: string, c: typeof codes): ForwardSubject => ({ ref, code: c.fromCode, requesterAttestation: c.toAttestation, sourceAttestation: c.fromAttestation });

  before(async () => {
    fed = await securityFederation();
    [a, b, gw] = [credentialsOf(fed, A), credentialsOf(fed, B), credentialsOf(fed, GATEWAY_ID)];
    asGateway = clientOf(fed, GATEWAY_ID);
    moved = await moveResident(fed, A, B);
    codes = await codesOf(fed, moved);
    moved2 = await moveResident(fed, A, B);
    codes2 = await codesOf(fed, moved2);
  });
  after(() => {
    asGateway?.close();
    tally.print();
  });

  it('when the gateway relays a genuine query of B honestly, then A releases the records (control)', async () => {
    const query = await genuineQuery(b, a, moved, codes.toCode);
    const res = await relay(query, honestSubjects());
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const answer = answerOf(res)!;
    expect(answer.results[0]!.status).to.equal('ok');
    // The records are in the one envelope for B beside the answer: the gateway's part says only the status.
    expect(answer.results[0]).to.have.all.keys('ref', 'status');
    const released = await releasedTo(b, a, res);
    expect(released.map((r) => [r.ref, r.sub, r.bundle.entry?.length])).to.deep.equal([['0', codes.toCode, moved.recordCount]]);
  });

  it('when the gateway drops, reorders, duplicates or swaps subjects of B\'s batches, then A releases to each ref only the records of B\'s own subject, and B\'s envelopes cannot be moved between batches', async () => {
    const batch = () => genuineBatch(b, a, [{ ref: '0', moved, toCode: codes.toCode }, { ref: '1', moved: moved2, toCode: codes2.toCode }]);
    /** What A released, per ref, as B would open it: [ref, B's code, records]. */
    const releasedBy = async (res: MemberResponse) => {
      return (await releasedTo(b, a, res)).map((r) => [r.ref, r.sub, r.bundle.entry?.length ?? 0]);
    };
    const both = [['0', codes.toCode, moved.recordCount], ['1', codes2.toCode, moved2.recordCount]];

    // Control: the honest batch of two.
    let res = await relay(await batch(), [forwardOf('0', codes), forwardOf('1', codes2)]);
    expect(answerOf(res)?.results.map((r) => `${r.ref}:${r.status}`), JSON.stringify(res.body)).to.deep.equal(['0:ok', '1:ok']);
    expect(await releasedBy(res)).to.deep.equal(both);

    // Dropped: A answers only what it was asked; B's other subject is missing from A's signed answer, which B reports (not_found is never invented).
    res = await relay(await batch(), [forwardOf('1', codes2)]);
    tally.check('a subject dropped from the envelope: A answers only the forwarded one, with its own records',
      JSON.stringify(answerOf(res)?.results.map((r) => r.ref)) === '["1"]' && JSON.stringify(await releasedBy(res)) === JSON.stringify([both[1]]), answerOf(res)?.results ?? res.body);

    // Reordered: each ref still gets its own subject's records.
    res = await relay(await batch(), [forwardOf('1', codes2), forwardOf('0', codes)]);
    const reordered = (await releasedBy(res)).sort((x, y) => String(x[0]).localeCompare(String(y[0])));
    tally.check('subjects reordered in the envelope: each ref gets its own records', JSON.stringify(reordered) === JSON.stringify(both), reordered);

    // Duplicated: the second copy of a ref releases nothing.
    res = await relay(await batch(), [forwardOf('0', codes), forwardOf('0', codes), forwardOf('1', codes2)]);
    tally.check('a subject duplicated in the envelope: the copy is denied as duplicate_ref, released once',
      JSON.stringify(answerOf(res)?.results.map((r) => `${r.ref}:${r.reason ?? r.status}`)) === '["0:ok","0:duplicate_ref","1:ok"]'
      && JSON.stringify(await releasedBy(res)) === JSON.stringify(both), answerOf(res)?.results ?? res.body);

    // Swapped within the batch: each ref given the other resident's code and attestations.
    res = await relay(await batch(), [forwardOf('0', codes2), forwardOf('1', codes)]);
    tally.check('the two subjects\' codes swapped within the batch', refusedByA(res, { subject: 'denied', reason: 'attestation_invalid' }), answerOf(res)?.results ?? res.body);

    // Swapped between batches: B's one-subject query for the first resident, carrying the second one's forward entry under its ref.
    const first = await genuineQuery(b, a, moved, codes.toCode);
    res = await relay(first, [forwardOf('0', codes2)]);
    tally.check('a subject of another batch of B put into this batch\'s envelope', refusedByA(res, { subject: 'denied', reason: 'attestation_invalid' }), answerOf(res)?.results ?? res.body);

    // The identities envelope of one batch relayed beside another batch of B: it is not the one B's query names.
    const donor = await batch();
    const taker = await genuineQuery(b, a, moved, codes.toCode);
    res = await relay({ ...taker, sealed: donor.sealed }, honestSubjects());
    tally.check('the sealed identities of another batch of B relayed beside this query', refusedByA(res, { subject: 'denied', reason: 'sealed_identity_not_bound' }), answerOf(res)?.results ?? res.body);
    // ... or named inside it: B's signature over the query breaks.
    const renamed = withPayload(taker.compact, (q) => ({ ...q, sealedDigest: companionDigest(donor.sealed) }));
    res = await toA((await signForward(gw, A, renamed, honestSubjects())).compact, donor.sealed);
    tally.check('the digest of another batch\'s sealed identities written into this query', refusedByA(res, { status: 401, code: 'invalid-signature' }), res.body);
    // ... or held back: A has no identity to check against and releases nothing.
    res = await toA((await signForward(gw, A, (await genuineQuery(b, a, moved, codes.toCode)).compact, honestSubjects())).compact);
    tally.check('the sealed identities held back', refusedByA(res, { subject: 'denied', reason: 'sealed_identity_missing' }), answerOf(res)?.results ?? res.body);

    // A's records envelope of one answer relayed beside another answer: it is not the one A's answer names,
    // and naming it inside that answer breaks A's signature for B.
    const oneRes = await relay(await genuineQuery(b, a, moved, codes.toCode), honestSubjects());
    const otherRes = await relay(await genuineQuery(b, a, moved2, codes2.toCode), [forwardOf('0', codes2)]);
    const other = answerOf(otherRes)!;
    expect(other.recordsDigest, 'the other answer released records').to.be.a('string');
    tally.check('the records envelope of another answer relayed beside this answer: not the one it names',
      companionMatches(recordsOf(otherRes), other.recordsDigest) && !companionMatches(recordsOf(oneRes), other.recordsDigest), other.recordsDigest);
    const grafted = withPayload((otherRes.body as { answer: string }).answer, (x) => ({ ...x, recordsDigest: answerOf(oneRes)!.recordsDigest }));
    let verifiedByB = true;
    try {
      await verifyMessage(grafted, answerClaimsSchema, { key: createPublicKey(a.signer.key), issuer: A, audience: B, typ: Typ.ANSWER });
    } catch {
      verifiedByB = false;
    }
    tally.check('the digest of another answer\'s records written into this answer: B refuses the answer', !verifiedByB, grafted.slice(0, 40));
  });

  it('when the gateway asks A on its own, then A refuses: no query of B, a query forged in B\'s name, or an old query of B re-sent', async () => {
    // Its own query, signed with its own key.
    const own = await signQuery(gw, [{ ...(await genuineSubject()), sub: codes.toCode }], { iss: GATEWAY_ID });
    let res = await toA((await signForward(gw, A, own.compact, honestSubjects())).compact);
    tally.check('a query of the gateway itself', isRefusal(res, 400, 'invalid-claims') && (res.body as { field?: string }).field === 'query.iss', res.body);

    // B's name, the gateway's key (it has no other).
    const forged = withPayload(own.compact, (q) => ({ ...q, iss: B }));
    res = await toA((await signForward(gw, A, forged, honestSubjects())).compact);
    tally.check('a query in B\'s name signed by the gateway', isRefusal(res, 401, 'invalid-signature'), res.body);

    // A query of B the gateway already forwarded once (from its own captured traffic).
    const genuine = await api('POST', `${fed.url(B)}/exchange/queries`, {
      token: await fed.login(B, 'clerk1'), body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moved.toAddressee, source: A }] },
    });
    expect(genuine.status).to.equal(200);
    expect(genuine.body.results[0].status).to.equal('ok');
    const old = capturedForwardsTo(fed, A).at(-1)!;
    res = await toA((await signForward(gw, A, old, honestSubjects())).compact);
    tally.check('an old query of B in a fresh envelope', isRefusal(res, 409, 'replayed'), res.body);
  });

  it('when the gateway bends a genuine query of B — another person\'s code, its own attestation, another purpose, another requester, another trace — then A refuses each', async () => {
    const other = (await heldResidents(fed, A)).find((r) => r.status === 'resident' && r.code && r.addresseeNumber !== moved.fromAddressee)!;
    const otherAttestation = await attestationOf(fed, A, other.code!);
    const madeUp = await signPayload({ iss: ISSUER_ID, municipality: A, code: other.code, link: 'x'.repeat(43) }, { ...gw.signer, typ: Typ.ATTESTATION });

    const attestation = { subject: 'denied', reason: 'attestation_invalid' } as const;
    const signature = { status: 401, code: 'invalid-signature' } as const;
    const bends: [string, (query: string, rid: string) => Promise<string>, RefusalByA][] = [
      ['another resident\'s code with that resident\'s genuine attestation', async (q) =>
        (await signForward(gw, A, q, [{ ...honestSubjects()[0]!, code: other.code!, sourceAttestation: otherAttestation }])).compact, attestation],
      ['another resident\'s code with an attestation the gateway made up', async (q) =>
        (await signForward(gw, A, q, [{ ...honestSubjects()[0]!, code: other.code!, sourceAttestation: madeUp }])).compact, attestation],
      ['the purpose changed inside B\'s signed query', async (q) =>
        (await signForward(gw, A, withPayload(q, (c) => ({ ...c, purpose: 'certificate-issuance' })), honestSubjects())).compact, signature],
      ['the requester changed inside B\'s signed query', async (q) =>
        (await signForward(gw, A, withPayload(q, (c) => ({ ...c, iss: C })), honestSubjects())).compact, signature],
      ['the purpose changed and the query re-signed with the gateway\'s key under B\'s kid', async (q) => {
        const claims = { ...JSON.parse(Buffer.from(q.split('.')[1]!, 'base64url').toString('utf8')), purpose: 'certificate-issuance' };
        return (await signForward(gw, A, await rawJwt(claims, gw.signer.key, { kid: b.signer.kid, typ: Typ.QUERY }), honestSubjects())).compact;
      }, signature],
      ['an envelope whose trace id differs from the query\'s', async (q) =>
        (await signForward(gw, A, q, honestSubjects(), { rid: 'rogue-trace-0001' })).compact, { status: 400, code: 'invalid-claims' }],
    ];
    for (const [label, bend, refusal] of bends) {
      const query = await genuineQuery(b, a, moved, codes.toCode);
      const res = await toA(await bend(query.compact, query.rid));
      tally.check(label, refusedByA(res, refusal), { status: res.status, results: answerOf(res)?.results ?? res.body });
    }
  });

  it('when the gateway swaps a member\'s key in the directory it serves, then members reject the entry: A releases nothing and B will not seal for the false key', async () => {
    const file = fed.member(GATEWAY_ID).env.DIRECTORY_FILE!;
    const original = readFileSync(file, 'utf8');
    const entries = JSON.parse(original) as { id: string; encryptionCertificate: string; signingCertificate: string }[];
    const stranger = foreignCredentials(B);
    // The gateway re-reads the file when its mtime changes: make every write visibly newer.
    let stamp = Date.now();
    const put = (text: string) => {
      writeFileSync(file, text);
      stamp = Math.max(stamp + 1000, Date.now());
      utimesSync(file, new Date(stamp), new Date(stamp));
    };
    const swap = (id: string, cert: string) => entries.map((e) => (e.id === id ? { ...e, encryptionCertificate: cert } : e));
    const variants: [string, string, string][] = [
      [B, gw.enc.cert, 'B\'s encryption key replaced by the gateway\'s own (CA-issued, CN gateway)'],
      [B, stranger.enc.cert, 'B\'s encryption key replaced by one from another CA with CN 112241'],
      [A, gw.enc.cert, 'A\'s encryption key replaced by the gateway\'s own'],
    ];
    try {
      // What any member does on every load: verify each entry against the CA itself.
      for (const [victim, cert, label] of variants) {
        put(JSON.stringify(swap(victim, cert), null, 2));
        const member = clientOf(fed, victim === A ? B : A);
        try {
          const seen = createDirectoryClient(member, fed.member(GATEWAY_ID).url, a.ca);
          await seen.refresh();
          tally.check(`directory: ${label}`, seen.rejected().some((r) => r.id === victim && r.field === 'encryptionCertificate'), seen.rejected());
        } finally {
          member.close();
        }
      }

      // A and B restart with the rogue directory (B's key swapped for the gateway's).
      put(JSON.stringify(swap(B, gw.enc.cert), null, 2));
      await Promise.all([fed.stop(A), fed.stop(B)]);
      await Promise.all([fed.start(A), fed.start(B)]);
      const query = await genuineQuery(b, a, moved, codes.toCode);
      const res = await relay(query, honestSubjects());
      tally.check('A, holding a directory with B\'s key swapped, answers a genuine query of B', refusedByA(res, { status: 400, code: 'unknown-member' }), { status: res.status, results: answerOf(res)?.results ?? res.body });

      // Now A's key is swapped: B must not seal the identity check for it.
      put(JSON.stringify(swap(A, gw.enc.cert), null, 2));
      await fed.stop(B);
      await fed.start(B);
      const asked = await api('POST', `${fed.url(B)}/exchange/queries`, {
        token: await fed.login(B, 'clerk1'), body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moved.toAddressee, source: A }] },
      });
      // B refuses before signing anything: A is no longer a member it can seal for.
      tally.check('B, holding a directory with A\'s key swapped, is asked to query A', isRefusal(asked, 400, 'unknown-member') && asked.body.field === 'subjects.0.source', asked.body);
    } finally {
      put(original);
    }
    // With the true directory back, the same query goes through again (members reload on an unknown id).
    const again = await api('POST', `${fed.url(B)}/exchange/queries`, {
      token: await fed.login(B, 'clerk1'), body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: moved.toAddressee, source: A }] },
    });
    expect(again.body.results[0], JSON.stringify(again.body)).to.include({ status: 'ok' });
  });

  /** A consent subject for the moved resident, as B would write it (sealed part included). */
  async function genuineSubject() {
    const query = await genuineQuery(b, a, moved, codes.toCode);
    return JSON.parse(Buffer.from(query.compact.split('.')[1]!, 'base64url').toString('utf8')).subjects[0];
  }
});

/** B's queries as the gateway forwarded them to `source`, oldest first, from its own message capture. */
function capturedForwardsTo(fed: SecurityFederation, source: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync(join(fed.captureDir, CAPTURE_FILE), 'utf8').split('\n')) {
    if (!line) continue;
    const m = JSON.parse(line) as { direction: string; peer: string; request?: { forward?: string } };
    if (m.direction !== 'out' || m.peer !== source || !m.request?.forward) continue;
    out.push(JSON.parse(Buffer.from(m.request.forward.split('.')[1]!, 'base64url').toString('utf8')).query as string);
  }
  return out;
}
