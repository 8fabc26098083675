/**
 * A whole federation in one process for the issue 9 suites (move-in capability, resident-signed
 * consent): the real issuer, the real gateway and real municipalities, each with its own SQLite
 * file, keys and config, talking mTLS on loopback ports. Cheaper than the process federation, and
 * each municipality's config is an object here (e.g. its own MOVE_IN_QUERY_WINDOW_DAYS).
 * Also: the staff and member-side steps the suites share (move, consent, query, craft a query).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peekJwt } from '../../shared/crypto.ts';
import { closeMemberServer, createMemberClient, listenMember, type MemberClient } from '../../shared/member-http.ts';
import { sealMessage, signMessage } from '../../shared/messages.ts';
import { pkiPaths } from '../../shared/pki.ts';
import { CONSENT_SCOPE, GATEWAY_ID, Typ, type AnswerClaims, type ConsentTerms, type Purpose } from '../../shared/protocol.ts';
import { api } from '../fixtures/http.ts';
import { buildResident, postRecord, type ResidentInput } from '../fixtures/factories.ts';
import { removeDir, startMunicipality, testConfig, type RunningMunicipality } from '../fixtures/municipality.ts';
import {
  createTestPki, gatewayTestConfig, issuerTestConfig, startGateway, startIssuer, writeTestDirectory,
  type RunningGateway, type RunningIssuer, type TestPki,
} from '../fixtures/pki.ts';

export const TAWARAMOTO = '293610';
export const AKIOTA = '343692';
export const TODA = '112241';
const NAMES: Record<string, string> = { [TAWARAMOTO]: 'Tawaramoto', [AKIOTA]: 'Akiota', [TODA]: 'Toda' };
const DAY = 86_400_000;

export interface InProcessFederation {
  pki: TestPki;
  gateway: RunningGateway;
  issuer: RunningIssuer;
  m(code: string): RunningMunicipality;
  clerk(code: string): Promise<string>;
  /** An mTLS client holding a municipality's real credentials (to act as that member). */
  client(code: string): MemberClient;
  close(): Promise<void>;
}

/** Starts the issuer, the gateway and the given municipalities; `env` adds config per municipality. */
export async function startInProcessFederation(codes: string[], env: Record<string, Record<string, string>> = {}): Promise<InProcessFederation> {
  const pki = await createTestPki();
  const root = mkdtempSync(join(tmpdir(), 'hikitsugi-beyond-'));
  for (const dir of ['gateway', 'issuer']) mkdirSync(join(root, dir), { recursive: true });
  const gateway = await startGateway(gatewayTestConfig(pki, join(root, 'gateway'), { CHECKPOINT_INTERVAL_SECONDS: '0' }));
  const issuer = await startIssuer(issuerTestConfig(pki, join(root, 'issuer'), gateway.url, { CHECKPOINT_INTERVAL_SECONDS: '0' }));
  const members = new Map<string, RunningMunicipality>();
  const endpoints: Record<string, string> = {};
  for (const code of codes) {
    const dir = join(root, code);
    mkdirSync(dir, { recursive: true });
    const m = await startMunicipality({ code, name: NAMES[code]! }, {
      dir,
      config: testConfig(code, NAMES[code]!, dir, {
        CERT_DIR: pkiPaths(pki.dir).member(code), GATEWAY_URL: gateway.url, ISSUER_URL: issuer.url, CHECKPOINT_INTERVAL_SECONDS: '0', ...env[code],
      }),
    });
    endpoints[code] = await listenMember(m.federationServer!, 0);
    members.set(code, m);
  }
  // The gateway re-reads its directory file when it changes: now it knows where to forward.
  writeTestDirectory(pki, gateway.config.DIRECTORY_FILE, endpoints);
  const clients = new Map<string, MemberClient>();
  const m = (code: string) => members.get(code)!;
  return {
    pki, gateway, issuer, m,
    clerk: (code) => m(code).tokenFor('clerk'),
    client(code) {
      if (!clients.has(code)) clients.set(code, createMemberClient(pki.credentials(code)));
      return clients.get(code)!;
    },
    async close() {
      for (const c of clients.values()) c.close();
      for (const member of members.values()) {
        member.federationServer!.closeAllConnections();
        await closeMemberServer(member.federationServer!);
        await member.stop();
      }
      await issuer.stop();
      await gateway.stop();
      pki.remove();
      removeDir(root);
    },
  };
}

/* ---------- staff steps ---------- */

/** Registers a person at a municipality by hand, with two records there. */
export async function residentWithRecords(m: RunningMunicipality, token: string, overrides: Partial<ResidentInput> = {}) {
  const input = buildResident(overrides);
  const created = await api('POST', `${m.url}/residents`, { token, body: input });
  if (created.status !== 201) throw new Error(`resident: ${created.status} ${JSON.stringify(created.body)}`);
  for (const r of [{ doseNumber: 1, occurrenceDate: '2021-06-01' }, { doseNumber: 2, occurrenceDate: '2021-06-22' }]) {
    const res = await postRecord(m, token, created.body.addresseeNumber, r);
    if (res.status !== 201) throw new Error(`record: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return { input, addresseeNumber: created.body.addresseeNumber as string };
}

export async function moveOut(m: RunningMunicipality, token: string, addresseeNumber: string, destination: string): Promise<string> {
  const res = await api('POST', `${m.url}/residents/${addresseeNumber}/move-out`, {
    token, body: { moveOutDate: new Date().toISOString().slice(0, 10), destination, destinationAddress: '転入先 1-1' },
  });
  if (res.status !== 201) throw new Error(`move-out: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.certificate;
}

export async function moveIn(m: RunningMunicipality, token: string, certificate: string, myNumber: string, purpose?: Purpose): Promise<string> {
  const res = await api('POST', `${m.url}/move-ins`, {
    token, body: {
      certificate, myNumber, address: '転入先 1-1',
      ...(purpose ? { consent: { purpose, expiresAt: new Date(Date.now() + 30 * DAY).toISOString(), method: 'written' } } : {}),
    },
  });
  if (res.status !== 201) throw new Error(`move-in: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.resident.addresseeNumber;
}

export async function consent(m: RunningMunicipality, token: string, addresseeNumber: string, sources: string[], purpose: Purpose = 'next-dose-scheduling') {
  const res = await api('POST', `${m.url}/residents/${addresseeNumber}/consents`, {
    token, body: { purpose, sources, expiresAt: new Date(Date.now() + 30 * DAY).toISOString(), method: 'written' },
  });
  if (res.status !== 201) throw new Error(`consent: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Drains a municipality's registration outbox (codes from the issuer). */
export async function registerCodes(m: RunningMunicipality): Promise<void> {
  const token = await m.tokenFor('operator');
  for (let i = 0; i < 20; i++) {
    const res = await api('POST', `${m.url}/exchange/registrations/run`, { token });
    if (res.body.pending === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`codes of ${m.code} still pending`);
}

/** One subject asked through the staff API; the subject's outcome. */
export async function ask(m: RunningMunicipality, token: string, addresseeNumber: string, source: string, purpose: Purpose = 'next-dose-scheduling') {
  const res = await api('POST', `${m.url}/exchange/queries`, { token, body: { purpose, subjects: [{ addresseeNumber, source }] } });
  if (res.status !== 200) throw new Error(`query: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...res.body.results[0], requestId: res.body.requestId as string };
}

/* ---------- acting as the asking municipality (its real key) ---------- */

export interface CraftedSubject {
  /** The resident's addressee number at the asking municipality. */
  addresseeNumber: string;
  source: string;
  purpose?: Purpose;
  /** Replaces or adds consent terms (e.g. a resident-signed one). */
  consent?: Partial<ConsentTerms>;
  /** Extra claims of the sealed identity part (moveIn, residentCertificate). */
  sealed?: Record<string, unknown>;
}

/**
 * A query signed with the asking municipality's own key, as its service would build it but with
 * what the test chooses, sent to the real gateway. Returns the source's own signed result for the
 * subject (read from its answer) and the request id.
 */
export async function craftAndSend(fed: InProcessFederation, requester: string, s: CraftedSubject) {
  const m = fed.m(requester);
  const resident = (await m.ctx.models.Resident.findOne({ where: { addresseeNumber: s.addresseeNumber }, raw: true }))!;
  const me = fed.pki.credentials(requester);
  const jti = randomUUID();
  const rid = `test-${randomUUID()}`;
  const purpose = s.purpose ?? 'next-dose-scheduling';
  const now = Date.now();
  const sealed = await sealMessage({
    aud: s.source, jti, ref: '0', birthDate: resident.birthDate, sex: resident.sex, kana: resident.kana, ...s.sealed,
  }, me.signer, Typ.SEALED_IDENTITY, fed.pki.credentials(s.source).encryption);
  const terms = {
    id: randomUUID(), scope: CONSENT_SCOPE, purpose, sources: [s.source],
    givenAt: new Date(now - 60_000).toISOString(), expiresAt: new Date(now + 7 * DAY).toISOString(), method: 'written', ...s.consent,
  };
  const query = await signMessage({
    aud: GATEWAY_ID, jti, rid, purpose, actor: 'test-clerk',
    subjects: [{ ref: '0', sub: resident.code, source: s.source, legalBasis: 'consent', consent: terms, sealed }],
  }, me.signer, Typ.QUERY);
  const res = await fed.client(requester).postJson<{ results: { status: string; reason?: string }[]; answers: string[] }>(
    `${fed.gateway.url}/queries`, { query }, { expectPeer: GATEWAY_ID },
  );
  if (res.status !== 200) throw new Error(`gateway: ${res.status} ${JSON.stringify(res.body)}`);
  const answer = res.body.answers[0] ? (peekJwt(res.body.answers[0]).claims as unknown as AnswerClaims) : undefined;
  return { rid, gateway: res.body.results[0]!, source: answer?.results[0] };
}

/** The source's own access-log entries for one request. */
export async function answersLogged(m: RunningMunicipality, requestId: string) {
  return m.ctx.models.AccessLog.findAll({ where: { requestId, action: 'exchange.query.answer' }, raw: true });
}
