import { expect } from 'chai';
import fc from 'fast-check';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueryTypes, type Sequelize } from 'sequelize';
import {
  ACCESS_LOG_TABLE, appendAccess, defineAccessLog, entryHash, GENESIS_HASH, protectAccessLog, protectAppendOnly, type AccessLogModel, type ChainedRow,
} from '../../shared/access-log/chain.ts';
import {
  CHECKPOINT_TABLE, createCheckpoint, defineCheckpoints, heldCheckpoints, reconcileEntries, recordCountersignature,
  selectReconcileEntries, verifyChain, witnessCheckpoint, type CheckpointModel,
} from '../../shared/access-log/verify.ts';
import { csvCell, csvRow } from '../../shared/access-log/query.ts';
import { openDatabase } from '../../shared/platform/db.ts';
import type { AppError } from '../../shared/platform/errors.ts';
import type { Signer } from '../../shared/federation/messages.ts';
import { removeDir } from '../fixtures/municipality.ts';

/** One member's database as every member has it: access log and checkpoints, both append-only. */
interface MemberDb {
  id: string;
  sequelize: Sequelize;
  log: AccessLogModel;
  checkpoints: CheckpointModel;
}

async function openMemberDb(dir: string, id: string): Promise<MemberDb> {
  const sequelize = await openDatabase({ storage: join(dir, id, `${id}.sqlite`) });
  const log = defineAccessLog(sequelize);
  const checkpoints = defineCheckpoints(sequelize);
  await sequelize.sync();
  await protectAccessLog(sequelize);
  await protectAppendOnly(sequelize, CHECKPOINT_TABLE);
  return { id, sequelize, log, checkpoints };
}

async function appendEntries(db: MemberDb, count: number, overrides: (i: number) => Record<string, unknown> = () => ({})): Promise<void> {
  for (let i = 0; i < count; i++) {
    await db.sequelize.transaction((t) => appendAccess(db.log, t, {
      actorType: 'staff', actorId: `staff-${i % 3}`, actorRole: 'clerk', subject: `00000000${i % 10}`.slice(-10), action: 'resident.read',
      outcome: 'allowed', requestId: `req-${i}`, ...overrides(i),
    }));
  }
}

/** What an attacker with the file does first: the append-only triggers are just SQL. */
async function dropTriggers(db: MemberDb): Promise<void> {
  for (const table of [ACCESS_LOG_TABLE, CHECKPOINT_TABLE]) {
    await db.sequelize.query(`DROP TRIGGER IF EXISTS ${table}_no_update`);
    await db.sequelize.query(`DROP TRIGGER IF EXISTS ${table}_no_delete`);
  }
}

const rowsOf = (db: MemberDb) => db.sequelize.query<ChainedRow & { seq: number }>(
  `SELECT * FROM ${ACCESS_LOG_TABLE} ORDER BY seq`, { type: QueryTypes.SELECT },
);

/** A member signing key of the federation's kind (EC P-256), outside any PKI. */
function testSigner(id: string): Signer & { publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { id, key: privateKey, kid: `${id}-test`, publicKey };
}

describe('access-log hash chain verification', () => {
  let dir: string;
  let n = 0;
  const fresh = () => openMemberDb(dir, `m${++n}`);
  const open: MemberDb[] = [];
  const track = async (p: Promise<MemberDb>) => {
    const db = await p;
    open.push(db);
    return db;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hikitsugi-chain-'));
  });
  afterEach(async () => {
    while (open.length) await open.pop()!.sequelize.close();
  });
  after(() => removeDir(dir));

  it('when the chain is intact, then verification reports OK with the entry count and head', async () => {
    const db = await track(fresh());
    await appendEntries(db, 12);
    const rows = await rowsOf(db);
    const report = await verifyChain(db.sequelize, { member: db.id, pageSize: 5 });
    expect(report).to.include({ ok: true, entries: 12 });
    expect(report.head).to.deep.equal({ seq: 12, hash: rows[11]!.hash });
    expect(report.broken).to.equal(undefined);
  });

  it('when the log is empty, then it verifies as OK with no head', async () => {
    const db = await track(fresh());
    expect(await verifyChain(db.sequelize, { member: db.id })).to.include({ ok: true, entries: 0, head: null });
  });

  it('when the triggers are present, then UPDATE and DELETE on the log and on checkpoints are refused', async () => {
    const db = await track(fresh());
    await appendEntries(db, 2);
    const signer = testSigner(db.id);
    await createCheckpoint(db.sequelize, db.checkpoints, signer);
    for (const sql of [
      `UPDATE ${ACCESS_LOG_TABLE} SET subject = 'x' WHERE seq = 1`, `DELETE FROM ${ACCESS_LOG_TABLE} WHERE seq = 2`,
      `UPDATE ${CHECKPOINT_TABLE} SET hash = 'x'`, `DELETE FROM ${CHECKPOINT_TABLE}`,
    ]) {
      let error: { message: string; parent?: Error } | undefined;
      try {
        await db.sequelize.query(sql);
      } catch (err) {
        error = err as typeof error;
      }
      expect((error?.parent ?? error)?.message, sql).to.match(/append-only/);
    }
    expect(await verifyChain(db.sequelize, { member: db.id })).to.include({ ok: true, entries: 2 });
  });

  it('when one field of an entry is edited in the file, then the first broken entry is that seq (hash-mismatch)', async () => {
    const db = await track(fresh());
    await appendEntries(db, 10);
    await dropTriggers(db);
    await db.sequelize.query(`UPDATE ${ACCESS_LOG_TABLE} SET purpose = 'certificate-issuance' WHERE seq = 6`);
    const report = await verifyChain(db.sequelize, { member: db.id, pageSize: 4 });
    expect(report.ok).to.equal(false);
    expect(report.broken).to.include({ seq: 6, kind: 'hash-mismatch' });
    expect(report.broken!.detail).to.match(/recomputed/);
    expect(report.entries).to.equal(5);
  });

  it('when any single field of any entry is changed, then verification names exactly that entry', async () => {
    const db = await track(fresh());
    await appendEntries(db, 8);
    await dropTriggers(db);
    const fields = ['at', 'requestId', 'actorId', 'actorRole', 'subject', 'action', 'purpose', 'outcome', 'reason', 'flags', 'details', 'recordIds'];
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 8 }), fc.constantFrom(...fields), fc.string({ minLength: 1, maxLength: 12 }),
      async (seq, field, value) => {
        const [row] = await db.sequelize.query<Record<string, unknown>>(`SELECT "${field}" AS v FROM ${ACCESS_LOG_TABLE} WHERE seq = :seq`, { type: QueryTypes.SELECT, replacements: { seq } });
        fc.pre(row!.v !== value);
        await db.sequelize.query(`UPDATE ${ACCESS_LOG_TABLE} SET "${field}" = :value WHERE seq = :seq`, { replacements: { value, seq } });
        try {
          const report = await verifyChain(db.sequelize, { member: db.id });
          expect(report.broken).to.include({ seq, kind: 'hash-mismatch' });
        } finally {
          await db.sequelize.query(`UPDATE ${ACCESS_LOG_TABLE} SET "${field}" = :value WHERE seq = :seq`, { replacements: { value: row!.v, seq } });
        }
      },
    ), { numRuns: 25 });
    expect(await verifyChain(db.sequelize, { member: db.id })).to.include({ ok: true });
  });

  it('when a row is deleted, then the first broken entry is the missing seq (missing-entry)', async () => {
    const db = await track(fresh());
    await appendEntries(db, 10);
    await dropTriggers(db);
    await db.sequelize.query(`DELETE FROM ${ACCESS_LOG_TABLE} WHERE seq = 4`);
    const report = await verifyChain(db.sequelize, { member: db.id });
    expect(report.broken).to.include({ seq: 4, kind: 'missing-entry', expected: 4, actual: 5 });
  });

  it('when two rows swap places, then the first of them is named as reordered', async () => {
    const db = await track(fresh());
    await appendEntries(db, 10);
    await dropTriggers(db);
    await db.sequelize.query(`UPDATE ${ACCESS_LOG_TABLE} SET seq = -1 WHERE seq = 3`);
    await db.sequelize.query(`UPDATE ${ACCESS_LOG_TABLE} SET seq = 3 WHERE seq = 7`);
    await db.sequelize.query(`UPDATE ${ACCESS_LOG_TABLE} SET seq = 7 WHERE seq = -1`);
    const report = await verifyChain(db.sequelize, { member: db.id });
    expect(report.broken).to.include({ seq: 3, kind: 'reordered', actual: 7 });
    expect(report.broken!.detail).to.match(/written as seq 7/);
  });

  it('when an entry is edited and re-hashed alone, then the next entry is named for its broken link', async () => {
    const db = await track(fresh());
    await appendEntries(db, 6);
    await dropTriggers(db);
    const row = (await rowsOf(db))[2]!;
    const forged = { ...row, subject: '9999999999' };
    await db.sequelize.query(`UPDATE ${ACCESS_LOG_TABLE} SET subject = :subject, hash = :hash WHERE seq = 3`, {
      replacements: { subject: forged.subject, hash: entryHash(row.prevHash, forged) },
    });
    const report = await verifyChain(db.sequelize, { member: db.id });
    expect(report.broken).to.include({ seq: 4, kind: 'broken-link', expected: entryHash(row.prevHash, forged), actual: row.hash });
  });

  it('when the log is truncated after a checkpoint, then the first removed seq is named with that checkpoint', async () => {
    const db = await track(fresh());
    const signer = testSigner(db.id);
    await appendEntries(db, 9);
    await createCheckpoint(db.sequelize, db.checkpoints, signer);
    await dropTriggers(db);
    await db.sequelize.query(`DELETE FROM ${ACCESS_LOG_TABLE} WHERE seq > 6`);
    const held = await heldCheckpoints(db.checkpoints, db.id, db.id, () => signer.publicKey);
    expect(await verifyChain(db.sequelize, { member: db.id })).to.include({ ok: true }); // alone, a shorter chain looks fine
    const report = await verifyChain(db.sequelize, { member: db.id, checkpoints: held.checkpoints });
    expect(report.broken).to.include({ seq: 7, kind: 'missing-entry', expected: 9, actual: 6 });
    expect(report.broken!.detail).to.match(/truncated/);
    expect(report.broken!.checkpoint).to.include({ seq: 9 });
  });

  it('when a member rewrote and re-hashed its whole chain and its own checkpoints, then the checkpoint the gateway holds catches it', async () => {
    const member = await track(openMemberDb(dir, '293610'));
    const gateway = await track(openMemberDb(dir, 'gateway'));
    const memberSigner = testSigner('293610');
    const gatewaySigner = testSigner('gateway');
    await appendEntries(member, 5);
    const first = await createCheckpoint(member.sequelize, member.checkpoints, memberSigner);
    await appendEntries(member, 5, (i) => ({ requestId: `later-${i}` }));
    const second = await createCheckpoint(member.sequelize, member.checkpoints, memberSigner);
    for (const cp of [first, second]) {
      const witnessed = await witnessCheckpoint({ Checkpoints: gateway.checkpoints, witness: gatewaySigner, from: '293610', memberKey: memberSigner.publicKey, jws: cp.jws });
      await recordCountersignature({ Checkpoints: member.checkpoints, jws: cp.jws, countersignature: witnessed.countersignature, witnessId: 'gateway', witnessKey: gatewaySigner.publicKey });
    }

    // The rewrite: entry 3 hidden (another subject), every hash after it recomputed, own checkpoints replaced.
    await dropTriggers(member);
    const rows = await rowsOf(member);
    let prev = GENESIS_HASH;
    const rewritten = rows.map((r) => {
      const row = r.seq === 3 ? { ...r, subject: '1111111111' } : { ...r };
      row.prevHash = prev;
      row.hash = entryHash(prev, row);
      prev = row.hash;
      return row;
    });
    await member.sequelize.query(`DELETE FROM ${ACCESS_LOG_TABLE}`);
    await member.sequelize.query(`DELETE FROM ${CHECKPOINT_TABLE}`);
    await member.log.bulkCreate(rewritten as never[]);
    await createCheckpoint(member.sequelize, member.checkpoints, memberSigner);

    const own = await heldCheckpoints(member.checkpoints, '293610', '293610', () => memberSigner.publicKey);
    expect(await verifyChain(member.sequelize, { member: '293610', checkpoints: own.checkpoints })).to.include({ ok: true });

    const atGateway = await heldCheckpoints(gateway.checkpoints, '293610', 'gateway', () => memberSigner.publicKey);
    expect(atGateway.checkpoints).to.have.length(2);
    const report = await verifyChain(member.sequelize, { member: '293610', checkpoints: [...own.checkpoints, ...atGateway.checkpoints] });
    expect(report.broken).to.include({ seq: 5, kind: 'checkpoint-contradiction', expected: first.hash });
    expect(report.broken!.checkpoint).to.include({ heldBy: 'gateway', witnessedBy: 'gateway', seq: 5 });
  });

  it('when a witness is sent a forged, foreign or contradicting checkpoint, then it refuses; a resend is idempotent', async () => {
    const member = await track(fresh());
    const gateway = await track(fresh());
    const memberSigner = testSigner(member.id);
    const gatewaySigner = testSigner('gateway');
    const stranger = testSigner(member.id);
    await appendEntries(member, 3);
    const cp = await createCheckpoint(member.sequelize, member.checkpoints, memberSigner);
    const witness = (jws: string, from = member.id, memberKey = memberSigner.publicKey) =>
      witnessCheckpoint({ Checkpoints: gateway.checkpoints, witness: gatewaySigner, from, memberKey, jws });

    const refused = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        return err as AppError;
      }
      throw new Error('expected a refusal');
    };
    expect(await refused(witness(cp.jws, member.id, stranger.publicKey))).to.include({ status: 400, code: 'invalid-checkpoint' });
    expect(await refused(witness(cp.jws, 'someone-else'))).to.include({ status: 403, code: 'forbidden' });

    const first = await witness(cp.jws);
    expect(first.alreadyHeld).to.equal(false);
    const again = await witness(cp.jws);
    expect(again).to.include({ alreadyHeld: true, countersignature: first.countersignature });

    // The same head signed again later (a periodic checkpoint racing an asked-for one) agrees with the
    // held one: it gets its own countersignature, which the member accepts as about its own checkpoint.
    const resigned = await createCheckpoint(member.sequelize, member.checkpoints, memberSigner, new Date(Date.now() + 1000));
    expect(resigned).to.include({ seq: cp.seq, hash: cp.hash });
    expect(resigned.jws).to.not.equal(cp.jws);
    const second = await witness(resigned.jws);
    expect(second.alreadyHeld).to.equal(false);
    expect(second.countersignature).to.not.equal(first.countersignature);
    const recorded = await recordCountersignature({
      Checkpoints: member.checkpoints, jws: resigned.jws, countersignature: second.countersignature, witnessId: 'gateway', witnessKey: gatewaySigner.publicKey,
    });
    expect(recorded.witnessed).to.include({ seq: cp.seq, witnessedBy: 'gateway' });

    // The member rewrites entry 3 and signs a different head at the same seq: the witness objects.
    await dropTriggers(member);
    await member.sequelize.query(`UPDATE ${ACCESS_LOG_TABLE} SET hash = :hash WHERE seq = 3`, { replacements: { hash: 'f'.repeat(64) } });
    const forged = await createCheckpoint(member.sequelize, member.checkpoints, memberSigner);
    const contradiction = await refused(witness(forged.jws));
    expect(contradiction.status).to.equal(409);
    expect(contradiction.code).to.equal('checkpoint-contradiction');
    const held = await gateway.checkpoints.count();
    expect(held).to.equal(2);
  });

  it('when an entry is planted in either log, then reconciliation reports it on its side only', async () => {
    const a = await track(openMemberDb(dir, '343692'));
    const gateway = await track(openMemberDb(dir, 'gateway2'));
    // Three exchanged subjects, logged on both sides under one request id per query.
    for (const [rid, ref] of [['rid-1', 's1'], ['rid-1', 's2'], ['rid-2', 's1']] as const) {
      await gateway.sequelize.transaction((t) => appendAccess(gateway.log, t, {
        requestId: rid, actorType: 'member', actorId: '112241', action: 'gateway.forward', outcome: 'allowed', details: { source: '343692', ref },
      }));
      await a.sequelize.transaction((t) => appendAccess(a.log, t, {
        requestId: rid, actorType: 'member', actorId: '112241', action: 'exchange.query.answer', outcome: 'allowed', details: { ref },
      }));
    }
    // A forward to another municipality is not A's business.
    await gateway.sequelize.transaction((t) => appendAccess(gateway.log, t, {
      requestId: 'rid-3', actorType: 'member', actorId: '112241', action: 'gateway.forward', outcome: 'allowed', details: { source: '293610', ref: 's1' },
    }));
    const forwardedToA = { actions: ['gateway.forward'], where: (e: { details: Record<string, unknown> }) => e.details.source === '343692' };
    const answeredByA = { actions: ['exchange.query.answer'] };

    const agree = reconcileEntries(await selectReconcileEntries(a.sequelize, answeredByA), await selectReconcileEntries(gateway.sequelize, forwardedToA), { local: '343692', remote: 'gateway' });
    expect(agree).to.include({ ok: true, matched: 3 });

    // Planted at A: an answer the gateway never forwarded. Planted at the gateway: a forward A never saw.
    await a.sequelize.transaction((t) => appendAccess(a.log, t, {
      requestId: 'rid-planted-a', actorType: 'member', actorId: '112241', action: 'exchange.query.answer', outcome: 'allowed', details: { ref: 's1' },
    }));
    await gateway.sequelize.transaction((t) => appendAccess(gateway.log, t, {
      requestId: 'rid-1', actorType: 'member', actorId: '112241', action: 'gateway.forward', outcome: 'allowed', details: { source: '343692', ref: 's3' },
    }));
    const report = reconcileEntries(await selectReconcileEntries(a.sequelize, answeredByA, 2), await selectReconcileEntries(gateway.sequelize, forwardedToA, 2), { local: '343692', remote: 'gateway' });
    expect(report.ok).to.equal(false);
    expect(report.matched).to.equal(3);
    expect(report.onlyLocal.map((e) => [e.requestId, e.ref])).to.deep.equal([['rid-planted-a', 's1']]);
    expect(report.onlyRemote.map((e) => [e.requestId, e.ref])).to.deep.equal([['rid-1', 's3']]);
  });
});

describe('CSV export cells', () => {
  it('when a cell starts with = + - or @, then it gets a leading apostrophe; commas, quotes and newlines are quoted (RFC 4180)', () => {
    expect(csvCell('=HYPERLINK("http://x")')).to.equal('"\'=HYPERLINK(""http://x"")"');
    expect(csvCell('+1')).to.equal("'+1");
    expect(csvCell('-2')).to.equal("'-2");
    expect(csvCell('@SUM(A1)')).to.equal("'@SUM(A1)");
    expect(csvCell('a,b')).to.equal('"a,b"');
    expect(csvCell('line\nbreak')).to.equal('"line\nbreak"');
    expect(csvCell(null)).to.equal('');
    expect(csvCell('plain')).to.equal('plain');
    expect(csvRow(['a', 1, null])).to.equal('a,1,\r\n');
  });
});
