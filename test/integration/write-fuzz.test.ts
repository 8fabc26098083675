/**
 * Property test: random bodies, headers and path parameters thrown at every write endpoint of the
 * residents and vaccinations capabilities. Only 2xx or 4xx may come back, never 5xx, and a
 * refusal must leave every table (access log included) exactly as it was. Bodies range from
 * valid ones (to reach the deep rules) through valid-but-one-field-mutated to arbitrary JSON
 * and broken JSON text.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { allProducts } from '../../services/municipality/vaccinations/catalogue.ts';
import { startMunicipality, removeDir, DEMO_MUNICIPALITIES, type RunningMunicipality } from '../fixtures/municipality.ts';
import { api } from '../fixtures/http.ts';
import { buildResident, createResidentVia, newKey, postRecord, rowCounts } from '../fixtures/factories.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 50);

type BodyCase =
  | { kind: 'valid'; seed: number }
  | { kind: 'mutated'; seed: number; pick: number; value: unknown; drop: boolean; extra: boolean }
  | { kind: 'json'; json: unknown }
  | { kind: 'raw'; raw: string };

const bodyCase: fc.Arbitrary<BodyCase> = fc.oneof(
  { weight: 2, arbitrary: fc.nat().map((seed) => ({ kind: 'valid' as const, seed })) },
  {
    weight: 5,
    arbitrary: fc.record({ seed: fc.nat(), pick: fc.nat(), value: fc.jsonValue(), drop: fc.boolean(), extra: fc.boolean() })
      .map((c) => ({ kind: 'mutated' as const, ...c })),
  },
  { weight: 2, arbitrary: fc.jsonValue().map((json) => ({ kind: 'json' as const, json })) },
  { weight: 1, arbitrary: fc.string().map((raw) => ({ kind: 'raw' as const, raw })) },
);

/** The key header: a fresh valid key, none, or any printable text. */
const keyCase = fc.oneof({ weight: 4, arbitrary: fc.constant('fresh') }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.string({ maxLength: 200 }) });
/** A path parameter: usually the live one, sometimes anything. */
const paramCase = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) });

describe('write endpoints under random input (property)', function () {
  this.timeout(300_000);
  let m: RunningMunicipality;
  let clerk: string;
  let addressee: string;
  let recordId: string;
  let ocrLine: string;
  const reviews: string[] = [];
  const tally = { cases: 0, success: 0, refused: 0 };
  let keyCounter = 0;
  const products = allProducts();

  before(async () => {
    m = await startMunicipality(DEMO_MUNICIPALITIES.toda);
    clerk = await m.tokenFor('clerk');
    addressee = (await createResidentVia(m, clerk, { birthDate: '1960-01-01' })).resident.addresseeNumber;
    recordId = (await postRecord(m, clerk, addressee)).body.recordId;
    ocrLine = (await api('POST', `${m.url}/residents/${addressee}/tickets`, { token: clerk, body: { type: 1, doseNumber: 2 } })).body.ocrLine;
    for (let i = 0; i < 2; i++) {
      const queued = await api('POST', `${m.url}/vaccinations/from-ticket`, {
        token: clerk, headers: { 'idempotency-key': newKey() },
        body: { ocrLine, birthDate: '1960-01-02', occurrenceDate: '2021-07-01', vaccineCode: 'covid19-comirnaty', lotNumber: 'FF3620', place: '会場' },
      });
      reviews.push(queued.body.review.id);
    }
  });
  after(async () => {
    console.log(`      write fuzz: ${tally.cases} cases, ${tally.success} accepted, ${tally.refused} refused, 0 server errors`);
    await m.stop();
    removeDir(m.dir);
  });

  const day = (seed: number) => new Date(Date.UTC(1960, 0, 2) + (seed % 23_000) * 86_400_000).toISOString().slice(0, 10);

  /** Valid bodies, varied by a seed (each endpoint's rules may still refuse some: that is a 4xx too). */
  const valid: Record<string, (seed: number) => Record<string, unknown>> = {
    resident: () => buildResident({ name: '戸田 次郎', kana: 'トダ ジロウ' }),
    residentPatch: (s) => ({ address: `埼玉県戸田市本町 ${s % 1000}番`, reason: '転居届' }),
    record: (s) => {
      const p = products[s % products.length]!;
      return { occurrenceDate: day(s), vaccineCode: p.code, lotNumber: p.lotExample, doseNumber: 1 + (s % p.maxDoses), place: '戸田市保健センター' };
    },
    correction: (s) => ({ lotNumber: `FF${String(s % 10_000).padStart(4, '0')}`, reason: '転記誤りの訂正' }),
    void: () => ({ reason: '別人への登録' }),
    ticket: (s) => ({ type: 1 + (s % 2), doseNumber: 1 + (s % 9) }),
    fromTicket: (s) => ({ ocrLine, birthDate: s % 2 ? '1960-01-01' : '1960-01-03', occurrenceDate: day(s), vaccineCode: 'covid19-comirnaty', lotNumber: 'FF3620', place: '会場' }),
    approve: (s) => ({ addresseeNumber: addressee, reason: '本人確認済み', doseNumber: 1 + (s % 8) }),
    reject: () => ({ reason: '読取り誤り' }),
  };

  function bodyOf(kind: keyof typeof valid, c: BodyCase): { json?: unknown; raw?: string } {
    if (c.kind === 'json') return { json: c.json };
    if (c.kind === 'raw') return { raw: c.raw };
    const body = valid[kind]!(c.seed);
    if (c.kind === 'mutated') {
      const keys = Object.keys(body);
      const k = keys[c.pick % keys.length]!;
      if (c.drop) delete body[k];
      else body[k] = c.value;
      if (c.extra) body.unexpected = c.value;
    }
    return { json: body };
  }

  const at = (p: string | undefined, live: () => string) => (p === undefined ? live() : encodeURIComponent(p));
  const endpoints: { name: string; method: string; kind: keyof typeof valid; path: (p: string | undefined) => string }[] = [
    { name: 'POST /residents', method: 'POST', kind: 'resident', path: () => '/residents' },
    { name: 'PATCH /residents/:a', method: 'PATCH', kind: 'residentPatch', path: (p) => `/residents/${at(p, () => addressee)}` },
    { name: 'POST …/vaccinations', method: 'POST', kind: 'record', path: (p) => `/residents/${at(p, () => addressee)}/vaccinations` },
    { name: 'POST …/tickets', method: 'POST', kind: 'ticket', path: (p) => `/residents/${at(p, () => addressee)}/tickets` },
    { name: 'POST /vaccinations/from-ticket', method: 'POST', kind: 'fromTicket', path: () => '/vaccinations/from-ticket' },
    { name: 'POST …/corrections', method: 'POST', kind: 'correction', path: (p) => `/residents/${addressee}/vaccinations/${at(p, () => recordId)}/corrections` },
    { name: 'POST …/void', method: 'POST', kind: 'void', path: (p) => `/residents/${addressee}/vaccinations/${at(p, () => recordId)}/void` },
    { name: 'POST /ticket-reviews/:id/approve', method: 'POST', kind: 'approve', path: (p) => `/ticket-reviews/${at(p, () => reviews[0]!)}/approve` },
    { name: 'POST /ticket-reviews/:id/reject', method: 'POST', kind: 'reject', path: (p) => `/ticket-reviews/${at(p, () => reviews[1]!)}/reject` },
  ];

  for (const endpoint of endpoints) {
    it(`when random input reaches ${endpoint.name}, then only 2xx or 4xx come back and a refusal changes no row`, async () => {
      const seen = { cases: 0, success: 0 };
      await fc.assert(fc.asyncProperty(bodyCase, keyCase, paramCase, async (c, rawKey, p) => {
        seen.cases += 1;
        const headers: Record<string, string> = {};
        if (rawKey === 'fresh') headers['idempotency-key'] = `fuzz-${process.pid}-${++keyCounter}`;
        else if (rawKey !== undefined) headers['idempotency-key'] = rawKey.replace(/[^\t\x20-\x7e]/g, '');
        const { json, raw } = bodyOf(endpoint.kind, c);
        const before = await rowCounts(m);
        const res = raw !== undefined
          ? await api(endpoint.method, `${m.url}${endpoint.path(p)}`, { token: clerk, raw, headers: { ...headers, 'content-type': 'application/json' } })
          : await api(endpoint.method, `${m.url}${endpoint.path(p)}`, { token: clerk, body: json, headers });
        expect(res.status, JSON.stringify(res.body)).to.be.within(200, 499);
        if (res.status >= 400) {
          expect(res.headers.get('content-type'), `${res.status}`).to.match(/application\/problem\+json/);
          expect(await rowCounts(m), `${res.status} ${JSON.stringify(res.body)}`).to.deep.equal(before);
          tally.refused += 1;
        } else {
          seen.success += 1;
          tally.success += 1;
        }
      }), { numRuns: RUNS });
      tally.cases += seen.cases;
      console.log(`      ${endpoint.name}: ${seen.cases} cases, ${seen.success} accepted`);
    });
  }
});
