/**
 * Staff sign-in and sessions at a municipality and at the gateway's staff port (SECURITY.md §1–2):
 * throttling and lockout (per account name and per client address, state in the member's
 * database), the access-log entry of each sign-in event, the burst alert, and session tokens
 * checked end to end — made with the member's real secret, so each refusal is the rule at work.
 */
import { expect } from 'chai';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Op } from 'sequelize';
import { jose } from '../../shared/crypto.ts';
import { closeServer, listen } from '../../shared/platform/server.ts';
import { createStaffAccount } from '../../shared/staff/auth.ts';
import { accountKey } from '../../shared/staff/sign-in.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { GatewayActions } from '../../gateway/access-log/actions.ts';
import type { AccessLogModel } from '../../shared/access-log/chain.ts';
import { DEMO_MUNICIPALITIES, removeDir, startMunicipality, TEST_PASSWORD, testConfig, type RunningMunicipality } from '../fixtures/municipality.ts';
import { gatewayTestConfig, startGateway, type RunningGateway } from '../fixtures/members.ts';
import { testPki, type TestPki } from '../fixtures/pki.ts';
import { api, type ApiResponse } from '../fixtures/http.ts';
import { figure } from './support.ts';

const TODA = DEMO_MUNICIPALITIES.toda;
const PROBLEM = 'https://hikitsugi.example/problems/';
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The response is the named problem: status, problem+json, type. */
function expectProblem(res: ApiResponse, status: number, type: string, label = type): void {
  expect(res.status, `${label}: ${JSON.stringify(res.body)}`).to.equal(status);
  expect(res.headers.get('content-type'), label).to.match(/application\/problem\+json/);
  expect(res.body.type, label).to.equal(PROBLEM + type);
}

const signIn = (url: string, username: string, password: string) => api('POST', `${url}/auth/login`, { body: { username, password } });

async function entries(log: AccessLogModel, actions: string[]) {
  return log.findAll({ where: { action: { [Op.in]: actions } }, order: [['seq', 'ASC']], raw: true });
}

describe('security: staff sign-in throttling, sign-in events and session tokens', () => {
  const started: RunningMunicipality[] = [];
  const dirs: string[] = [];

  /** A municipality of its own (each test's counters start clean), with the given sign-in settings. */
  async function municipality(overrides: Record<string, string> = {}): Promise<RunningMunicipality> {
    const dir = mkdtempSync(join(tmpdir(), 'hikitsugi-sign-in-'));
    dirs.push(dir);
    const m = await startMunicipality(TODA, { dir, config: testConfig(TODA.code, TODA.name, dir, { ALERT_INTERVAL_SECONDS: '0', ...overrides }) });
    started.push(m);
    return m;
  }

  async function restart(m: RunningMunicipality): Promise<RunningMunicipality> {
    await m.stop();
    started.splice(started.indexOf(m), 1);
    const again = await startMunicipality(TODA, { dir: m.dir, config: m.ctx.config });
    started.push(again);
    return again;
  }

  const staffId = async (m: RunningMunicipality, username: string) => (await m.ctx.models.Staff.findOne({ where: { username }, raw: true }))!.id;

  after(async () => {
    for (const m of started) await m.stop();
    for (const dir of dirs) removeDir(dir);
  });

  it('when session tokens made with the real secret have no expiry, a ten-year expiry, an issue time in the future, or name an unknown account, then each is refused with 401 and its own problem type', async () => {
    const m = await municipality();
    const secret = m.ctx.config.SESSION_SECRET;
    const clerk = await staffId(m, 'clerk1');
    const base = () => ({ sub: clerk, role: 'clerk', municipality: m.code, iss: m.code, aud: m.code, jti: randomUUID(), ver: 0, iat: nowSeconds(), exp: nowSeconds() + 600 });
    const hs = (payload: Record<string, unknown>) => new jose.SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'session+jwt' }).sign(secret);
    const me = async (payload: Record<string, unknown>) => api('GET', `${m.url}/auth/me`, { token: await hs(payload) });
    // Control: the same construction with every claim right is accepted.
    expect((await me(base())).status).to.equal(200);

    const { exp: _exp, ...noExp } = base();
    const { jti: _jti, ...noJti } = base();
    const cases: [string, Record<string, unknown>, string][] = [
      ['no exp', noExp, 'session-incomplete'],
      ['no jti', noJti, 'session-incomplete'],
      ['exp in ten years', { ...base(), exp: nowSeconds() + 10 * 365 * 86_400 }, 'session-too-long'],
      ['exp one second beyond the configured lifetime', { ...base(), exp: nowSeconds() + m.ctx.config.SESSION_TTL_SECONDS + 1 }, 'session-too-long'],
      ['iat ten minutes in the future', { ...base(), iat: nowSeconds() + 600, exp: nowSeconds() + 900 }, 'session-not-yet-valid'],
      ['expired', { ...base(), iat: nowSeconds() - 1200, exp: nowSeconds() - 600 }, 'session-expired'],
      ['an account this municipality does not have', { ...base(), sub: randomUUID() }, 'session-staff-unknown'],
      ['a role the account does not have', { ...base(), role: 'admin' }, 'session-invalid'],
      ['no session version', { ...base(), ver: undefined }, 'session-invalid'],
    ];
    for (const [label, payload, type] of cases) expectProblem(await me(payload), 401, type, label);
    figure(`sessions: ${cases.length} forged-with-the-real-secret tokens, ${cases.length} refused with their own 401 type`);
  });

  it('when an administrator disables an account, then its live session is refused (401 session-staff-disabled), it cannot sign in, and the disabling is logged as the administrator\'s act', async () => {
    const m = await municipality();
    const admin = await m.tokenFor('admin');
    const created = await api('POST', `${m.url}/staff`, { token: admin, body: { username: 'clerk7', displayName: 'clerk seven', role: 'clerk', password: TEST_PASSWORD } });
    expect(created.status).to.equal(201);
    const session = (await signIn(m.url, 'clerk7', TEST_PASSWORD)).body.token as string;
    expect((await api('GET', `${m.url}/auth/me`, { token: session })).status).to.equal(200);

    const disabled = await api('POST', `${m.url}/staff/${created.body.id}/disable`, { token: admin });
    expect(disabled.status).to.equal(200);
    expect(disabled.body).to.include({ id: created.body.id, active: false });
    expectProblem(await api('GET', `${m.url}/auth/me`, { token: session }), 401, 'session-staff-disabled');
    expectProblem(await signIn(m.url, 'clerk7', TEST_PASSWORD), 401, 'invalid-credentials', 'sign-in of a disabled account');

    const [entry] = await entries(m.ctx.models.AccessLog, [Actions.STAFF_DISABLE]);
    expect(entry).to.include({ actorId: await staffId(m, 'admin1'), actorRole: 'admin', subject: created.body.id, outcome: 'allowed' });
    // Only administrators disable, never themselves, and only with a well-formed id.
    expectProblem(await api('POST', `${m.url}/staff/${created.body.id}/disable`, { token: await m.tokenFor('clerk') }), 403, 'forbidden');
    expectProblem(await api('POST', `${m.url}/staff/${await staffId(m, 'admin1')}/disable`, { token: admin }), 409, 'cannot-disable-self');
    const malformed = await api('POST', `${m.url}/staff/not-a-uuid/disable`, { token: admin });
    expectProblem(malformed, 400, 'validation');
    expect(malformed.body.field).to.equal('id');
    expectProblem(await api('POST', `${m.url}/staff/${randomUUID()}/disable`, { token: admin }), 404, 'not-found');
  });

  it('when a clerk logs out, then that token is refused even after a restart (401 session-logged-out), their other session lives on, and the logout is logged', async () => {
    let m = await municipality();
    const first = (await signIn(m.url, 'clerk1', TEST_PASSWORD)).body.token as string;
    const second = (await signIn(m.url, 'clerk1', TEST_PASSWORD)).body.token as string;
    const out = await api('POST', `${m.url}/auth/logout`, { token: first });
    expect(out.status).to.equal(204);
    expect(out.headers.get('set-cookie') ?? '').to.match(/hikitsugi_session=;/);
    expectProblem(await api('GET', `${m.url}/auth/me`, { token: first }), 401, 'session-logged-out');
    expect((await api('GET', `${m.url}/auth/me`, { token: second })).status).to.equal(200);

    m = await restart(m);
    expectProblem(await api('GET', `${m.url}/auth/me`, { token: first }), 401, 'session-logged-out', 'after a restart');
    expect((await api('GET', `${m.url}/auth/me`, { token: second })).status).to.equal(200);
    const logged = await entries(m.ctx.models.AccessLog, [Actions.STAFF_SIGN_OUT]);
    expect(logged.map((e) => [e.actorId, e.outcome])).to.deep.equal([[await staffId(m, 'clerk1'), 'allowed']]);
    // Logging out without a session ends nothing and logs nothing.
    expect((await api('POST', `${m.url}/auth/logout`)).status).to.equal(204);
    expect(await entries(m.ctx.models.AccessLog, [Actions.STAFF_SIGN_OUT])).to.have.length(1);
  });

  it('when staff change their password, then every session of theirs is refused (401 session-password-changed), only the new password signs in, a wrong current password is 403 wrong-password, and both are logged', async () => {
    const m = await municipality();
    const a = (await signIn(m.url, 'clerk1', TEST_PASSWORD)).body.token as string;
    const b = (await signIn(m.url, 'clerk1', TEST_PASSWORD)).body.token as string;
    const other = await m.tokenFor('operator');
    const NEW = 'a new and longer passphrase';

    const wrong = await api('POST', `${m.url}/auth/password`, { token: a, body: { currentPassword: 'not the password', newPassword: NEW } });
    expectProblem(wrong, 403, 'wrong-password');
    expect(wrong.body.field).to.equal('currentPassword');
    const short = await api('POST', `${m.url}/auth/password`, { token: a, body: { currentPassword: TEST_PASSWORD, newPassword: 'short' } });
    expectProblem(short, 400, 'validation');
    expect(short.body.field).to.equal('newPassword');
    const same = await api('POST', `${m.url}/auth/password`, { token: a, body: { currentPassword: TEST_PASSWORD, newPassword: TEST_PASSWORD } });
    expectProblem(same, 400, 'validation');
    expect(same.body.field).to.equal('newPassword');

    expect((await api('POST', `${m.url}/auth/password`, { token: a, body: { currentPassword: TEST_PASSWORD, newPassword: NEW } })).status).to.equal(204);
    for (const token of [a, b]) expectProblem(await api('GET', `${m.url}/auth/me`, { token }), 401, 'session-password-changed');
    expect((await api('GET', `${m.url}/auth/me`, { token: other })).status, 'another account\'s session').to.equal(200);
    expectProblem(await signIn(m.url, 'clerk1', TEST_PASSWORD), 401, 'invalid-credentials', 'the old password');
    const fresh = await signIn(m.url, 'clerk1', NEW);
    expect(fresh.status).to.equal(200);
    expect((await api('GET', `${m.url}/auth/me`, { token: fresh.body.token })).status).to.equal(200);

    const logged = await entries(m.ctx.models.AccessLog, [Actions.STAFF_PASSWORD_CHANGE]);
    expect(logged.map((e) => [e.outcome, e.reason])).to.deep.equal([['denied', 'wrong-password'], ['allowed', null]]);
    const text = JSON.stringify(await m.ctx.models.AccessLog.findAll({ raw: true }));
    for (const secret of [TEST_PASSWORD, NEW, 'not the password']) expect(text, 'no password in the log').not.to.include(secret);
  });

  it('when an account name fails N times in a row, then it is locked (423 account-locked, Retry-After) even for the right password, across a restart, alike for an unknown name; the locks grow and then need an administrator, whose unlock is logged', async () => {
    let m = await municipality({ SIGNIN_LOCKOUT_THRESHOLD: '3', SIGNIN_LOCKOUT_SECONDS: '60', SIGNIN_ADMIN_UNLOCK_AFTER: '3' });
    // The time a lock lasts, passed at once: its end moved into the past, as the clock would.
    const lockEnds = (name: string) => m.ctx.models.SignInThrottle.update(
      { lockedUntil: new Date(Date.now() - 1000).toISOString() }, { where: { key: accountKey(m.ctx.config.SESSION_SECRET, name) } },
    );
    const failThrice = async (name: string) => {
      for (let i = 0; i < 3; i++) expectProblem(await signIn(m.url, name, `wrong password ${i}`), 401, 'invalid-credentials', `${name} failure ${i + 1}`);
    };
    const locked = async (name: string, password: string) => {
      const res = await signIn(m.url, name, password);
      expectProblem(res, 423, 'account-locked', `${name} locked`);
      return res;
    };

    await failThrice('clerk1');
    await failThrice('no-such-clerk');
    const known = await locked('clerk1', TEST_PASSWORD);
    const unknown = await locked('no-such-clerk', TEST_PASSWORD);
    // The same answer for a real account and a name nobody has: nothing to enumerate.
    const shape = (res: ApiResponse) => ({ status: res.status, type: res.body.type, title: res.body.title, rule: res.body.rule, retryAfter: res.headers.get('retry-after') !== null, fields: Object.keys(res.body).sort() });
    expect(shape(unknown)).to.deep.equal(shape(known));
    expect(Number(known.headers.get('retry-after'))).to.be.within(59, 60);

    m = await restart(m);
    await locked('clerk1', TEST_PASSWORD);

    // Second lock: twice as long.
    await lockEnds('clerk1');
    await failThrice('clerk1');
    const second = await locked('clerk1', TEST_PASSWORD);
    expect(Number(second.headers.get('retry-after'))).to.be.within(119, 120);
    // Third lock: until an administrator unlocks it; waiting does not help.
    await lockEnds('clerk1');
    await failThrice('clerk1');
    const third = await locked('clerk1', TEST_PASSWORD);
    expect(third.headers.get('retry-after')).to.equal(null);
    expect(third.body.rule).to.match(/administrator/);

    const admin = await m.tokenFor('admin');
    const clerk = await staffId(m, 'clerk1');
    const listed = (await api('GET', `${m.url}/staff`, { token: admin })).body.staff.find((s: { id: string }) => s.id === clerk);
    expect(listed.signIn).to.include({ locked: true, untilUnlocked: true });
    expectProblem(await api('POST', `${m.url}/staff/${clerk}/unlock`, { token: await m.tokenFor('operator') }), 403, 'forbidden');
    const unlocked = await api('POST', `${m.url}/staff/${clerk}/unlock`, { token: admin });
    expect(unlocked.status).to.equal(200);
    expect(unlocked.body).to.include({ id: clerk, locked: false, wasLocked: true });
    expect((await signIn(m.url, 'clerk1', TEST_PASSWORD)).status).to.equal(200);

    const log = m.ctx.models.AccessLog;
    const [unlock] = await entries(log, [Actions.STAFF_UNLOCK]);
    expect(unlock).to.include({ actorId: await staffId(m, 'admin1'), actorRole: 'admin', subject: clerk, outcome: 'allowed' });
    const lockouts = await entries(log, [Actions.STAFF_LOCKOUT]);
    expect(lockouts.map((e) => e.actorId)).to.deep.equal([clerk, 'unknown', clerk, clerk]);
    figure('sign-in lockout: 3 failures lock a name (real or not) for 60 s, then 120 s, then until an administrator unlocks it');
  });

  it('when one client address fails more often than its limit, then it gets 429 too-many-sign-in-attempts with Retry-After before any password is checked, even for a right one; the refusals are logged', async () => {
    const m = await municipality({ SIGNIN_ADDRESS_FAILURE_LIMIT: '6', SIGNIN_ADDRESS_WINDOW_SECONDS: '600', SIGNIN_LOCKOUT_THRESHOLD: '100' });
    const earlier = await m.tokenFor('clerk');
    for (let i = 0; i < 6; i++) expectProblem(await signIn(m.url, `spray-${i}`, 'guess'), 401, 'invalid-credentials');
    const throttled = await signIn(m.url, 'clerk1', TEST_PASSWORD);
    expectProblem(throttled, 429, 'too-many-sign-in-attempts');
    expect(throttled.body.field).to.equal('address');
    const retryAfter = Number(throttled.headers.get('retry-after'));
    expect(retryAfter).to.be.within(1, 600);
    expect(throttled.body.retryAfter).to.equal(retryAfter);
    const refused = (await entries(m.ctx.models.AccessLog, [Actions.STAFF_SIGN_IN])).filter((e) => e.outcome === 'denied');
    expect(refused.map((e) => e.reason)).to.deep.equal([...Array(6).fill('unknown-name'), 'address-throttled']);
    // Sessions already made are untouched: the limit is on signing in, not on work.
    expect((await api('GET', `${m.url}/auth/me`, { token: earlier })).status).to.equal(200);
  });

  it('when sign-ins succeed, fail for a known account and fail for an unknown name that is a My Number, then each is one access-log entry naming the staff id or "unknown" with a keyed hash, and never the password or the name typed', async () => {
    const m = await municipality();
    const log = m.ctx.models.AccessLog;
    const before = await log.count();
    const myNumber = '123456789018';
    expect((await signIn(m.url, 'clerk1', TEST_PASSWORD)).status).to.equal(200);
    expectProblem(await signIn(m.url, 'clerk1', 'a wrong password'), 401, 'invalid-credentials');
    expectProblem(await signIn(m.url, myNumber, TEST_PASSWORD), 401, 'invalid-credentials');
    expectProblem(await signIn(m.url, myNumber, TEST_PASSWORD), 401, 'invalid-credentials');
    expect(await log.count()).to.equal(before + 4);
    const signIns = await entries(log, [Actions.STAFF_SIGN_IN]);
    const clerk = await staffId(m, 'clerk1');
    expect(signIns.map((e) => [e.actorId, e.outcome, e.reason])).to.deep.equal([
      [clerk, 'allowed', null], [clerk, 'denied', 'wrong-password'], ['unknown', 'denied', 'unknown-name'], ['unknown', 'denied', 'unknown-name'],
    ]);
    const names = signIns.slice(2).map((e) => JSON.parse(e.details).name as string);
    expect(names[0]).to.match(/^[0-9a-f]{32}$/);
    expect(names[1], 'one keyed hash per name: repeats can be told apart without the name').to.equal(names[0]);
    expect(JSON.parse(signIns[0]!.details).address).to.be.a('string');
    const everything = JSON.stringify(await log.findAll({ raw: true }));
    for (const leak of [TEST_PASSWORD, 'a wrong password', myNumber, '1234 5678 9018', 'clerk1']) expect(everything, leak).not.to.include(leak);
    figure(`sign-in logging: 4 sign-ins (1 success, 3 refused), 4 access-log entries, 0 passwords, names or My Numbers in the log`);
  });

  it('when failed sign-ins from one address reach the alert threshold, then a staff_sign_in_failures alert is raised for the privacy officer, logged, and not raised twice', async () => {
    const m = await municipality({ ALERT_SIGNIN_FAILURE_THRESHOLD: '5', ALERT_SIGNIN_WINDOW_SECONDS: '600' });
    const officer = await m.tokenFor('privacy_officer');
    for (let i = 0; i < 4; i++) await signIn(m.url, i % 2 ? 'clerk1' : `someone-${i}`, 'guess');
    expect((await api('POST', `${m.url}/alerts/run`, { token: officer })).body.raised, 'below the threshold').to.deep.equal([]);
    await signIn(m.url, 'operator1', 'guess');
    const run = await api('POST', `${m.url}/alerts/run`, { token: officer });
    expect(run.status).to.equal(200);
    expect(run.body.raised).to.have.length(1);
    const [alert] = run.body.raised;
    expect(alert).to.include({ kind: 'staff_sign_in_failures', count: 5, threshold: 5 });
    expect(alert.details).to.include({ accounts: 2, unknownNames: 2, lockouts: 0 });
    expect(alert.evidence).to.have.length(5);
    expect((await api('POST', `${m.url}/alerts/run`, { token: officer })).body.raised, 'raised once per window').to.deep.equal([]);
    const listed = await api('GET', `${m.url}/alerts?kind=staff_sign_in_failures`, { token: officer });
    expect(listed.body.alerts.map((a: { id: string }) => a.id)).to.deep.equal([alert.id]);
    const raisedEntries = await entries(m.ctx.models.AccessLog, [Actions.ALERT_RAISE]);
    expect(raisedEntries.map((e) => JSON.parse(e.details).kind)).to.deep.equal(['staff_sign_in_failures']);
    figure('sign-in burst: 4 failures from one address raise nothing, the 5th raises 1 alert (threshold 5), a rerun raises 0 more');
  });

  describe('at the gateway\'s staff port', () => {
    let pki: TestPki;
    let root: string;
    let gw: RunningGateway;
    let staff: { server: Server; url: string };

    before(async function () {
      this.timeout(120_000);
      pki = testPki();
      root = mkdtempSync(join(tmpdir(), 'hikitsugi-gateway-sign-in-'));
      mkdirSync(join(root, 'gateway'), { recursive: true });
      gw = await startGateway(gatewayTestConfig(pki, join(root, 'gateway'), {
        STAFF_PORT: '0', SESSION_SECRET: randomBytes(32).toString('hex'), CHECKPOINT_INTERVAL_SECONDS: '0', ALERT_INTERVAL_SECONDS: '0',
        SIGNIN_LOCKOUT_THRESHOLD: '3', SIGNIN_LOCKOUT_SECONDS: '600', ALERT_SIGNIN_FAILURE_THRESHOLD: '3',
      }));
      staff = await listen(gw.gateway.staffApp!, 0);
      for (const [username, role] of [['gwofficer', 'privacy_officer'], ['gwadmin', 'admin'], ['gwofficer2', 'privacy_officer']] as const) {
        await createStaffAccount(gw.gateway.ctx.models.Staff, { username, displayName: username, role, password: TEST_PASSWORD });
      }
    });
    after(async () => {
      if (staff) await closeServer(staff.server);
      await gw?.stop();
      if (root) removeDir(root);
    });

    it('when a gateway officer\'s name fails three times, then it is locked (423), every event is in the gateway\'s log, the admin\'s unlock is logged, and the burst raises an alert', async () => {
      for (let i = 0; i < 3; i++) expectProblem(await signIn(staff.url, 'gwofficer', 'guess'), 401, 'invalid-credentials');
      expectProblem(await signIn(staff.url, 'gwofficer', TEST_PASSWORD), 423, 'account-locked');
      const admin = (await signIn(staff.url, 'gwadmin', TEST_PASSWORD)).body.token as string;
      const officerId = (await gw.gateway.ctx.models.Staff.findOne({ where: { username: 'gwofficer' }, raw: true }))!.id;
      expect((await api('POST', `${staff.url}/staff/${officerId}/unlock`, { token: admin })).status).to.equal(200);
      const officer = await signIn(staff.url, 'gwofficer', TEST_PASSWORD);
      expect(officer.status).to.equal(200);

      const log = gw.gateway.ctx.models.AccessLog;
      const events = await entries(log, [GatewayActions.STAFF_SIGN_IN, GatewayActions.STAFF_LOCKOUT, GatewayActions.STAFF_UNLOCK]);
      expect(events.map((e) => [e.action, e.outcome, e.reason])).to.deep.equal([
        ['staff.sign_in', 'denied', 'wrong-password'], ['staff.sign_in', 'denied', 'wrong-password'], ['staff.lockout', 'denied', 'repeated-failures'],
        ['staff.sign_in', 'denied', 'account-locked'], ['staff.sign_in', 'allowed', null], ['staff.unlock', 'allowed', null], ['staff.sign_in', 'allowed', null],
      ]);
      const run = await api('POST', `${staff.url}/alerts/run`, { token: officer.body.token });
      expect(run.body.raised.map((a: { kind: string }) => a.kind)).to.deep.equal(['staff_sign_in_failures']);
    });

    it('when a gateway session is logged out, its account disabled or a token made with the gateway\'s secret lives ten years, then the staff port refuses it with its 401 type', async () => {
      const token = (await signIn(staff.url, 'gwofficer2', TEST_PASSWORD)).body.token as string;
      const other = (await signIn(staff.url, 'gwofficer2', TEST_PASSWORD)).body.token as string;
      expect((await api('GET', `${staff.url}/audit/entries`, { token })).status).to.equal(200);
      expect((await api('POST', `${staff.url}/auth/logout`, { token })).status).to.equal(204);
      expectProblem(await api('GET', `${staff.url}/audit/entries`, { token }), 401, 'session-logged-out');

      const secret = gw.gateway.ctx.config.SESSION_SECRET!;
      const id = (await gw.gateway.ctx.models.Staff.findOne({ where: { username: 'gwofficer2' }, raw: true }))!.id;
      const long = await new jose.SignJWT({ role: 'privacy_officer', municipality: 'gateway', ver: 0 }).setProtectedHeader({ alg: 'HS256', typ: 'session+jwt' })
        .setSubject(id).setIssuer('gateway').setAudience('gateway').setJti(randomUUID()).setIssuedAt().setExpirationTime('3650d').sign(secret);
      expectProblem(await api('GET', `${staff.url}/audit/entries`, { token: long }), 401, 'session-too-long');

      const admin = (await signIn(staff.url, 'gwadmin', TEST_PASSWORD)).body.token as string;
      expect((await api('POST', `${staff.url}/staff/${id}/disable`, { token: admin })).status).to.equal(200);
      expectProblem(await api('GET', `${staff.url}/audit/entries`, { token: other }), 401, 'session-staff-disabled');
      const [disable] = await entries(gw.gateway.ctx.models.AccessLog, [GatewayActions.STAFF_DISABLE]);
      expect(disable).to.include({ subject: id, actorRole: 'admin', actingMunicipality: 'gateway' });
    });
  });
});
