/**
 * My Number leak scan. After the whole flow on a process federation — moves with and without
 * consent, queries that succeed, are refused locally, at the gateway or at the source, a batch
 * over several sources, the exception path, refused move-ins — every byte the gateway and the
 * issuer hold (database files with -wal and -shm, directory, logs), every member's log, every
 * message the gateway captured, and the municipalities' own database files are searched for
 * every My Number in the federation, its unkeyed SHA-256/SHA-1/MD5 (hex and base64) and its own
 * base64, also inside base64url (JWS) text. Controls show the scanner finds each form, and that
 * the files scanned are the live ones.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { GATEWAY_ID, ISSUER_ID } from '../../shared/federation/protocol.ts';
import { api } from '../fixtures/http.ts';
import { AKIOTA, securityFederation, TAWARAMOTO, TODA, type SecurityFederation } from './federation.ts';
import { allMyNumbers, codesOf, figure, heldResidents, leakNeedles, moveResident, scanForLeaks, type Moved } from './support.ts';

const A = TAWARAMOTO;
const B = TODA;
const C = AKIOTA;

const filesIn = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)).filter((p) => statSync(p).isFile()) : []);

describe('security: My Number leak scan', function () {
  this.timeout(240_000);
  let fed: SecurityFederation;
  const moves: Moved[] = [];

  before(async () => {
    fed = await securityFederation();
  });

  it('when the scanner is given a My Number in each form it must catch, then it finds every one (control)', () => {
    const n = '123456789018';
    const needles = leakNeedles([n]);
    const jws = (payload: unknown) => `eyJhbGciOiJQUzI1NiJ9.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`;
    const planted = [
      `plain ${n} in a log line`,
      `hash ${createHash('sha256').update(n).digest('hex')}`,
      `sha1 ${createHash('sha1').update(n).digest('hex').toUpperCase()}`,
      `md5 ${createHash('md5').update(n).digest('base64')}`,
      `ABCDEFGHIJKLMNOPQRSTUVWXYZ234567${jws({ subjects: [{ myNumber: n }] })}`,
      `{"forward":"${jws({ query: jws({ note: n }) })}"}`,
    ];
    for (const text of planted) expect(scanForLeaks(Buffer.from(text, 'latin1'), needles), text.slice(0, 60)).to.have.length.greaterThan(0);
    expect(scanForLeaks(Buffer.from('nothing to see 123456789019 (not a valid My Number)'), needles)).to.deep.equal([]);
  });

  it('when the whole flow has run, then no My Number or its unkeyed hash is in any gateway or issuer file, any log, any captured message or any municipality database', async () => {
    const clerkB = await fed.login(B, 'clerk1');
    const clerkA = await fed.login(A, 'clerk1');
    // Moves: with consent (A→B), without (C→B), and C→A with consent, whose identity A then changes.
    moves.push(await moveResident(fed, A, B), await moveResident(fed, C, B, { consent: false }), await moveResident(fed, C, A));
    const [withConsent, withoutConsent, toA] = moves as [Moved, Moved, Moved];
    const renamed = await api('PATCH', `${fed.url(A)}/residents/${toA.toAddressee}`, { token: clerkA, body: { kana: 'チガウ ナマエ', reason: '氏名変更' } });
    expect(renamed.status, JSON.stringify(renamed.body)).to.equal(200);

    const query = (token: string, code: string, subjects: unknown[]) => api('POST', `${fed.url(code)}/exchange/queries`, { token, body: { purpose: 'next-dose-scheduling', subjects } });
    // A batch over two sources: released, refused at B (no consent), refused at the source (identity mismatch).
    const batch = await query(clerkB, B, [
      { addresseeNumber: withConsent.toAddressee, source: A }, { addresseeNumber: withoutConsent.toAddressee, source: C },
    ]);
    expect(batch.status, JSON.stringify(batch.body)).to.equal(200);
    expect(batch.body.results.map((r: { status: string }) => r.status)).to.deep.equal(['ok', 'no_consent']);
    const mismatch = await query(clerkA, A, [{ addresseeNumber: toA.toAddressee, source: C }]);
    expect(mismatch.status, JSON.stringify(mismatch.body)).to.equal(200);
    expect(mismatch.body.results[0].status).to.equal('identity_mismatch');
    // The exception path: asked by one clerk, approved by another, used once.
    const asked = await api('POST', `${fed.url(B)}/exchange/exception-requests`, {
      token: clerkB, body: { addresseeNumber: withoutConsent.toAddressee, source: C, purpose: 'next-dose-scheduling', justification: '救急搬送され意識がなく同意を得られないため接種歴の確認が必要' },
    });
    expect(asked.status, JSON.stringify(asked.body)).to.equal(201);
    expect((await api('POST', `${fed.url(B)}/exchange/exception-requests/${asked.body.id}/approve`, { token: await fed.login(B, 'clerk2') })).status).to.equal(200);
    const exception = await query(clerkB, B, [{ addresseeNumber: withoutConsent.toAddressee, source: C, exceptionId: asked.body.id }]);
    expect(exception.body.results[0].status).to.equal('ok');
    // A bulk move-in query job (転入者一斉照会) over the same residents, run by B's background runner.
    const job = await api('POST', `${fed.url(B)}/exchange/bulk-queries`, {
      token: clerkB, body: { purpose: 'next-dose-scheduling', subjects: [{ addresseeNumber: withConsent.toAddressee, source: A }, { addresseeNumber: withoutConsent.toAddressee, source: C }] },
    });
    expect(job.status, JSON.stringify(job.body)).to.equal(202);
    for (let i = 0; ; i++) {
      const progress = await api('GET', `${fed.url(B)}/exchange/bulk-queries/${job.body.id}`, { token: clerkB });
      if (progress.body.status === 'completed') break;
      if (i > 120) expect.fail(`bulk job still ${JSON.stringify(progress.body)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    // Refusals that carry a My Number in their request: a second move-in of a current resident.
    const again = await api('POST', `${fed.url(B)}/move-ins`, { token: clerkB, body: { certificate: 'eyJhbGciOiJQUzI1NiJ9.e30.c2ln', myNumber: withConsent.myNumber, address: 'x' } });
    expect(again.status).to.be.within(400, 499);
    const duplicate = await api('POST', `${fed.url(B)}/residents`, {
      token: clerkB, body: { name: '重複 太郎', kana: 'ジュウフク タロウ', birthDate: '1970-01-01', sex: 'male', address: 'x', myNumber: withConsent.myNumber },
    });
    expect(duplicate.status).to.equal(409);
    // Let every member flush what it logs after answering.
    await Promise.all([A, B, C].map((code) => fed.waitForCodes(code)));
    await new Promise((r) => setTimeout(r, 500));

    const myNumbers = await allMyNumbers(fed);
    const needles = leakNeedles(myNumbers);
    const groups: Record<string, string[]> = {
      'gateway and issuer files (databases with -wal/-shm, directory, logs)': [...filesIn(join(fed.dataDir, GATEWAY_ID)), ...filesIn(join(fed.dataDir, ISSUER_ID))],
      'member logs': fed.members.map((m) => m.logFile),
      'captured gateway messages': filesIn(fed.captureDir),
      'municipality database files (My Numbers only encrypted)': [A, B, C].flatMap((code) => filesIn(join(fed.dataDir, code)).filter((f) => /\.sqlite(-wal|-shm)?$/.test(f))),
    };

    // Controls: the files are the live ones — the gateway holds the moved resident's codes, the capture its query.
    const codes = await codesOf(fed, withConsent);
    const gatewayBytes = Buffer.concat(groups['gateway and issuer files (databases with -wal/-shm, directory, logs)']!.map((f) => readFileSync(f)));
    expect(gatewayBytes.includes(codes.toCode) && gatewayBytes.includes(codes.fromCode), 'gateway files hold the codes just registered').to.equal(true);
    const captured = Buffer.concat(groups['captured gateway messages']!.map((f) => readFileSync(f)));
    expect(captured.includes(batch.body.requestId), 'the capture holds the batch just sent').to.equal(true);
    // Registration is scanned too (docs/DESIGN.md §4.2): the blinded points the gateway evaluated and the correspondences the issuer registered.
    const capturedText = captured.toString('utf8');
    expect(capturedText.includes('"/codes/evaluate"') && capturedText.includes('"/correspondence/batch"'), 'the capture holds registration traffic').to.equal(true);
    expect((await heldResidents(fed, B)).some((r) => r.addresseeNumber === withConsent.toAddressee)).to.equal(true);

    let files = 0;
    let bytes = 0;
    const hits: string[] = [];
    for (const [group, paths] of Object.entries(groups)) {
      let groupBytes = 0;
      for (const path of paths) {
        const content = readFileSync(path);
        files += 1;
        groupBytes += content.length;
        for (const hit of scanForLeaks(content, needles)) hits.push(`${path}: ${hit}`);
      }
      bytes += groupBytes;
      figure(`  ${group}: ${paths.length} files, ${(groupBytes / 1024).toFixed(0)} kB`);
    }
    const messages = captured.toString('utf8').split('\n').filter(Boolean).length;
    figure(`leak scan: ${myNumbers.length} My Numbers (${needles.count} needles: plain, SHA-256/SHA-1/MD5 hex and base64, base64) in ${files} files, ${(bytes / 1048576).toFixed(1)} MB, ${messages} captured messages: ${hits.length} hits`);
    expect(hits, hits.slice(0, 10).join('\n')).to.deep.equal([]);
  });
});
