/**
 * The resident's own page in a real browser (docs/DESIGN.md §4.14): Debian's Chromium (never a
 * downloaded one) at a phone's size, against a real federation in one process (issuer, gateway,
 * two municipalities over mTLS). The resident signs in with the certificate and key files the
 * counter gave them (the page signs the challenge with WebCrypto; the key never leaves the
 * browser), sees the cross-municipality access a clerk's query caused a moment before, revokes
 * their consent, and the next query for them is refused: at B, and at the source A on its own once
 * the revocation reached it (a query delivered to A by a gateway that had not heard, §4.4).
 */
import { expect } from 'chai';
import { createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { issueResidentCertificate, type ResidentIdentity } from '../../shared/federation/pki.ts';
import { findResidentByAddressee } from '../../services/municipality/residents/service.ts';
import { api } from '../fixtures/http.ts';
import {
  ask, craftAndForwardAsGateway, moveResident, revocationReached, startInProcessFederation, TAWARAMOTO, TODA, type InProcessFederation, type MovedResident,
} from '../fixtures/inprocess-federation.ts';

const CHROMIUM = '/usr/bin/chromium';
const A = TAWARAMOTO;
const B = TODA;
/** A phone's screen, in CSS pixels. */
const PHONE = { width: 390, height: 844 };

describe('the resident page in a browser: sign in, see a query about oneself, revoke the consent', function () {
  this.timeout(180_000);
  let fed: InProcessFederation;
  let moved: MovedResident;
  let browser: Browser;
  let page: Page;
  let dir: string;
  const problems: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
    fed = await startInProcessFederation({ municipalities: [A, B] });
    moved = await moveResident(fed, A, B);
    // At the counter: the CA issues the resident's personal certificate; the clerk enrols it.
    const r = (await findResidentByAddressee(fed.m(B).ctx, moved.toAddressee))!;
    const identity: ResidentIdentity = { kana: r.kana, birthDate: r.birthDate, sex: r.sex as ResidentIdentity['sex'] };
    const issued = await issueResidentCertificate(fed.pki.ca, identity);
    const clerk = await fed.m(B).login('clerk1');
    const enrolled = await api('POST', `${fed.m(B).url}/residents/${moved.toAddressee}/resident-credentials`, { token: clerk, body: { certificate: issued.cert } });
    expect(enrolled.status, JSON.stringify(enrolled.body)).to.equal(201);
    dir = mkdtempSync(join(tmpdir(), 'hikitsugi-resident-'));
    writeFileSync(join(dir, 'certificate.pem'), issued.cert);
    writeFileSync(join(dir, 'key.pem'), createPrivateKey(issued.key!).export({ type: 'pkcs8', format: 'pem' }));

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, locale: 'ja-JP', timezoneId: 'UTC' });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(err.message));
    // The page's first move asks /resident/me whether a session exists: its 401 is expected.
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/401/.test(msg.text())) problems.push(`${msg.text()} ${msg.location().url}`);
    });
  });
  after(async () => {
    await browser?.close();
    await fed?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when a clerk\'s query about the resident has just happened, then the resident signs in, sees it, revokes the consent, and the next query is refused at B and at the source', async () => {
    const clerk = await fed.m(B).login('clerk1');
    const asked = await ask(fed.m(B), clerk, moved.toAddressee, A);
    expect(asked.status).to.equal('ok');

    await page.goto(`${fed.m(B).url}/resident/`);
    await page.getByRole('heading', { name: '本人ページにログイン' }).waitFor();
    await page.getByLabel('証明書ファイル（.pem）').setInputFiles(join(dir, 'certificate.pem'));
    await page.getByLabel('鍵ファイル（.pem）').setInputFiles(join(dir, 'key.pem'));
    await page.getByRole('button', { name: 'ログイン' }).click();
    await page.locator('#page').waitFor({ state: 'visible' });

    // The clerk's query, a moment ago: a cross-municipality access naming the other municipality and the purpose.
    const access = page.locator(`#trail-list li.cross`).filter({ hasText: '照会' }).first();
    await access.waitFor();
    const text = await access.textContent();
    expect(text).to.include('窓口職員').and.include('次回接種の計画').and.include('本人同意');
    expect(text).to.match(/田原本町|293610/);
    // Times in JST whatever the browser's zone (UTC here).
    expect(await access.locator('.when').textContent()).to.match(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} JST/);
    // Tawaramoto's own log, asked through the gateway on the resident's signature: its answer to that query.
    const atA = page.locator(`#trail-list li.access[data-at="${A}"]`);
    await atA.first().waitFor();
    expect(await atA.filter({ hasText: '照会への回答' }).count()).to.be.at.least(1);
    // The gateway's own entries about them: its routing of that query from Toda to Tawaramoto, in Japanese.
    const routed = page.locator('#trail-list li.access[data-at="gateway"]').filter({ hasText: '照会の中継' }).first();
    await routed.waitFor();
    expect(await routed.textContent()).to.match(/戸田市|Toda|112241/).and.match(/田原本町|Tawaramoto|293610/);
    // The records imported by that query, with where they came from.
    expect(await page.locator('#record-list li').filter({ hasText: 'から取得' }).count()).to.equal(2);
    // The notice of that import, sent to them (§4.11), naming where the records came from.
    const notice = page.locator('#notice-list li.notice').filter({ hasText: 'あなたの接種記録を他の自治体から取り寄せました' });
    expect(await notice.count()).to.equal(1);
    expect(await notice.textContent()).to.match(/田原本町|293610/);
    // Made for a phone: nothing wider than the screen.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, 'no horizontal scrolling on a phone').to.be.at.most(0);

    // Revoking the consent: the page asks first, then shows it revoked.
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'この同意を撤回する' }).click();
    await page.locator('#consent-list li.revoked').waitFor();
    expect(await page.locator('#consent-list li.revoked').textContent()).to.include('撤回済み');

    // Refused at B: its own service will not sign a query on a revoked consent.
    const next = await ask(fed.m(B), clerk, moved.toAddressee, A);
    expect(next).to.include({ status: 'no_consent', reason: 'consent_revoked' });
    // Refused at the source: once the revocation reached the gateway and A, A refuses on its own a
    // query carrying the revoked consent, delivered as a slow or rogue gateway would (signed with
    // the gateway's credentials, straight to A's record-request endpoint).
    const consentId = (await fed.m(B).ctx.models.Consent.findOne({ where: { residentId: (await findResidentByAddressee(fed.m(B).ctx, moved.toAddressee))!.id }, raw: true }))!.id;
    await revocationReached(fed, B, consentId, [A]);
    const atSource = await craftAndForwardAsGateway(fed, B, { addresseeNumber: moved.toAddressee, source: A, consent: { id: consentId } });
    expect(atSource.source, 'A\'s own signed result').to.include({ status: 'no_consent', reason: 'consent_revoked' });
    const answered = await fed.m(A).ctx.models.AccessLog.findAll({ where: { requestId: atSource.rid, action: 'exchange.query.answer' }, raw: true });
    // Refused before A looks the resident up: the entry names the subject by A's code for them.
    const codeAtA = (await findResidentByAddressee(fed.m(A).ctx, moved.fromAddressee))!.code;
    expect(answered.map((e) => [e.subject, e.outcome, e.reason, e.consentId])).to.deep.equal([[codeAtA, 'denied', 'consent_revoked', consentId]]);
    expect(await fed.gateway.gateway.ctx.models.AccessLog.count({ where: { requestId: atSource.rid } }), 'the gateway never saw it').to.equal(0);
    // The resident's own readings and the revocation are in their trail, in their name.
    await page.reload();
    await page.locator('#page').waitFor({ state: 'visible' });
    expect(await page.locator('#trail-list li').filter({ hasText: '同意の撤回' }).filter({ hasText: 'あなた（本人）' }).count()).to.equal(1);
    expect(problems).to.deep.equal([]);
  });
});
