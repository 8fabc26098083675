/**
 * The revocation list and the guard every member holds (docs/PROTOCOL.md §1): CA signature,
 * a number that only grows, nextUpdate plus a grace, and the newest list kept in the member's
 * own database across restarts.
 */
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sequelize } from 'sequelize';
import { AppError } from '../../shared/platform/errors.ts';
import { migrate } from '../../shared/platform/migrate.ts';
import { caSigner, createCertificateAuthority, type CertificateAuthority } from '../../shared/federation/pki.ts';
import {
  createRevocationGuard, databaseKeeper, REVOCATION_LIST_TABLE, signRevocationList, verifyRevocationList, type RevocationSource,
} from '../../shared/federation/revocation.ts';
import { ISSUER_MIGRATIONS } from '../../services/issuer/migrations/index.ts';
import { memberDatabase, openMemberDatabase } from '../fixtures/database.ts';
import { removeDir } from '../fixtures/municipality.ts';

const HOUR = 3600_000;

async function refusalOf(promise: Promise<unknown> | (() => unknown)): Promise<AppError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    expect(err).to.be.instanceOf(AppError);
    return err as AppError;
  }
  return expect.fail('was accepted');
}

describe('revocation list', () => {
  let ca: CertificateAuthority;
  const sign = (number: number, serials: string[] = [], validFor = 7 * 24 * HOUR, issuedAt = new Date()) =>
    signRevocationList(caSigner(ca), { number, serials, issuedAt, nextUpdate: new Date(issuedAt.getTime() + validFor) });
  /** A source that hands out whatever the test put in it last. */
  const scripted = () => {
    let next: string | undefined;
    const source: RevocationSource = async () => next;
    return { source, set: (jws: string) => { next = jws; } };
  };

  before(async () => {
    ca = await createCertificateAuthority();
  });

  it('when the CA signs a list, then it verifies with its number, issue time, next update and serials', async () => {
    const issuedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const list = await verifyRevocationList(await sign(3, ['0a:1B'], 2 * HOUR, issuedAt), ca.cert);
    expect(list.number).to.equal(3);
    expect(list.issuedAt.toISOString()).to.equal(issuedAt.toISOString());
    expect(list.nextUpdate.getTime() - list.issuedAt.getTime()).to.equal(2 * HOUR);
    expect(list.isRevoked('A1B')).to.equal(true);
    expect(list.isRevoked('A1C')).to.equal(false);
  });

  it('when a list has no number or no next update (the unnumbered format), then it is refused as invalid-revocations', async () => {
    const { signPayload } = await import('../../shared/crypto.ts');
    const { Typ } = await import('../../shared/federation/protocol.ts');
    const unnumbered = await signPayload({ iss: 'federation-ca', iat: Math.floor(Date.now() / 1000), serials: [] }, { ...caSigner(ca), typ: Typ.REVOCATIONS });
    const err = await refusalOf(verifyRevocationList(unnumbered, ca.cert));
    expect(err.code).to.equal('invalid-revocations');
  });

  it('when a list with a lower number is offered, then it is refused as revocation-list-rollback and the held list stays', async () => {
    const guard = createRevocationGuard({ ca: ca.cert, source: scripted().source });
    expect(await guard.offer(await sign(5, ['0A']))).to.equal('accepted');
    const err = await refusalOf(guard.offer(await sign(4)));
    expect(err.code).to.equal('revocation-list-rollback');
    expect(err.extra.rule).to.match(/lower than the list held \(5\)/);
    expect(guard.current()!.number).to.equal(5);
    expect(guard.isRevoked('0A')).to.equal(true);
  });

  it('when a list has the held number but other serials, then it is refused as revocation-list-conflict; the same list again is unchanged', async () => {
    const guard = createRevocationGuard({ ca: ca.cert, source: scripted().source });
    const held = await sign(7, ['0A']);
    await guard.offer(held);
    expect(await guard.offer(held)).to.equal('unchanged');
    expect((await refusalOf(guard.offer(await sign(7, [])))).code).to.equal('revocation-list-conflict');
    expect(guard.isRevoked('0A')).to.equal(true);
  });

  it('when no list is held, then federation traffic is refused with 503 revocation-list-missing', async () => {
    const guard = createRevocationGuard({ ca: ca.cert, source: scripted().source });
    const err = await refusalOf(() => guard.assertFresh());
    expect(err.status).to.equal(503);
    expect(err.code).to.equal('revocation-list-missing');
    expect(guard.status().state).to.equal('missing');
  });

  it('when the held list is past its next update, then it is trusted for the grace and refused after it as 503 revocation-list-stale', async () => {
    let now = Date.now();
    const guard = createRevocationGuard({ ca: ca.cert, source: scripted().source, graceSeconds: 3600, now: () => now });
    await guard.offer(await sign(1, [], HOUR, new Date(now)));
    expect(guard.status().state).to.equal('fresh');
    now += HOUR + 60_000;
    expect(guard.status().state).to.equal('grace');
    guard.assertFresh();
    now += HOUR;
    expect(guard.status().state).to.equal('stale');
    const err = await refusalOf(() => guard.assertFresh());
    expect(err.status).to.equal(503);
    expect(err.code).to.equal('revocation-list-stale');
    // A newer list from the CA restores trust.
    await guard.offer(await sign(2, [], HOUR, new Date(now)));
    expect(guard.status().state).to.equal('fresh');
  });

  it('when the source hands out a newer list, then a refresh takes it; an older one is refused and the newer kept', async () => {
    const { source, set } = scripted();
    const guard = createRevocationGuard({ ca: ca.cert, source });
    set(await sign(2));
    await guard.refresh();
    set(await sign(3, ['0B']));
    await guard.refresh();
    expect(guard.current()!.number).to.equal(3);
    set(await sign(2));
    expect((await refusalOf(guard.refresh())).code).to.equal('revocation-list-rollback');
    expect(guard.isRevoked('0B')).to.equal(true);
  });

  describe('kept in the member\'s database', () => {
    let dir: string;
    let env: Record<string, string>;
    let db: Sequelize;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'hikitsugi-revocation-'));
      env = memberDatabase('issuer', join(dir, 'issuer.sqlite'));
      db = await openMemberDatabase(env);
      await migrate(db, ISSUER_MIGRATIONS);
    });
    after(async () => {
      await db.close();
      removeDir(dir);
    });

    it('when a member restarts, then it holds the newest list it had accepted and refuses the older one its source now hands out', async () => {
      const { source, set } = scripted();
      const before = createRevocationGuard({ ca: ca.cert, source });
      await before.attach(databaseKeeper(db));
      set(await sign(10, ['0C']));
      await before.refresh();
      set(await sign(11, ['0C', '0D']));
      await before.refresh();

      // The restart: a new guard on the same database, whose source has been rolled back to list 10.
      const after = createRevocationGuard({ ca: ca.cert, source });
      await after.attach(databaseKeeper(db));
      set(await sign(10, ['0C']));
      expect((await refusalOf(after.refresh())).code).to.equal('revocation-list-rollback');
      expect(after.current()!.number).to.equal(11);
      expect(after.isRevoked('0D')).to.equal(true);
    });

    it('when a kept list is altered in place, then the database refuses it (the table is append-only)', async () => {
      for (const sql of [`UPDATE ${REVOCATION_LIST_TABLE} SET jws = 'x'`, `DELETE FROM ${REVOCATION_LIST_TABLE}`]) {
        const err = await db.query(sql).then(() => undefined, (e: Error & { original?: Error }) => e.original ?? e);
        expect(err?.message, sql).to.match(/append-only/);
      }
    });
  });
});
