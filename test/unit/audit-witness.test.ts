import { expect } from 'chai';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sequelize } from 'sequelize';
import { appendAccess, defineAccessLog, protectAccessLog, protectAppendOnly, type AccessLogModel } from '../../shared/access-log/chain.ts';
import {
  CHECKPOINT_TABLE, defineCheckpoints, listCheckpoints, reconcileEntries, witnessCheckpoint, type CheckpointModel, type ReconcileEntry,
} from '../../shared/access-log/verify.ts';
import { checkpointAndWitness, keepPeerCheckpoints, runEvery, type PublishedCheckpoint, type Witness } from '../../shared/access-log/witness.ts';
import { signPayload } from '../../shared/crypto.ts';
import { openDatabase } from '../../shared/platform/db.ts';
import { createLogger } from '../../shared/platform/log.ts';
import type { Signer } from '../../shared/federation/messages.ts';
import { Typ } from '../../shared/federation/protocol.ts';
import { removeDir } from '../fixtures/municipality.ts';

const logger = createLogger({ name: 'test-audit-witness', level: 'silent' });

/** A member signing key of the federation's kind (EC P-256), outside any PKI. */
function testSigner(id: string): Signer & { publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { id, key: privateKey, kid: `${id}-test`, publicKey };
}

interface MemberDb { sequelize: Sequelize; log: AccessLogModel; checkpoints: CheckpointModel }

async function memberDb(dir: string, id: string): Promise<MemberDb> {
  const sequelize = await openDatabase({ storage: join(dir, `${id}.sqlite`) });
  const log = defineAccessLog(sequelize);
  const checkpoints = defineCheckpoints(sequelize);
  await sequelize.sync();
  await protectAccessLog(sequelize);
  await protectAppendOnly(sequelize, CHECKPOINT_TABLE);
  return { sequelize, log, checkpoints };
}

const append = (db: MemberDb, n = 1) => db.sequelize.transaction(async (t) => {
  for (let i = 0; i < n; i++) await appendAccess(db.log, t, { actorType: 'system', actorId: 'test', action: 'test.entry', outcome: 'allowed' });
});

const entry = (seq: number, requestId: string, ref: string | null, wholeRequest = false): ReconcileEntry =>
  ({ seq, requestId, ref, at: '2026-01-01T00:00:00.000Z', action: 'x', ...(wholeRequest ? { wholeRequest } : {}) });

describe('reconciliation of whole-request entries', () => {
  it('when one side logged a whole query as refused and the other logged each subject, then they match in either direction', () => {
    const perSubject = [entry(1, 'r1', '0'), entry(2, 'r1', '1'), entry(3, 'r2', '0')];
    const whole = [entry(10, 'r1', null, true), entry(11, 'r2', '0')];
    for (const [local, remote] of [[perSubject, whole], [whole, perSubject]] as const) {
      const report = reconcileEntries(local, remote, { local: 'a', remote: 'b' });
      expect(report).to.include({ ok: true, matched: 3 });
    }
  });

  it('when a whole-request entry has no entry of its request on the other side, then it is reported one-sided', () => {
    const report = reconcileEntries([entry(1, 'r1', '0')], [entry(5, 'r1', '0'), entry(6, 'r9', null, true)], { local: 'a', remote: 'b' });
    expect(report.ok).to.equal(false);
    expect(report.onlyRemote.map((e) => e.seq)).to.deep.equal([6]);
    expect(report.onlyLocal).to.deep.equal([]);
  });
});

describe('periodic tasks', () => {
  it('when a run is asked for while one is in progress, then it joins that run; stop waits for it and no timer is left', async () => {
    let runs = 0;
    let release!: () => void;
    const task = runEvery(0, async () => {
      runs++;
      await new Promise<void>((resolve) => { release = resolve; });
    }, logger, 'test task');
    const first = task.runNow();
    const second = task.runNow();
    expect(first).to.equal(second);
    const stopped = task.stop();
    let done = false;
    void stopped.then(() => { done = true; });
    await Promise.resolve();
    expect(done).to.equal(false);
    release();
    await stopped;
    expect(runs).to.equal(1);
  });

  it('when a run fails, then the failure is caught and the next run goes ahead', async () => {
    let runs = 0;
    const task = runEvery(0, async () => {
      runs++;
      if (runs === 1) throw new Error('gateway down');
    }, logger, 'test task');
    await task.runNow();
    await task.runNow();
    expect(runs).to.equal(2);
    await task.stop();
  });
});

describe('checkpoints witnessed and kept', () => {
  let dir: string;
  const opened: MemberDb[] = [];
  const member = testSigner('343692');
  const gateway = testSigner('gateway');

  before(() => { dir = mkdtempSync(join(tmpdir(), 'hikitsugi-witness-')); });
  after(async () => {
    for (const db of opened) await db.sequelize.close();
    removeDir(dir);
  });
  const open = async (id: string) => { const db = await memberDb(dir, id); opened.push(db); return db; };

  it('when the head has not moved since a witnessed checkpoint, then the periodic run signs nothing; an unwitnessed one is sent again, not re-signed', async () => {
    const a = await open('a1');
    const g = await open('g1');
    let up = false;
    let sent = 0;
    const witness: Witness = async (jws) => {
      sent++;
      if (!up) throw new Error('gateway unreachable');
      const r = await witnessCheckpoint({ Checkpoints: g.checkpoints, witness: gateway, from: member.id, memberKey: member.publicKey, jws });
      return { countersignature: r.countersignature, witnessId: gateway.id, witnessKey: gateway.publicKey };
    };
    await append(a, 3);
    const periodic = () => checkpointAndWitness({ sequelize: a.sequelize, Checkpoints: a.checkpoints, signer: member, witness, logger, skipUnchanged: true });

    const down = await periodic();
    expect(down.witnessed).to.equal(null);
    up = true;
    const retried = await periodic();
    expect(retried.checkpoint.jws).to.equal(down.checkpoint.jws);
    expect(retried.witnessed?.witnessedBy).to.equal('gateway');
    const idle = await periodic();
    expect(idle.skipped).to.equal(true);
    expect(sent).to.equal(2);
    expect((await listCheckpoints(a.checkpoints, member.id)).map((c) => [c.seq, c.witnessedBy])).to.deep.equal([[3, null], [3, 'gateway']]);

    await append(a);
    const moved = await periodic();
    expect(moved.checkpoint.seq).to.equal(4);
    expect(moved.witnessed?.seq).to.equal(4);
  });

  it('when another member publishes checkpoints, then valid ones are kept countersigned, forged ones are refused, and a re-signed seq is reported as a contradiction', async () => {
    const a = await open('a2');
    const publish = async (signer: Signer, seq: number, hash: string): Promise<PublishedCheckpoint> => {
      const claims = { kind: 'checkpoint', member: 'gateway', seq, hash, at: new Date().toISOString() };
      return { ...claims, jws: await signPayload(claims, { key: signer.key, kid: signer.kid, typ: Typ.CHECKPOINT }), witnessedBy: null, countersignature: null };
    };
    const keep = (published: PublishedCheckpoint[]) => keepPeerCheckpoints({ Checkpoints: a.checkpoints, self: member, peer: 'gateway', peerKey: gateway.publicKey, published, logger });
    const good = await publish(gateway, 5, '5'.repeat(64));
    expect(await keep([good, await publish(testSigner('gateway'), 6, '6'.repeat(64))])).to.deep.equal({ kept: 1, contradictions: [] });
    expect(await keep([good])).to.deep.equal({ kept: 0, contradictions: [] });
    const rewritten = await keep([await publish(gateway, 5, '7'.repeat(64))]);
    expect(rewritten.kept).to.equal(0);
    expect(rewritten.contradictions.map((c) => c.seq)).to.deep.equal([5]);
    expect((await listCheckpoints(a.checkpoints, 'gateway')).map((c) => [c.seq, c.hash, c.witnessedBy])).to.deep.equal([[5, '5'.repeat(64), member.id]]);
  });

  it('when a table is protected as append-only, then UPDATE and DELETE are refused; a name that is not a plain table name is refused', async () => {
    const a = await open('a3');
    await append(a);
    await checkpointAndWitness({ sequelize: a.sequelize, Checkpoints: a.checkpoints, signer: member, logger });
    for (const sql of ['UPDATE access_log SET action = \'x\'', `DELETE FROM ${CHECKPOINT_TABLE}`]) {
      let message = '';
      // Sequelize wraps the driver's error; the trigger's words are in the original.
      await a.sequelize.query(sql).catch((err: Error & { original?: Error }) => { message = err.original?.message ?? err.message; });
      expect(message, sql).to.match(/append-only/);
    }
    let refused = '';
    await protectAppendOnly(a.sequelize, 'x; DROP TABLE access_log').catch((err: Error) => { refused = err.message; });
    expect(refused).to.match(/not a table name/);
  });
});
