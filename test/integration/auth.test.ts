import { expect } from 'chai';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, TEST_PASSWORD, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';

describe('staff authentication and roles', () => {
  let toda: RunningMunicipality;
  let akiota: RunningMunicipality;

  before(async () => {
    toda = await startMunicipality(DEMO_MUNICIPALITIES.toda);
    akiota = await startMunicipality(DEMO_MUNICIPALITIES.akiota);
  });
  after(async () => {
    await toda.stop();
    await akiota.stop();
    removeDir(toda.dir);
    removeDir(akiota.dir);
  });

  it('when a clerk logs in, then a session token and an httpOnly SameSite cookie come back', async () => {
    const res = await api('POST', `${toda.url}/auth/login`, { body: { username: 'clerk1', password: TEST_PASSWORD } });
    expect(res.status).to.equal(200);
    expect(res.body.token).to.be.a('string');
    expect(res.body.staff).to.include({ username: 'clerk1', role: 'clerk' });
    expect(res.body.staff).not.to.have.property('passwordHash');
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).to.match(/HttpOnly/i).and.to.match(/SameSite=Strict/i);
  });

  it('when the password is wrong or the user unknown, then 401 problem+json', async () => {
    for (const body of [{ username: 'clerk1', password: 'wrong' }, { username: 'nobody', password: 'x' }]) {
      const res = await api('POST', `${toda.url}/auth/login`, { body });
      expect(res.status).to.equal(401);
      expect(res.headers.get('content-type')).to.match(/application\/problem\+json/);
      expect(res.body.type).to.match(/invalid-credentials$/);
    }
  });

  it('when the login body is malformed, then 400 names the field and the rule', async () => {
    const res = await api('POST', `${toda.url}/auth/login`, { body: { username: '' } });
    expect(res.status).to.equal(400);
    expect(res.body.field).to.equal('username');
    expect(res.body.rule).to.be.a('string');
    expect(res.body.errors.map((e: { field: string }) => e.field)).to.include('password');
  });

  it('when no token is sent, then 401; when the role is wrong, then 403', async () => {
    expect((await api('GET', `${toda.url}/staff`)).status).to.equal(401);
    const clerk = await toda.tokenFor('clerk');
    const res = await api('GET', `${toda.url}/staff`, { token: clerk });
    expect(res.status).to.equal(403);
    const admin = await toda.tokenFor('admin');
    expect((await api('GET', `${toda.url}/staff`, { token: admin })).status).to.equal(200);
  });

  it('when a token of another municipality is presented, then it is refused', async () => {
    const akiotaAdmin = await akiota.tokenFor('admin');
    const res = await api('GET', `${toda.url}/staff`, { token: akiotaAdmin });
    expect(res.status).to.equal(401);
  });

  it('when the session cookie is sent instead of a bearer header, then it authenticates', async () => {
    const login = await api('POST', `${toda.url}/auth/login`, { body: { username: 'admin1', password: TEST_PASSWORD } });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const res = await api('GET', `${toda.url}/auth/me`, { headers: { cookie } });
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ username: 'admin1', municipality: '112241' });
  });

  it('when an admin creates staff with a short password, then 400 names password', async () => {
    const admin = await toda.tokenFor('admin');
    const res = await api('POST', `${toda.url}/staff`, { token: admin, body: { username: 'clerk9', displayName: 'C', role: 'clerk', password: 'short' } });
    expect(res.status).to.equal(400);
    expect(res.body.field).to.equal('password');
  });

  it('when a body is not JSON, too deep or too large, then a problem names the rule', async () => {
    const notJson = await api('POST', `${toda.url}/auth/login`, { raw: 'username=a', headers: { 'content-type': 'text/plain' } });
    expect(notJson.status).to.equal(415);
    const malformed = await api('POST', `${toda.url}/auth/login`, { raw: '{"username":', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).to.equal(400);
    expect(malformed.body.rule).to.equal('must be valid JSON');
    let deep: unknown = 1;
    for (let i = 0; i < 50; i++) deep = { a: deep };
    const tooDeep = await api('POST', `${toda.url}/auth/login`, { body: deep });
    expect(tooDeep.status).to.equal(400);
    expect(tooDeep.body.rule).to.match(/nest at most/);
    const large = await api('POST', `${toda.url}/auth/login`, { body: { username: 'x'.repeat(300_000), password: 'y' } });
    expect(large.status).to.equal(413);
  });

  it('when an unknown route is asked, then 404 problem+json', async () => {
    const res = await api('GET', `${toda.url}/nope`);
    expect(res.status).to.equal(404);
    expect(res.headers.get('content-type')).to.match(/problem\+json/);
  });
});
