/**
 * Hostile tokens against every verifier: the gateway (B's signed queries), a municipality's
 * federation port (the gateway's envelopes) and a municipality's staff API (session tokens).
 * The tokens are built with jose and the members' real keys from the federation's PKI folder,
 * so only the verifier's own rules stand between them and success. Each group has a control
 * that a correct token IS accepted, so a refusal means the rule, not a broken harness.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { jose } from '../../shared/crypto.ts';
import { parseKey } from '../../shared/platform/config.ts';
import type { MemberClient, MemberResponse } from '../../shared/federation/member-http.ts';
import type { MemberCredentials } from '../../shared/federation/pki.ts';
import { companionDigest } from '../../shared/federation/messages.ts';
import { GATEWAY_ID, Typ, type ForwardSubject } from '../../shared/federation/protocol.ts';
import { EMPTY_HEAD } from '../fixtures/factories.ts';
import { api } from '../fixtures/http.ts';
import { AKIOTA, securityFederation, TAWARAMOTO, TODA, type SecurityFederation } from './federation.ts';
import {
  AttackTally, attackerRsaKey, clientOf, credentialsOf, federationUrl, hs256WithPublicKey, looseSubject, OPAQUE_SEALED, randomCode, rawJwt,
  signingPublicPem, signQuery, unsignedJwt, window, withPayload,
} from './support.ts';
import { isRefusal } from '../fixtures/refusals.ts';

const A = TAWARAMOTO;
const B = TODA;
const C = AKIOTA;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Past exp by more than the verifiers' 60 s clock tolerance. */
const untilExpired = async (exp: number) => sleep(Math.max(0, (exp + 62) * 1000 - Date.now()));

describe('security: tokens', function () {
  this.timeout(180_000);
  const tally = new AttackTally('tokens');
  let fed: SecurityFederation;
  let gatewayUrl: string;
  let a: MemberCredentials;
  let b: MemberCredentials;
  let c: MemberCredentials;
  let gw: MemberCredentials;
  let asB: MemberClient;
  let asGateway: MemberClient;

  /** A query token with the opaque sealed part its claims name beside it. */
  const sendQuery = (query: string): Promise<MemberResponse> => asB.postJson(`${gatewayUrl}/queries`, { query, sealed: OPAQUE_SEALED }, { timeoutMs: 30_000 });
  const sendForward = (forward: string): Promise<MemberResponse> =>
    asGateway.postJson(`${federationUrl(fed, A)}/federation/record-requests`, { forward }, { timeoutMs: 30_000 });

  /** Claims of a query B could sign; the subject's code is nobody's, so the gateway answers `denied` per subject. */
  const queryClaims = (extra: Record<string, unknown> = {}) => ({
    iss: B, aud: GATEWAY_ID, jti: randomUUID(), rid: `tok-${randomUUID()}`, purpose: 'next-dose-scheduling', actor: 'tester',
    subjects: [looseSubject(A, randomCode())], sealedDigest: companionDigest(OPAQUE_SEALED), head: EMPTY_HEAD, ...window(0, 240), ...extra,
  });
  const queryHeader = () => ({ kid: b.signer.kid, typ: Typ.QUERY });

  /** An envelope for A around a fresh, valid query of B; its subject ends `denied` at A (no attestation). */
  const forwardSubjects = (): ForwardSubject[] => [{ ref: '0', code: randomCode(), requesterAttestation: 'eyJ0.eyJ0.c2ln', sourceAttestation: 'eyJ0.eyJ0.c2ln' }];
  async function forwardClaims(extra: Record<string, unknown> = {}) {
    const query = await signQuery(b, [looseSubject(A, randomCode())]);
    return { iss: GATEWAY_ID, aud: A, jti: randomUUID(), rid: query.rid, query: query.compact, subjects: forwardSubjects(), head: EMPTY_HEAD, ...window(0, 240), ...extra };
  }
  const forwardHeader = () => ({ kid: gw.signer.kid, typ: Typ.FORWARD });

  before(async () => {
    fed = await securityFederation();
    gatewayUrl = fed.member(GATEWAY_ID).url;
    [a, b, c, gw] = [credentialsOf(fed, A), credentialsOf(fed, B), credentialsOf(fed, C), credentialsOf(fed, GATEWAY_ID)];
    asB = clientOf(fed, B);
    asGateway = clientOf(fed, GATEWAY_ID);
  });
  after(() => {
    asB?.close();
    asGateway?.close();
    tally.print();
  });

  it('when tokens are forged, unsigned, key-confused, misaddressed, expired, early, jti-less or long-lived, then the gateway and A refuse every one', async () => {
    // Controls: the same builders with nothing wrong are accepted.
    const goodQuery = await sendQuery(await rawJwt(queryClaims(), b.signer.key, queryHeader()));
    expect(goodQuery.status, JSON.stringify(goodQuery.body)).to.equal(200);
    const goodForward = await sendForward(await rawJwt(await forwardClaims(), gw.signer.key, forwardHeader()));
    expect(goodForward.status, JSON.stringify(goodForward.body)).to.equal(200);

    // Where the refusal is the algorithm pin, its rule is checked too (shared/federation/messages.ts).
    const ALG = 'alg must be ES256';
    const rsa = attackerRsaKey();
    const atGateway: [string, () => Promise<string>, number, string, string?][] = [
      ['query signed with another member\'s key under B\'s kid', () => rawJwt(queryClaims(), a.signer.key, queryHeader()), 401, 'invalid-signature'],
      ['query changed after B signed it', async () => withPayload(await rawJwt(queryClaims(), b.signer.key, queryHeader()), (q) => ({ ...q, purpose: 'certificate-issuance' })), 401, 'invalid-signature'],
      ['query with alg none', async () => unsignedJwt(queryClaims(), queryHeader()), 401, 'invalid-signature', ALG],
      ['query HS256-signed with B\'s public key as the secret', () => hs256WithPublicKey(queryClaims(), signingPublicPem(b), queryHeader()), 401, 'invalid-signature', ALG],
      ['query RS256-signed with an RSA key under B\'s kid (the algorithm family members used before)', () => rawJwt(queryClaims(), rsa, { ...queryHeader(), alg: 'RS256' }), 401, 'invalid-signature', ALG],
      ['query PS256-signed with an RSA key under B\'s kid', () => rawJwt(queryClaims(), rsa, { ...queryHeader(), alg: 'PS256' }), 401, 'invalid-signature', ALG],
      ['query addressed to a municipality instead of the gateway (aud)', () => rawJwt(queryClaims({ aud: A }), b.signer.key, queryHeader()), 401, 'invalid-signature'],
      ['query in another member\'s name, signed with its real key, sent over B\'s connection (iss)', () => rawJwt(queryClaims({ iss: C }), c.signer.key, { kid: c.signer.kid, typ: Typ.QUERY }), 403, 'requester-mismatch'],
      ['expired query', () => rawJwt(queryClaims(window(-400, -100)), b.signer.key, queryHeader()), 401, 'invalid-signature'],
      ['query not yet valid (iat ten minutes ahead)', () => rawJwt(queryClaims(window(600, 800)), b.signer.key, queryHeader()), 401, 'invalid-signature'],
      ['query without jti', () => rawJwt(queryClaims({ jti: undefined }), b.signer.key, queryHeader()), 401, 'invalid-signature'],
      ['query living an hour (exp − iat > 300 s)', () => rawJwt(queryClaims(window(0, 3600)), b.signer.key, queryHeader()), 401, 'invalid-signature'],
      ['query with another message\'s typ (move-out certificate)', () => rawJwt(queryClaims(), b.signer.key, { kid: b.signer.kid, typ: Typ.MOVE_OUT }), 401, 'invalid-signature'],
    ];
    const refused = (res: MemberResponse, status: number, code: string, rule?: string) =>
      isRefusal(res, status, code) && (rule === undefined || (res.body as { rule?: unknown }).rule === rule);
    for (const [label, build, status, code, rule] of atGateway) {
      const res = await sendQuery(await build());
      tally.check(`gateway: ${label}`, refused(res, status, code, rule), { status: res.status, body: res.body });
    }

    const atA: [string, () => Promise<string>, number, string, string?][] = [
      ['envelope signed with B\'s key under the gateway\'s kid', async () => rawJwt(await forwardClaims(), b.signer.key, forwardHeader()), 401, 'invalid-signature'],
      ['envelope with alg none', async () => unsignedJwt(await forwardClaims(), forwardHeader()), 401, 'invalid-signature', ALG],
      ['envelope HS256-signed with the gateway\'s public key', async () => hs256WithPublicKey(await forwardClaims(), signingPublicPem(gw), forwardHeader()), 401, 'invalid-signature', ALG],
      ['envelope PS256-signed with an RSA key under the gateway\'s kid', async () => rawJwt(await forwardClaims(), rsa, { ...forwardHeader(), alg: 'PS256' }), 401, 'invalid-signature', ALG],
      ['envelope addressed to another municipality (aud)', async () => rawJwt(await forwardClaims({ aud: C }), gw.signer.key, forwardHeader()), 401, 'invalid-signature'],
      ['expired envelope', async () => rawJwt(await forwardClaims(window(-400, -100)), gw.signer.key, forwardHeader()), 401, 'invalid-signature'],
      ['envelope not yet valid (iat ahead)', async () => rawJwt(await forwardClaims(window(600, 800)), gw.signer.key, forwardHeader()), 401, 'invalid-signature'],
      ['envelope without jti', async () => rawJwt(await forwardClaims({ jti: undefined }), gw.signer.key, forwardHeader()), 401, 'invalid-signature'],
      ['envelope around an expired query of B', async () => {
        const staleClaims = queryClaims(window(-400, -100));
        const stale = await rawJwt(staleClaims, b.signer.key, queryHeader());
        return rawJwt(await forwardClaims({ query: stale, rid: staleClaims.rid }), gw.signer.key, forwardHeader());
      }, 401, 'invalid-signature'],
    ];
    for (const [label, build, status, code, rule] of atA) {
      const res = await sendForward(await build());
      tally.check(`A: ${label}`, refused(res, status, code, rule), { status: res.status, body: res.body });
    }
  });

  it('when staff session tokens are forged, unsigned, key-confused, for another municipality, expired or early, then the staff API refuses every one', async () => {
    const secret = parseKey(fed.member(A).env.SESSION_SECRET!, 'SESSION_SECRET');
    const me = await api('GET', `${fed.url(A)}/auth/me`, { token: await fed.login(A, 'clerk1') });
    expect(me.status).to.equal(200);
    const claims = (extra: Record<string, unknown> = {}) => ({
      sub: me.body.id, role: 'clerk', municipality: A, iss: A, aud: A, jti: randomUUID(), ver: 0, ...window(0, 600), ...extra,
    });
    const hs = (payload: Record<string, unknown>, key: Uint8Array = secret) =>
      new jose.SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'session+jwt' }).sign(key);
    // Control: a token made with A's real secret and correct claims is accepted.
    expect((await api('GET', `${fed.url(A)}/auth/me`, { token: await hs(claims()) })).status).to.equal(200);

    // Each with the refusal that names it (shared/crypto.ts verifySession).
    const attempts: [string, () => Promise<string>, string][] = [
      ['session signed with a guessed secret', () => hs(claims(), new TextEncoder().encode('guessed-secret-guessed-secret-32')), 'session-invalid'],
      ['session with alg none', async () => unsignedJwt(claims(), { typ: 'session+jwt' }), 'session-invalid'],
      ['session ES256-signed with the municipality\'s member key', () => rawJwt(claims(), a.signer.key, { kid: a.signer.kid, typ: 'session+jwt' }), 'session-invalid'],
      ['genuine session of another municipality', () => fed.login(B, 'clerk1'), 'session-invalid'],
      ['session with A\'s secret but addressed to another municipality (aud/iss)', () => hs(claims({ aud: B, iss: B, municipality: B })), 'session-invalid'],
      ['expired session with A\'s secret', () => hs(claims(window(-1200, -600))), 'session-expired'],
      ['session not valid before ten minutes from now (nbf)', () => hs(claims({ nbf: Math.floor(Date.now() / 1000) + 600 })), 'session-not-yet-valid'],
    ];
    for (const [label, build, refusal] of attempts) {
      const res = await api('GET', `${fed.url(A)}/auth/me`, { token: await build() });
      tally.check(`staff API: ${label}`, isRefusal(res, 401, refusal), { status: res.status, body: res.body });
    }
  });

  it('when a query or an envelope is replayed — at once, after a restart of the gateway or of A, and after it expired — then it is refused every time', async () => {
    // Tokens that expire soon: accepted now (exp is 54 s past, inside the 60 s tolerance), replayed once past it.
    const soonQuery = await rawJwt(queryClaims(window(-240, -54)), b.signer.key, queryHeader());
    const soonForward = await rawJwt(await forwardClaims(window(-240, -54)), gw.signer.key, forwardHeader());
    const soonExp = Math.floor(Date.now() / 1000) - 54;
    expect((await sendQuery(soonQuery)).status, 'short-lived query accepted once').to.equal(200);
    expect((await sendForward(soonForward)).status, 'short-lived envelope accepted once').to.equal(200);

    const query = await rawJwt(queryClaims(), b.signer.key, queryHeader());
    expect((await sendQuery(query)).status).to.equal(200);
    let res = await sendQuery(query);
    tally.check('gateway: query replayed at once', isRefusal(res, 409, 'replayed'), res.body);

    const forward = await rawJwt(await forwardClaims(), gw.signer.key, forwardHeader());
    expect((await sendForward(forward)).status).to.equal(200);
    res = await sendForward(forward);
    tally.check('A: envelope replayed at once', isRefusal(res, 409, 'replayed'), res.body);

    // The gateway cannot be fooled by a fresh envelope either: B's query inside is single-use at A.
    const used = await forwardClaims();
    expect((await sendForward(await rawJwt(used, gw.signer.key, forwardHeader()))).status).to.equal(200);
    res = await sendForward(await rawJwt({ ...used, jti: randomUUID() }, gw.signer.key, forwardHeader()));
    tally.check('A: B\'s query replayed inside a fresh envelope', isRefusal(res, 409, 'replayed'), res.body);

    // Replay caches are tables: a restart forgets nothing.
    await Promise.all([fed.stop(GATEWAY_ID), fed.stop(A)]);
    await Promise.all([fed.start(GATEWAY_ID), fed.start(A)]);
    res = await sendQuery(query);
    tally.check('gateway: query replayed after a gateway restart', isRefusal(res, 409, 'replayed'), res.body);
    res = await sendForward(forward);
    tally.check('A: envelope replayed after a restart of A', isRefusal(res, 409, 'replayed'), res.body);

    await untilExpired(soonExp);
    res = await sendQuery(soonQuery);
    tally.check('gateway: query replayed after it expired', isRefusal(res, 401, 'invalid-signature'), res.body);
    res = await sendForward(soonForward);
    tally.check('A: envelope replayed after it expired', isRefusal(res, 401, 'invalid-signature'), res.body);
  });
});
