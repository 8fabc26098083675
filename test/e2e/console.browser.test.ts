/**
 * The privacy officer's console in a real browser: Debian's Chromium driven by playwright-core
 * (never a downloaded browser) against a real municipality instance on a loopback port, and the
 * same console served by a real gateway on its staff port.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import sqlite from '../../shared/platform/sqlite-driver.ts';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { GatewayActions } from '../../gateway/access-log/actions.ts';
import { appendAccess } from '../../shared/access-log/chain.ts';
import { closeServer, listen } from '../../shared/platform/server.ts';
import { createStaffAccount } from '../../shared/staff/auth.ts';
import { completeMyNumber } from '../../shared/identifiers.ts';
import { Actions } from '../../services/municipality/access-log/actions.ts';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, TEST_PASSWORD, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';
import { openMemberDatabase } from '../fixtures/database.ts';
import { gatewayTestConfig, startGateway, type RunningGateway } from '../fixtures/members.ts';
import { testPki, type TestPki } from '../fixtures/pki.ts';

const CHROMIUM = '/usr/bin/chromium';

function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Collects script errors and CSP violations: the console must run with 'self' only. */
function watchProblems(page: Page, problems: string[]): void {
  page.on('console', (msg) => {
    // The console's first move is to ask /auth/me whether a session exists: its 401 is expected.
    if (msg.type() === 'error' && !msg.location().url.endsWith('/auth/me')) problems.push(`${msg.text()} ${msg.location().url}`);
  });
  page.on('pageerror', (err) => problems.push(err.message));
}

describe('privacy officer console in a browser', function () {
  let m: RunningMunicipality;
  let browser: Browser;
  let page: Page;
  let resident: string;
  const problems: string[] = [];

  before(async function () {
    m = await startMunicipality(DEMO_MUNICIPALITIES.tawaramoto);
    const clerk = await m.tokenFor('clerk');
    const created = await api('POST', `${m.url}/residents`, {
      token: clerk,
      body: { name: '俵本 一郎', kana: 'タワラモト イチロウ', birthDate: '1970-01-02', sex: 'male', address: '奈良県磯城郡田原本町1', myNumber: completeMyNumber('30000000001') },
    });
    expect(created.status).to.equal(201);
    resident = created.body.addresseeNumber;
    await api('GET', `${m.url}/residents/${resident}`, { token: clerk });
    await m.ctx.sequelize.transaction((t) => appendAccess(m.ctx.models.AccessLog, t, {
      actorType: 'member', actorId: '343692', actingMunicipality: '343692', subject: resident, action: Actions.QUERY_ANSWER,
      purpose: 'adverse-event-follow-up', legalBasis: 'life-protection', flags: ['life-protection'], outcome: 'allowed',
      reason: '=cmd|"/c calc"!A1', requestId: 'rid-browser-life-1',
    }));
    browser = await launchChromium();
    const context = await browser.newContext({ acceptDownloads: true, locale: 'ja-JP', timezoneId: 'UTC' });
    page = await context.newPage();
    watchProblems(page, problems);
  });
  after(async () => {
    await browser?.close();
    if (m) {
      await m.stop();
      removeDir(m.dir);
    }
  });

  it('when a privacy officer logs in, filters, opens an entry, verifies and exports, then each step works in Chromium', async () => {
    await page.goto(`${m.url}/console/`);
    await page.getByLabel('ユーザー名 / Username').fill('privacyofficer1');
    await page.getByLabel('パスワード / Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'ログイン / Log in' }).click();

    await page.locator('#console-section').waitFor({ state: 'visible' });
    await page.locator('#entries tr').first().waitFor();
    expect(await page.locator('#who').textContent()).to.include('privacy_officer');
    expect(await page.locator('#entries tr').count()).to.be.greaterThan(1);

    // Times in JST, whatever the browser's zone (UTC here): each shown time is its stored instant plus nine hours.
    const shown = await page.locator('#entries tr td:nth-child(2)').evaluateAll((cells) => cells.map((c) => [c.getAttribute('title'), c.textContent]));
    for (const [utc, text] of shown) {
      expect(text).to.equal(`${new Date(new Date(utc!).getTime() + 9 * 3600_000).toISOString().slice(0, 19).replace('T', ' ')} JST`);
    }

    // A resident found by kana typed in hiragana: every entry about them, and staff by display name (the id on hover).
    await page.getByLabel('住民の氏名・カナ / Resident name').fill('たわらもと いちろう');
    await page.getByLabel('操作 / Action').selectOption('resident.read');
    await page.getByRole('button', { name: '検索 / Search' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#entries tr').length === 1 && document.querySelector('#entries tr td:nth-child(4)')?.textContent !== '—');
    const read = page.locator('#entries tr').first();
    expect(await read.locator('td').nth(3).textContent()).to.equal(resident);
    expect(await read.locator('td').nth(4).textContent()).to.equal('住民情報の閲覧');
    const clerkId = (await m.ctx.models.Staff.findOne({ where: { username: 'clerk1' }, raw: true }))!.id;
    expect(await read.locator('td').nth(2).textContent()).to.equal('clerk one（窓口職員）');
    expect(await read.locator('td').nth(2).getAttribute('title')).to.include(clerkId);
    await page.getByLabel('住民の氏名・カナ / Resident name').fill('');
    await page.getByLabel('操作 / Action').selectOption('');

    // Filter: one resident, flagged life-protection; the filter's times are JST like the display.
    await page.getByLabel('住民（宛名番号）/ Resident').fill(resident);
    await page.getByLabel('注意 / Flag').selectOption('life-protection');
    await page.getByRole('button', { name: '検索 / Search' }).click();
    // The page before held one row too: wait for the life-protection one.
    await page.waitForFunction(() => document.querySelectorAll('#entries tr').length === 1 && /343692/.test(document.querySelector('#entries tr')!.textContent ?? ''));
    const row = page.locator('#entries tr').first();
    expect(await row.textContent()).to.include('生命保護').and.include('343692').and.include('副反応の追跡').and.include('生命・身体の保護');
    const at = (await row.locator('td').nth(1).textContent())!.replace(' JST', '').replace(' ', 'T');
    // Up to one second before it, in JST: nothing; from it on, in JST: the entry again.
    const secondBefore = new Date(new Date(`${at}+09:00`).getTime() - 1000 + 9 * 3600_000).toISOString().slice(0, 19);
    await page.getByLabel('終了（日本時間）/ To (JST)').fill(secondBefore);
    await page.getByRole('button', { name: '検索 / Search' }).click();
    await page.locator('#entries-summary').filter({ hasText: '該当する記録はありません' }).waitFor();
    await page.getByLabel('終了（日本時間）/ To (JST)').fill('');
    await page.getByLabel('開始（日本時間）/ From (JST)').fill(at);
    await page.getByRole('button', { name: '検索 / Search' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#entries tr').length === 1 && /343692/.test(document.querySelector('#entries tr')!.textContent ?? ''));
    await page.getByLabel('開始（日本時間）/ From (JST)').fill('');

    // One entry, then its request followed.
    await row.getByRole('button').click();
    await page.locator('#detail').waitFor({ state: 'visible' });
    expect(await page.locator('#detail-fields').textContent()).to.include('rid-browser-life-1');
    await page.getByRole('button', { name: '要求を追跡 / Follow request id' }).click();
    await page.locator('#trace-result li').first().waitFor();
    expect(await page.locator('#trace-result').textContent()).to.include('exchange.query.answer');

    // Verification of the intact chain.
    await page.getByRole('button', { name: '検証 / Verify chain' }).click();
    await page.locator('#check-result.ok').waitFor();
    expect(await page.locator('#check-result').textContent()).to.include('Chain OK');

    // Export of the filtered entries as CSV, downloaded with the session cookie.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV出力 / Export CSV' }).click()]);
    expect(download.suggestedFilename()).to.match(/^access-log-293610-.*\.csv$/);
    const csv = readFileSync((await download.path())!, 'utf8').replace(/^\uFEFF/, '');
    const lines = csv.split('\r\n').filter(Boolean);
    expect(lines).to.have.length(2);
    expect(lines[1]).to.include('rid-browser-life-1').and.include(`"'=cmd|""/c calc""!A1"`);

    // The resident's disclosure report, printable in Japanese: JST times, and Chromium prints it to an A4 PDF.
    const report = await page.context().newPage();
    watchProblems(report, problems);
    await report.goto(`${m.url}/residents/${resident}/disclosure.html`);
    expect(await report.locator('h1').textContent()).to.equal('情報提供等記録');
    expect(await report.locator('tbody').first().textContent()).to.include('自治体コード 343692 の職員（ゲートウェイ経由）').and.include('生命・身体の保護');
    const times = await report.locator('td time').evaluateAll((ts) => ts.map((t) => [t.getAttribute('datetime'), t.textContent]));
    expect(times.length).to.be.greaterThan(1);
    for (const [utc, text] of times) expect(text).to.equal(`${new Date(new Date(utc!).getTime() + 9 * 3600_000).toISOString().slice(0, 19).replace('T', ' ')} JST`);
    await report.emulateMedia({ media: 'print' });
    expect(await report.locator('thead').first().evaluate((e) => getComputedStyle(e).display)).to.equal('table-header-group');
    const pdf = await report.pdf({ preferCSSPageSize: true });
    expect(pdf.subarray(0, 5).toString()).to.equal('%PDF-');
    await report.close();

    expect(problems, problems.join('\n')).to.deep.equal([]);
  });

  it('when a row is edited in the database file, then the console\'s verification names the entry', async () => {
    const edit = 'UPDATE access_log SET purpose = \'certificate-issuance\' WHERE seq = 2;';
    if (m.ctx.config.DATABASE_URL) {
      // PostgreSQL: the same edit by the database's owner, who can switch the append-only trigger off.
      const db = await openMemberDatabase({ DATABASE_URL: m.ctx.config.DATABASE_URL });
      try {
        await db.transaction(async (transaction) => {
          for (const sql of ['ALTER TABLE access_log DISABLE TRIGGER access_log_no_change;', edit, 'ALTER TABLE access_log ENABLE TRIGGER access_log_no_change;']) {
            await db.query(sql, { transaction });
          }
        });
      } finally {
        await db.close();
      }
    } else {
      const db = new sqlite.Database(m.ctx.config.DATABASE_PATH!);
      await new Promise<void>((resolve, reject) => db.exec(`DROP TRIGGER IF EXISTS access_log_no_update; ${edit}`, (err) => (err ? reject(err) : resolve())));
      await new Promise<void>((resolve) => db.close(() => resolve()));
    }
    await page.getByRole('button', { name: '検証 / Verify chain' }).click();
    await page.locator('#check-result.broken').waitFor();
    expect(await page.locator('#check-result').textContent()).to.include('Broken at entry 2: hash-mismatch');
  });

  it('when a clerk tries the console, then it is refused as privacy-officer only', async () => {
    await page.getByRole('button', { name: 'ログアウト / Log out' }).click();
    await page.locator('#login-section').waitFor({ state: 'visible' });
    await page.getByLabel('ユーザー名 / Username').fill('clerk1');
    await page.getByLabel('パスワード / Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'ログイン / Log in' }).click();
    await page.locator('#login-error').filter({ hasText: 'Privacy officers only' }).waitFor();
    expect(await page.locator('#console-section').isHidden()).to.equal(true);
  });
});

describe('the gateway\'s privacy officer console in a browser', function () {
  let pki: TestPki;
  let dir: string;
  let gw: RunningGateway;
  let staff: { server: Server; url: string };
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  before(async function () {
    this.timeout(120_000);
    pki = testPki();
    dir = mkdtempSync(join(tmpdir(), 'hikitsugi-gateway-console-'));
    gw = await startGateway(gatewayTestConfig(pki, dir, { STAFF_PORT: '0', SESSION_SECRET: randomBytes(32).toString('hex'), CHECKPOINT_INTERVAL_SECONDS: '0' }));
    staff = await listen(gw.gateway.staffApp!, 0);
    await createStaffAccount(gw.gateway.ctx.models.Staff, { username: 'gwofficer1', displayName: 'Gateway officer', role: 'privacy_officer', password: TEST_PASSWORD });
    const log = gw.gateway.ctx.models.AccessLog;
    await gw.gateway.ctx.sequelize.transaction(async (t) => {
      for (const [requestId, basis] of [['rid-gw-consent-1', 'consent'], ['rid-gw-life-1', 'life-protection']] as const) {
        const entry = {
          actorType: 'member', actorId: '112241', actorRole: 'municipality', actingMunicipality: '112241', subject: 'AAAAAAAAAAAAAAAAAAAAAAAAAA',
          purpose: 'adverse-event-follow-up', legalBasis: basis, flags: basis === 'life-protection' ? ['life-protection'] : [], requestId,
        } as const;
        await appendAccess(log, t, { ...entry, action: GatewayActions.QUERY_ROUTE, outcome: 'allowed', details: { source: '293610', ref: '0', status: 'forwarded' } });
        await appendAccess(log, t, { ...entry, action: GatewayActions.QUERY_ANSWER, outcome: 'allowed', details: { source: '293610', ref: '0', status: 'ok' } });
      }
      // One row about another resident's code, one by another municipality: each filter must leave one out.
      for (const [requestId, subject, municipality] of [['rid-gw-other-code', 'BBBBBBBBBBBBBBBBBBBBBBBBBB', '112241'], ['rid-gw-other-town', 'AAAAAAAAAAAAAAAAAAAAAAAAAA', '343692']] as const) {
        await appendAccess(log, t, {
          actorType: 'member', actorId: municipality, actorRole: 'municipality', actingMunicipality: municipality, subject, purpose: 'adverse-event-follow-up',
          legalBasis: 'consent', flags: [], requestId, action: GatewayActions.QUERY_ROUTE, outcome: 'allowed', details: { source: '293610', ref: '0', status: 'forwarded' },
        });
      }
    });
    browser = await launchChromium();
    const context = await browser.newContext({ acceptDownloads: true, locale: 'ja-JP', timezoneId: 'UTC' });
    page = await context.newPage();
    watchProblems(page, problems);
  });
  after(async () => {
    await browser?.close();
    if (staff) await closeServer(staff.server);
    await gw?.stop();
    if (dir) removeDir(dir);
  });

  it('when the gateway\'s privacy officer logs in, filters, follows a request, verifies and exports, then each step works in Chromium', async () => {
    await page.goto(`${staff.url}/console/`);
    await page.getByLabel('ユーザー名 / Username').fill('gwofficer1');
    await page.getByLabel('パスワード / Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'ログイン / Log in' }).click();
    await page.locator('#console-section').waitFor({ state: 'visible' });
    await page.locator('#entries tr').first().waitFor();
    expect(await page.locator('#who').textContent()).to.include('privacy_officer').and.include('gateway');
    // Reconciliation runs at a municipality: the gateway's console does not offer it.
    expect(await page.locator('#reconcile').isHidden()).to.equal(true);

    // The gateway's log names residents by code: the filter says so and finds them; no name search here.
    expect(await page.locator('#subject-label').textContent()).to.equal('符号 / Code');
    expect(await page.locator('#resident-field').isHidden()).to.equal(true);
    const shownRequests = async () => (await page.locator('#entries tr').allTextContents()).join('\n');
    await page.getByLabel('符号 / Code').fill('AAAAAAAAAAAAAAAAAAAAAAAAAA');
    await page.getByRole('button', { name: '検索 / Search' }).click();
    // The code alone: the other resident's row is left out, the other municipality's row is not.
    await page.waitForFunction(() => document.querySelectorAll('#entries tr').length === 5);
    expect(await page.locator('#entries tr', { hasText: '343692' }).count()).to.equal(1);
    await page.getByLabel('符号 / Code').fill('');
    await page.getByLabel('自治体コード / Municipality').fill('112241');
    await page.getByRole('button', { name: '検索 / Search' }).click();
    // The municipality alone: the other municipality's row is left out, the other resident's row is not.
    await page.waitForFunction(() => document.querySelectorAll('#entries tr').length === 5 && !document.querySelector('#entries')!.textContent!.includes('343692'));
    await page.getByLabel('符号 / Code').fill('AAAAAAAAAAAAAAAAAAAAAAAAAA');
    await page.getByRole('button', { name: '検索 / Search' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#entries tr').length === 4);
    expect(await shownRequests()).not.to.include('343692');
    await page.getByLabel('注意 / Flag').selectOption('life-protection');
    await page.getByRole('button', { name: '検索 / Search' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#entries tr').length === 2);
    const row = page.locator('#entries tr').first();
    expect(await row.textContent()).to.include('回答の中継').and.include('連携先 112241');
    expect(await row.locator('td').nth(4).getAttribute('title')).to.equal('query.answer');

    await row.getByRole('button').click();
    await page.locator('#detail').waitFor({ state: 'visible' });
    expect(await page.locator('#detail-fields').textContent()).to.include('rid-gw-life-1');
    await page.getByRole('button', { name: '要求を追跡 / Follow request id' }).click();
    await page.locator('#trace-result li').nth(1).waitFor();
    const trace = await page.locator('#trace-result').textContent();
    expect(trace).to.include('gateway').and.include('query.route').and.include('query.answer');

    await page.getByRole('button', { name: '検証 / Verify chain' }).click();
    await page.locator('#check-result.ok').waitFor();
    expect(await page.locator('#check-result').textContent()).to.include('Chain OK');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV出力 / Export CSV' }).click()]);
    expect(download.suggestedFilename()).to.match(/^access-log-gateway-.*\.csv$/);
    const lines = readFileSync((await download.path())!, 'utf8').replace(/^\uFEFF/, '').split('\r\n').filter(Boolean);
    expect(lines).to.have.length(3);
    expect(lines.slice(1).every((l) => l.includes('rid-gw-life-1') && l.includes('life-protection'))).to.equal(true);

    expect(problems, problems.join('\n')).to.deep.equal([]);
  });
});
