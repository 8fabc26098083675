/**
 * No gap at the tail (DESIGN.md §5; docs/PROTOCOL.md §3.0): every signed message carries its
 * signer's log head, every receiver keeps it, and a privacy officer's verification fetches the
 * heads the gateway and peers hold over mTLS. With periodic checkpoints off, so that nothing but
 * the heads in messages covers the tail: a re-hashed entry is named at the first head it
 * contradicts, and a cut tail is caught by a head beyond it.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { QueryTypes, type Sequelize } from 'sequelize';
import { entryHash, GENESIS_HASH } from '../../shared/access-log/chain.ts';
import { HEADS_PATH, MEMBER_HEADS_PATH } from '../../shared/access-log/heads.ts';
import { GATEWAY_ID, ISSUER_ID, Typ } from '../../shared/federation/protocol.ts';
import { pkiPaths } from '../../shared/federation/pki.ts';
import { auditVerifyDatabaseArgs, liftAppendOnlySql, rawSqlAsOwner } from '../fixtures/database.ts';
import { api } from '../fixtures/http.ts';
import { ask, moveResident, startInProcessFederation, TAWARAMOTO, TODA, type InProcessFederation, type MovedResident } from '../fixtures/inprocess-federation.ts';
import { jose } from '../../shared/crypto.ts';
import { issueResidentCertificate, type ResidentIdentity } from '../../shared/federation/pki.ts';
import { findResidentByAddressee } from '../../services/municipality/residents/service.ts';
import { gatherTrail } from '../../services/municipality/trail/service.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const A = TAWARAMOTO;
const B = TODA;

interface HeadRow { member: string; seq: number; hash: string; exchange: string; messageHash: string | null }

const headsHeldAt = (sequelize: Sequelize, member: string) =>
  sequelize.query<HeadRow>('SELECT member, seq, hash, exchange, "messageHash" FROM witnessed_heads WHERE member = :member ORDER BY seq', {
    type: QueryTypes.SELECT, replacements: { member },
  }).then((rows) => rows.map((r) => ({ ...r, seq: Number(r.seq) })));

const hashAt = async (sequelize: Sequelize, seq: number): Promise<string | undefined> => {
  const [row] = await sequelize.query<{ hash: string }>('SELECT hash FROM access_log WHERE seq = :seq', { type: QueryTypes.SELECT, replacements: { seq } });
  return row?.hash;
};

const literal = (value: unknown) => (value === null || value === undefined ? 'NULL' : `'${String(value instanceof Date ? value.toISOString() : value).replace(/'/g, "''")}'`);

/**
 * Rewrites a member's log as its owner could: the subject of entry `seq` changed and every hash
 * from there on recomputed, so the chain itself verifies.
 */
async function rehashFrom(sequelize: Sequelize, env: { DATABASE_PATH?: string; DATABASE_URL?: string }, seq: number): Promise<void> {
  const rows = await sequelize.query<Record<string, unknown> & { seq: number }>('SELECT * FROM access_log ORDER BY seq', { type: QueryTypes.SELECT });
  let prev = GENESIS_HASH;
  const statements = [liftAppendOnlySql(['access_log'])];
  for (const r of rows) {
    if (Number(r.seq) < seq) { prev = r.hash as string; continue; }
    const row = Number(r.seq) === seq ? { ...r, subject: '0000000000' } : { ...r };
    const hash = entryHash(prev, row as never);
    statements.push(`UPDATE access_log SET subject = ${literal(row.subject)}, "prevHash" = ${literal(prev)}, hash = ${literal(hash)} WHERE seq = ${Number(r.seq)};`);
    prev = hash;
  }
  await rawSqlAsOwner(env, statements.join('\n'));
}

describe('the log tail: heads carried in every message, kept by receivers, checked by verification', () => {
  let fed: InProcessFederation;
  let moved: MovedResident;
  let clerkB: string;

  before(async function () {
    this.timeout(120_000);
    fed = await startInProcessFederation({ municipalities: [A, B] });
    moved = await moveResident(fed, A, B);
    clerkB = await fed.m(B).login('clerk1');
    const first = await ask(fed.m(B), clerkB, moved.toAddressee, A);
    expect(first.status, JSON.stringify(first)).to.equal('ok');
  });
  after(async () => fed?.close());

  it('when B queries A through the gateway, then the gateway keeps B\'s and A\'s heads, A keeps the gateway\'s and B\'s, B keeps A\'s, and each is an entry of that member\'s log', async () => {
    const gateway = fed.gateway.gateway.ctx.sequelize;
    const atA = fed.m(A).ctx.sequelize;
    const atB = fed.m(B).ctx.sequelize;
    const held = {
      'B at the gateway': { rows: await headsHeldAt(gateway, B), log: atB, exchange: 'query' },
      'A at the gateway': { rows: await headsHeldAt(gateway, A), log: atA, exchange: 'answer' },
      'gateway at A': { rows: await headsHeldAt(atA, GATEWAY_ID), log: gateway, exchange: 'forward' },
      'B at A': { rows: await headsHeldAt(atA, B), log: atB, exchange: 'query' },
      'A at B': { rows: await headsHeldAt(atB, A), log: atA, exchange: 'answer' },
    };
    for (const [what, { rows, log, exchange }] of Object.entries(held)) {
      expect(rows.map((r) => r.exchange), what).to.include(exchange);
      for (const r of rows) {
        // seq 0 is the empty log; any other head must be an entry its member really holds.
        expect(r.seq === 0 ? GENESIS_HASH : await hashAt(log, r.seq), `${what} seq ${r.seq}`).to.equal(r.hash);
      }
    }
    // A signs its head after the entries of its answer: the gateway and B witness those entries themselves.
    const [answered] = await atA.query<{ seq: number }>(`SELECT max(seq) AS seq FROM access_log WHERE action = 'exchange.query.answer'`, { type: QueryTypes.SELECT });
    expect(Math.max(...held['A at B'].rows.map((r) => r.seq))).to.be.at.least(Number(answered!.seq));
  });

  it('when B gathers a resident\'s trail at A, then the trail request, forward and answer carry their signers\' heads and every receiver keeps them, each an entry of that member\'s log', async () => {
    const gateway = fed.gateway.gateway.ctx.sequelize;
    const atA = fed.m(A).ctx.sequelize;
    const atB = fed.m(B).ctx.sequelize;
    // The resident's card and their signed sign-in at B, as the page holds them (docs/PROTOCOL.md §3.10).
    const resident = (await findResidentByAddressee(fed.m(B).ctx, moved.toAddressee))!;
    const issued = await issueResidentCertificate(fed.pki.ca, { kana: resident.kana, birthDate: resident.birthDate, sex: resident.sex as ResidentIdentity['sex'] });
    const signIn = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify({ aud: B, nonce: 'n'.repeat(43), iat: Math.floor(Date.now() / 1000) })))
      .setProtectedHeader({ alg: 'ES256', typ: Typ.RESIDENT_SIGN_IN }).sign(createPrivateKey(issued.key!));
    const who = { kind: 'resident' as const, credentialId: 'test', residentId: resident.id, addresseeNumber: resident.addresseeNumber };
    const [gathered] = await gatherTrail(fed.m(B).ctx, fed.m(B).municipality.federation!.link, { who, code: resident.code!, certificate: issued.cert, signIn }, [A]);
    expect(gathered).to.include({ status: 'ok' });

    const trail = (rows: HeadRow[]) => rows.filter((r) => r.exchange === 'trail');
    const held = {
      'B at the gateway': { rows: trail(await headsHeldAt(gateway, B)), log: atB },
      'A at the gateway': { rows: trail(await headsHeldAt(gateway, A)), log: atA },
      'gateway at A': { rows: trail(await headsHeldAt(atA, GATEWAY_ID)), log: gateway },
      'B at A': { rows: trail(await headsHeldAt(atA, B)), log: atB },
      'A at B': { rows: trail(await headsHeldAt(atB, A)), log: atA },
    };
    for (const [what, { rows, log }] of Object.entries(held)) {
      expect(rows.length, what).to.be.greaterThan(0);
      for (const r of rows) expect(r.seq === 0 ? GENESIS_HASH : await hashAt(log, r.seq), `${what} seq ${r.seq}`).to.equal(r.hash);
    }
    // A signs its head after its entry about the answer: the gateway and B witness that entry.
    const [answered] = await atA.query<{ seq: number }>(`SELECT max(seq) AS seq FROM access_log WHERE action = 'exchange.trail.answer'`, { type: QueryTypes.SELECT });
    for (const what of ['A at the gateway', 'A at B'] as const) expect(Math.max(...held[what].rows.map((r) => r.seq)), what).to.be.at.least(Number(answered!.seq));
  });

  it('when residents are registered, then B keeps the issuer\'s head, the issuer keeps B\'s and the gateway\'s, the gateway keeps the issuer\'s, each with the hash of the statement its sender signed, and each is an entry of that member\'s log', async () => {
    const gateway = fed.gateway.gateway.ctx.sequelize;
    const issuer = fed.issuer.issuer.ctx.sequelize;
    const atB = fed.m(B).ctx.sequelize;
    const held = {
      'issuer at B': { rows: await headsHeldAt(atB, ISSUER_ID), log: issuer },
      'B at the issuer': { rows: await headsHeldAt(issuer, B), log: atB },
      'gateway at the issuer': { rows: await headsHeldAt(issuer, GATEWAY_ID), log: gateway },
      'issuer at the gateway': { rows: await headsHeldAt(gateway, ISSUER_ID), log: issuer },
    };
    for (const [what, { rows, log }] of Object.entries(held)) {
      expect(rows.filter((r) => r.exchange === 'registration').length, what).to.be.greaterThan(0);
      // A registration head is a signed statement of its sender (docs/PROTOCOL.md §3.0): the holder keeps its hash.
      for (const r of rows.filter((x) => x.exchange === 'registration')) expect(r.messageHash, `${what} seq ${r.seq}`).to.match(/^[0-9a-f]{64}$/);
      for (const r of rows) expect(r.seq === 0 ? GENESIS_HASH : await hashAt(log, r.seq), `${what} seq ${r.seq}`).to.equal(r.hash);
    }
    // The issuer reads its head for an answer after the batch's entries: its newest entry is witnessed by a municipality.
    const [issued] = await issuer.query<{ seq: number }>('SELECT max(seq) AS seq FROM access_log', { type: QueryTypes.SELECT });
    const atMunicipalities = [...held['issuer at B'].rows, ...await headsHeldAt(fed.m(A).ctx.sequelize, ISSUER_ID)];
    expect(Math.max(...atMunicipalities.map((r) => r.seq)), 'the issuer\'s newest entry').to.equal(Number(issued!.seq));
  });

  it('when a member asks the gateway or a peer for heads of another member\'s log, then 403, and of its own, then the heads', async () => {
    const asB = fed.client(B);
    const others = await asB.getJson<{ type: string }>(`${fed.gateway.url}${HEADS_PATH}?member=${A}`, { expectPeer: GATEWAY_ID });
    expect(others.status).to.equal(403);
    expect(others.body.type).to.match(/\/forbidden$/);
    const atPeer = await asB.getJson<{ type: string }>(`${fed.m(A).federationUrl}${MEMBER_HEADS_PATH}?member=${GATEWAY_ID}`, { expectPeer: A });
    expect(atPeer.status).to.equal(403);
    const own = await asB.getJson<{ heads: HeadRow[] }>(`${fed.m(A).federationUrl}${MEMBER_HEADS_PATH}?member=${B}`, { expectPeer: A });
    expect(own.status).to.equal(200);
    expect(own.body.heads.length).to.be.greaterThan(0);
    expect(own.body.heads.every((h) => h.member === B)).to.equal(true);
    const bad = await asB.getJson<{ field: string }>(`${fed.gateway.url}${HEADS_PATH}?member=${B}&after=-1`, { expectPeer: GATEWAY_ID });
    expect(bad.status).to.equal(400);
    expect(bad.body.field).to.equal('after');
  });

  it('when nothing was altered, then POST /audit/verify at A passes against the heads fetched from the gateway and from B', async () => {
    const officer = await fed.m(A).login('privacyofficer1');
    const verified = await api('POST', `${fed.m(A).url}/audit/verify`, { token: officer });
    expect(verified.status).to.equal(200);
    expect(verified.body.ok, JSON.stringify(verified.body.broken)).to.equal(true);
    const sources = Object.fromEntries(verified.body.witnessedHeads.sources.map((s: { holder: string; heads: number }) => [s.holder, s.heads]));
    expect(sources[GATEWAY_ID]).to.be.greaterThan(0);
    expect(sources[B]).to.be.greaterThan(0);
  });

  it('when B\'s last entries are cut after a later query carried a head beyond them, then verification at B reports the log truncated at the first missing seq', async () => {
    const second = await ask(fed.m(B), clerkB, moved.toAddressee, A);
    expect(second.status, JSON.stringify(second)).to.equal('ok');
    const atB = fed.m(B).ctx.sequelize;
    // The first query's own entries (send, import) and everything after: the tail no checkpoint covers.
    const [first] = await atB.query<{ seq: number }>(`SELECT min(seq) AS seq FROM access_log WHERE action = 'exchange.query.send'`, { type: QueryTypes.SELECT });
    const cutFrom = Number(first!.seq);
    const witnessed = Math.max(...(await headsHeldAt(fed.gateway.gateway.ctx.sequelize, B)).map((h) => h.seq));
    expect(witnessed, 'the second query carried a head past the first query\'s entries').to.be.at.least(cutFrom);
    // Signed in before the cut, so the sign-in itself is no entry past it.
    const officer = await fed.m(B).login('privacyofficer1');
    await rawSqlAsOwner(fed.m(B).ctx.config, `${liftAppendOnlySql(['access_log'])}\nDELETE FROM access_log WHERE seq >= ${cutFrom};`);

    const verified = await api('POST', `${fed.m(B).url}/audit/verify`, { token: officer });
    expect(verified.status).to.equal(200);
    expect(verified.body.ok).to.equal(false);
    expect(verified.body.broken).to.include({ kind: 'missing-entry', seq: cutFrom });
    expect(verified.body.broken.detail).to.match(/truncated/);
    // Any later message B signed carries its head: a query, an answer, or a resident's trail request (docs/PROTOCOL.md §3.10).
    expect(verified.body.broken.checkpoint.exchange).to.be.oneOf(['query', 'answer', 'trail']);
  });

  it('when A rewrites one entry of its tail and re-hashes the rest, then verification names the first entry a head held elsewhere contradicts, and which holder saw it', async () => {
    const atA = fed.m(A).ctx.sequelize;
    const [answer] = await atA.query<{ seq: number }>(`SELECT min(seq) AS seq FROM access_log WHERE action = 'exchange.query.answer'`, { type: QueryTypes.SELECT });
    const altered = Number(answer!.seq);
    // Every holder of A's heads: the gateway and B (the query), the issuer (A's registrations).
    const heads = [
      ...await headsHeldAt(fed.gateway.gateway.ctx.sequelize, A), ...await headsHeldAt(fed.m(B).ctx.sequelize, A), ...await headsHeldAt(fed.issuer.issuer.ctx.sequelize, A),
    ];
    const firstWitnessed = Math.min(...heads.filter((h) => h.seq >= altered).map((h) => h.seq));
    const lastBefore = Math.max(0, ...heads.filter((h) => h.seq < altered).map((h) => h.seq));
    const officer = await fed.m(A).login('privacyofficer1');
    await rehashFrom(atA, fed.m(A).ctx.config, altered);

    const verified = await api('POST', `${fed.m(A).url}/audit/verify`, { token: officer });
    expect(verified.status).to.equal(200);
    expect(verified.body.ok).to.equal(false);
    expect(verified.body.broken).to.include({ kind: 'checkpoint-contradiction', seq: firstWitnessed, lastAgreeingSeq: lastBefore });
    expect(verified.body.broken.checkpoint.heldBy).to.be.oneOf([GATEWAY_ID, B, ISSUER_ID]);
    expect(verified.body.broken.checkpoint.exchange).to.equal('answer');
    expect(verified.body.broken.detail).to.match(new RegExp(`after seq ${lastBefore} .* at or before seq ${firstWitnessed}`));
  });

  it('when the privacy officer runs npm run audit:verify with the municipality\'s certificate and the gateway\'s address, then the heads are fetched over mTLS and the same entry is named', async function () {
    this.timeout(120_000);
    const { ctx } = fed.m(A);
    const database = auditVerifyDatabaseArgs({ [A]: ctx.config }).concat(ctx.config.DATABASE_URL ? [] : ['--database', `${A}=${ctx.config.DATABASE_PATH}`]);
    const empty = mkdtempSync(join(tmpdir(), 'hikitsugi-empty-'));
    const args = ['run', '--silent', 'audit:verify', '--', A, '--data-dir', empty, ...database,
      '--gateway', fed.gateway.url, '--cert-dir', pkiPaths(fed.pki.dir).member(A), '--json'];
    const out = await run('npm', args, { cwd: ROOT })
      .then(() => ({ code: 0, stdout: '' }), (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }))
      .finally(() => rmSync(empty, { recursive: true, force: true }));
    expect(out.code, JSON.stringify(out)).to.equal(1);
    const report = JSON.parse(out.stdout);
    const officer = await fed.m(A).login('privacyofficer1');
    const viaApi = await api('POST', `${fed.m(A).url}/audit/verify`, { token: officer });
    expect(report.broken).to.include({ kind: 'checkpoint-contradiction', seq: viaApi.body.broken.seq });
    expect(report.checkpointSources.join(' ')).to.match(new RegExp(`${GATEWAY_ID} heads \\(\\d+\\)`)).and.match(new RegExp(`${B} heads \\(\\d+\\)`));
  });
  it('when B has a checkpoint countersigned, then B keeps the gateway\'s head the countersignature carries', async () => {
    const officer = await fed.m(B).login('privacyofficer1');
    const made = await api('POST', `${fed.m(B).url}/audit/checkpoints`, { token: officer });
    expect(made.status, JSON.stringify(made.body)).to.be.oneOf([200, 201]);
    expect(made.body.witnessedBy).to.equal(GATEWAY_ID);
    const rows = (await headsHeldAt(fed.m(B).ctx.sequelize, GATEWAY_ID)).filter((r) => r.exchange === 'countersignature');
    expect(rows.length).to.be.greaterThan(0);
    for (const r of rows) expect(await hashAt(fed.gateway.gateway.ctx.sequelize, r.seq), `seq ${r.seq}`).to.equal(r.hash);
  });

  it('when the gateway\'s privacy officer verifies, then the heads the municipalities and the issuer hold are fetched, and a rewrite of the gateway\'s tail is named at the first head it contradicts', async () => {
    const gateway = fed.gateway.gateway;
    const officer = await fed.gatewayLogin();
    const clean = await api('POST', `${fed.gatewayStaffUrl}/audit/verify`, { token: officer });
    expect(clean.status).to.equal(200);
    expect(clean.body.ok, JSON.stringify(clean.body.broken)).to.equal(true);
    const sources = Object.fromEntries(clean.body.witnessedHeads.sources.map((s: { holder: string; heads: number }) => [s.holder, s.heads]));
    for (const holder of [A, B, ISSUER_ID]) expect(sources[holder], `${holder} in ${JSON.stringify(clean.body.witnessedHeads.sources)}`).to.be.greaterThan(0);

    // The gateway's first forward to A: its entries and every head after it are what the rewrite must contradict.
    const log = gateway.ctx.sequelize;
    const [forward] = await log.query<{ seq: number }>(`SELECT min(seq) AS seq FROM access_log WHERE action = 'query.route'`, { type: QueryTypes.SELECT });
    const altered = Number(forward!.seq);
    const heads = [
      ...await headsHeldAt(fed.m(A).ctx.sequelize, GATEWAY_ID), ...await headsHeldAt(fed.m(B).ctx.sequelize, GATEWAY_ID), ...await headsHeldAt(fed.issuer.issuer.ctx.sequelize, GATEWAY_ID),
    ];
    const firstWitnessed = Math.min(...heads.filter((h) => h.seq >= altered).map((h) => h.seq));
    await rehashFrom(log, gateway.ctx.config, altered);

    const verified = await api('POST', `${fed.gatewayStaffUrl}/audit/verify`, { token: officer });
    expect(verified.status).to.equal(200);
    expect(verified.body.ok).to.equal(false);
    expect(verified.body.broken).to.include({ kind: 'checkpoint-contradiction', seq: firstWitnessed });
    expect(verified.body.broken.checkpoint.heldBy).to.be.oneOf([A, B, ISSUER_ID]);
  });
});
