import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { calendarDate, dateTime, isCalendarDate } from '../../shared/platform/dates.ts';
import { jose, signJwt, signPayload } from '../../shared/crypto.ts';
import { checkpointClaimsSchema, witnessClaimsSchema } from '../../shared/access-log/verify.ts';
import { signMessage, verifyMessage } from '../../shared/federation/messages.ts';
import { moveOutClaimsSchema, Typ } from '../../shared/federation/protocol.ts';
import { AppError } from '../../shared/platform/errors.ts';
import { insertRows, openDatabase, updateRows } from '../../shared/platform/db.ts';
import { defineSignInThrottle, lockThrottle } from '../../shared/staff/sign-in.ts';
import { databaseKeeper, REVOCATION_LIST_TABLE, type RevocationList } from '../../shared/federation/revocation.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = { id: '293610', key: privateKey, kid: 'test-kid' };
const moveOut = (moveOutDate: string) => ({
  aud: '112241', jti: 'move-out-0001',
  resident: { name: '試験 太郎', kana: 'シケン　タロウ', birthDate: '1980-02-02', sex: 'male', previousAddress: '田原本町 1-1' },
  moveOutDate, destinationAddress: '戸田市 2-2',
});

describe('dates: one calendar-date validator at the API and at both ends of a signed message', () => {
  it('when a date does not exist or lies outside the plausible range, then calendarDate refuses it with the rule', () => {
    for (const [value, rule] of [
      ['2026-02-30', 'must be a calendar date YYYY-MM-DD'], ['2023-02-29', 'must be a calendar date YYYY-MM-DD'], ['2026-04-31', 'must be a calendar date YYYY-MM-DD'],
      ['2026-13-01', 'must be a calendar date YYYY-MM-DD'], ['2026-1-1', 'must be a calendar date YYYY-MM-DD'], ['0000-01-01', 'must not be before 1890-01-01'],
      ['9999-12-31', 'must not be after 2199-12-31'],
    ]) {
      const result = calendarDate().safeParse(value);
      expect(result.success, value).to.equal(false);
      expect(result.error?.issues[0]?.message, value).to.equal(rule);
    }
    expect(calendarDate().safeParse('2024-02-29').success).to.equal(true);
    expect(calendarDate({ max: 'today' }).safeParse('2199-01-01').error?.issues[0]?.message).to.equal('must not be in the future');
    expect(dateTime().safeParse('9999-12-31T00:00:00Z').success).to.equal(false);
    expect(dateTime().safeParse('2026-02-30T00:00:00Z').success).to.equal(false);
  });

  it('when any year, month and day are written as YYYY-MM-DD, then the date is accepted exactly when the calendar has it (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1890, max: 2199 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), (y, m, d) => {
      const text = `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
      const real = m >= 1 && m <= 12 && d >= 1 && d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
      return isCalendarDate(text) === real && calendarDate().safeParse(text).success === real;
    }), { numRuns: 500, seed: 42 });
  });

  it('when a move-out certificate would carry 2026-02-30, then the signer refuses to sign it (422 unsignable-claims)', async () => {
    const err = await signMessage(moveOut('2026-02-30'), signer, Typ.MOVE_OUT).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(AppError);
    expect((err as AppError).status).to.equal(422);
    expect((err as AppError).code).to.equal('unsignable-claims');
    expect((err as AppError).extra.field).to.equal('moveOutDate');
    expect(await signMessage(moveOut('2026-02-28'), signer, Typ.MOVE_OUT)).to.match(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('when a signed certificate carries 2026-02-30 anyway, then the verifier refuses its claims (400 invalid-claims on moveOutDate)', async () => {
    // Made with jose directly: the project's own signers refuse these claims.
    const iat = Math.floor(Date.now() / 1000);
    const forged = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify({ ...moveOut('2026-02-30'), iss: signer.id, iat, exp: iat + 300 })))
      .setProtectedHeader({ alg: 'ES256', kid: signer.kid, typ: Typ.MOVE_OUT }).sign(privateKey);
    const err = await verifyMessage(forged, moveOutClaimsSchema, { key: publicKey, issuer: signer.id, audience: '112241', typ: Typ.MOVE_OUT })
      .then(() => undefined, (e: unknown) => e);
    expect((err as AppError).status).to.equal(400);
    expect((err as AppError).code).to.equal('invalid-claims');
    expect((err as AppError).extra.field).to.equal('moveOutDate');
  });

  it('when an attestation, a checkpoint, a move link or any JWT would carry an impossible date, then every signer refuses it (422 unsignable-claims)', async () => {
    const signers: [string, () => Promise<string>][] = [
      ['signPayload (checkpoint)', () => signPayload({ kind: 'checkpoint', member: '293610', seq: 1, hash: 'a'.repeat(64), at: '2026-02-30T00:00:00Z' }, { key: privateKey, kid: 'k', typ: Typ.CHECKPOINT })],
      ['signPayload (attestation)', () => signPayload({ municipality: '293610', code: 'c', link: 'l', issuedOn: '0000-01-01' }, { key: privateKey, kid: 'k', typ: Typ.ATTESTATION })],
      ['signPayload (move link)', () => signPayload({ moveOutDate: '2026-04-31', resident: { birthDate: '1980-02-02' } }, { key: privateKey, kid: 'k', typ: Typ.MOVE_LINK })],
      ['signJwt', () => signJwt({ aud: 'gateway', jti: 'j-00000001', witnessedAt: '9999-12-31T00:00:00Z' }, { key: privateKey, kid: 'k', typ: Typ.MOVE_OUT }, 60)],
    ];
    for (const [name, sign] of signers) {
      const err = await sign().then(() => undefined, (e: unknown) => e);
      expect(err, name).to.be.instanceOf(AppError);
      expect((err as AppError).status, name).to.equal(422);
      expect((err as AppError).code, name).to.equal('unsignable-claims');
    }
    expect(await signPayload({ at: '2026-02-28T00:00:00Z' }, { key: privateKey, kid: 'k', typ: Typ.CHECKPOINT })).to.match(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('when a checkpoint or a countersignature claims a time out of range, then its schema (the one dateTime validator) refuses it', () => {
    const checkpoint = { kind: 'checkpoint', member: '293610', seq: 1, hash: 'a'.repeat(64), at: '2026-01-01T00:00:00Z' };
    const witness = { ...checkpoint, kind: 'witness', witness: 'gateway', witnessedAt: '2026-01-01T00:00:01Z', checkpoint: 'b'.repeat(64) };
    expect(checkpointClaimsSchema.safeParse(checkpoint).success).to.equal(true);
    expect(witnessClaimsSchema.safeParse(witness).success).to.equal(true);
    for (const at of ['0001-01-01T00:00:00Z', '9999-12-31T00:00:00Z', '2026-02-30T00:00:00Z']) {
      expect(checkpointClaimsSchema.safeParse({ ...checkpoint, at }).error?.issues[0]?.path, at).to.deep.equal(['at']);
      expect(witnessClaimsSchema.safeParse({ ...witness, witnessedAt: at }).error?.issues[0]?.path, at).to.deep.equal(['witnessedAt']);
    }
  });
});

describe('raw SQL: values are bound parameters', () => {
  it('when updateRows writes values holding quotes, NUL and SQL, then they are stored verbatim and never appear in the SQL text', async () => {
    const statements: string[] = [];
    const sequelize = await openDatabase({ storage: ':memory:', logging: (sql) => statements.push(sql) });
    try {
      await sequelize.query('CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT, n INTEGER, "updatedAt" TEXT)');
      await sequelize.query(`INSERT INTO t (id, v, n) VALUES ('a', 'x', 1), ('b', 'y', 2)`);
      const hostile = `'); DROP TABLE t; --\u0000end`;
      statements.length = 0;
      await updateRows(sequelize, 't', { keys: ['id'], set: { v: 'TEXT', n: 'INTEGER' }, fixed: { updatedAt: new Date('2026-01-02T03:04:05.006Z') } },
        [{ id: 'a', v: hostile, n: 7 }, { id: 'b', v: null, n: null }]);
      expect(statements.join('\n')).not.to.include('DROP TABLE').and.not.to.include('2026-01-02');
      const rows = await sequelize.query('SELECT id, v, n, "updatedAt" FROM t ORDER BY id', { type: 'SELECT' }) as Record<string, unknown>[];
      expect(rows).to.deep.equal([
        { id: 'a', v: hostile, n: 7, updatedAt: '2026-01-02 03:04:05.006 +00:00' },
        { id: 'b', v: null, n: null, updatedAt: '2026-01-02 03:04:05.006 +00:00' },
      ]);
    } finally {
      await sequelize.close();
    }
  });

  it('when insertRows writes more rows than one statement binds, then every row is stored verbatim, dates as Sequelize stores them, and no value appears in the SQL text', async () => {
    const statements: string[] = [];
    const sequelize = await openDatabase({ storage: ':memory:', logging: (sql) => statements.push(sql) });
    try {
      await sequelize.query('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER, "createdAt" TEXT)');
      const hostile = `'); DROP TABLE t; --\u0000end`;
      const at = new Date('2026-01-02T03:04:05.006Z');
      // 4 columns: 7,500 rows per statement, so 7,600 rows take two.
      const rows = Array.from({ length: 7_600 }, (_, i) => ({ id: i + 1, v: i % 2 ? hostile : null, n: i % 3 ? i : null, createdAt: at }));
      statements.length = 0;
      await insertRows(sequelize, 't', rows);
      expect(statements.filter((sql) => sql.includes('INSERT INTO'))).to.have.length(2);
      expect(statements.join('\n')).not.to.include('DROP TABLE').and.not.to.include('2026-01-02');
      const stored = await sequelize.query('SELECT id, v, n, "createdAt" FROM t ORDER BY id', { type: 'SELECT' }) as Record<string, unknown>[];
      expect(stored).to.deep.equal(rows.map((r) => ({ ...r, createdAt: '2026-01-02 03:04:05.006 +00:00' })));
      const refused = await insertRows(sequelize, 't; DROP TABLE t', [{ id: 1 }]).then(() => null, (e: Error) => e.message);
      expect(refused).to.equal('insertRows takes plain table and column names');
    } finally {
      await sequelize.close();
    }
  });

  const HOSTILE = `'); DROP TABLE t; --\u0000end`;
  const logged = async () => {
    const statements: string[] = [];
    return { statements, sequelize: await openDatabase({ storage: ':memory:', logging: (sql) => statements.push(sql) }) };
  };

  it('when the sign-in throttle creates a row for a hostile key, then the key and the time are bound parameters, stored verbatim', async () => {
    const { statements, sequelize } = await logged();
    try {
      const Throttle = defineSignInThrottle(sequelize);
      await Throttle.sync();
      statements.length = 0;
      // No NUL here: the model's findByPk that follows renders its key as an escaped literal (Sequelize's finders do).
      const key = `address:'); DROP TABLE t; --`;
      const state = await sequelize.transaction((t) => lockThrottle(Throttle, key, t));
      expect(state.failures).to.equal(0);
      const insert = statements.find((sql) => sql.includes('INSERT INTO'));
      expect(insert, statements.join('\n')).to.match(/VALUES \(\$1, 0, 0, FALSE, \$2, \$2\)/);
      expect(insert).not.to.include('DROP TABLE').and.not.to.match(/\d{4}-\d{2}-\d{2}/);
      const [row] = await sequelize.query(`SELECT "key", "adminLock", "createdAt" FROM sign_in_throttle`, { type: 'SELECT' }) as Record<string, unknown>[];
      expect(row?.key).to.equal(key);
      expect(row?.adminLock).to.equal(0);
      expect(String(row?.createdAt)).to.match(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \+00:00$/);
    } finally {
      await sequelize.close();
    }
  });

  it('when a revocation list is kept, then its number, times and signed text are bound parameters, stored verbatim', async () => {
    const { statements, sequelize } = await logged();
    try {
      await sequelize.query(`CREATE TABLE ${REVOCATION_LIST_TABLE} (list_number BIGINT PRIMARY KEY, issued_at TEXT, next_update TEXT, accepted_at TEXT, jws TEXT)`);
      statements.length = 0;
      const list = { number: 7, issuedAt: new Date('2026-01-02T03:04:05.006Z'), nextUpdate: new Date('2026-01-09T03:04:05.006Z'), jws: HOSTILE } as RevocationList;
      await databaseKeeper(sequelize).keep(list);
      const insert = statements.find((sql) => sql.includes('INSERT INTO'));
      expect(insert, statements.join('\n')).to.include('VALUES ($1, $2, $3, $4, $5)');
      expect(statements.join('\n')).not.to.include('DROP TABLE').and.not.to.include('2026-01-0');
      expect(await databaseKeeper(sequelize).latest()).to.equal(HOSTILE);
    } finally {
      await sequelize.close();
    }
  });
});
