/**
 * Deterministic synthetic residents for demos and load tests: the same (municipality, count, seed)
 * always gives the same people, My Numbers (valid check digits, never real ones by intent),
 * addresses in that municipality, and vaccination histories that pass every record rule.
 * Dates are laid out against a fixed reference day, so a seed never produces a future dose.
 * Pure: the demo's card reader (scripts/demo-my-number.ts) makes the cards again without the
 * municipality's services; scripts/seed.ts writes the residents through them.
 */
import { completeMyNumber } from '../../shared/identifiers.ts';
import { seededRandom, type SeededRandom } from '../../shared/platform/random.ts';
import { findProduct } from './vaccinations/catalogue.ts';
import { completeAddresseeNumber, type Sex } from './residents/schemas.ts';

/** Every generated date is on or before this day. */
export const SEED_REFERENCE_DATE = '2024-12-31';

export interface GeneratedRecord {
  occurrenceDate: string;
  vaccineCode: string;
  lotNumber: string;
  doseNumber: number;
  place: string;
}

export interface GeneratedTicket {
  ticketNumber: string;
  type: 1 | 2;
  doseNumber: number;
}

export interface GeneratedResident {
  addresseeNumber: string;
  name: string;
  kana: string;
  birthDate: string;
  sex: Sex;
  address: string;
  myNumber: string;
  records: GeneratedRecord[];
  tickets: GeneratedTicket[];
}

type Rng = SeededRandom;

/* ---------- names and places ---------- */

const FAMILY: readonly [string, string][] = [
  ['佐藤', 'サトウ'], ['鈴木', 'スズキ'], ['高橋', 'タカハシ'], ['田中', 'タナカ'], ['伊藤', 'イトウ'], ['渡辺', 'ワタナベ'],
  ['山本', 'ヤマモト'], ['中村', 'ナカムラ'], ['小林', 'コバヤシ'], ['加藤', 'カトウ'], ['吉田', 'ヨシダ'], ['山田', 'ヤマダ'],
  ['佐々木', 'ササキ'], ['山口', 'ヤマグチ'], ['松本', 'マツモト'], ['井上', 'イノウエ'], ['木村', 'キムラ'], ['林', 'ハヤシ'],
  ['清水', 'シミズ'], ['森', 'モリ'], ['池田', 'イケダ'], ['橋本', 'ハシモト'], ['阿部', 'アベ'], ['石川', 'イシカワ'],
  ['前田', 'マエダ'], ['藤田', 'フジタ'], ['岡田', 'オカダ'], ['後藤', 'ゴトウ'], ['長谷川', 'ハセガワ'], ['村上', 'ムラカミ'],
];
const GIVEN_MALE: readonly [string, string][] = [
  ['太郎', 'タロウ'], ['健太', 'ケンタ'], ['翔太', 'ショウタ'], ['大輔', 'ダイスケ'], ['拓也', 'タクヤ'], ['誠', 'マコト'],
  ['浩', 'ヒロシ'], ['隆', 'タカシ'], ['蓮', 'レン'], ['悠真', 'ユウマ'], ['湊', 'ミナト'], ['陽翔', 'ハルト'],
  ['一郎', 'イチロウ'], ['茂', 'シゲル'], ['勇', 'イサム'],
];
const GIVEN_FEMALE: readonly [string, string][] = [
  ['花子', 'ハナコ'], ['陽子', 'ヨウコ'], ['美咲', 'ミサキ'], ['由美', 'ユミ'], ['恵子', 'ケイコ'], ['さくら', 'サクラ'],
  ['結衣', 'ユイ'], ['葵', 'アオイ'], ['陽菜', 'ヒナ'], ['凛', 'リン'], ['和子', 'カズコ'], ['幸子', 'サチコ'],
  ['直美', 'ナオミ'], ['真由美', 'マユミ'], ['芽依', 'メイ'],
];

interface Locality {
  prefix: string;
  areas: readonly string[];
  places: readonly string[];
  /** 番地 style of this municipality. */
  number: (r: Rng) => string;
}

const LOCALITIES: Record<string, Locality> = {
  '293610': {
    prefix: '奈良県磯城郡田原本町',
    areas: ['大字田原本', '大字八尾', '大字阪手', '大字千代', '大字宮古', '大字今里', '大字唐古', '大字法貴寺'],
    places: ['田原本町保健センター', '国保中央病院', '田原本町青垣生涯学習センター', '田原本ファミリークリニック'],
    number: (r) => `${r.int(1, 999)}番地`,
  },
  '343692': {
    prefix: '広島県山県郡安芸太田町',
    areas: ['大字加計', '大字戸河内', '大字穴', '大字坪野', '大字上殿', '大字下殿河内'],
    places: ['安芸太田病院', '加計保健センター', '戸河内診療所'],
    number: (r) => `${r.int(1, 4999)}番地`,
  },
  '112241': {
    prefix: '埼玉県戸田市',
    areas: ['上戸田一丁目', '下戸田二丁目', '本町三丁目', '新曽', '喜沢一丁目', '美女木四丁目', '笹目五丁目', '氷川町二丁目'],
    places: ['戸田市保健センター', '戸田中央総合病院', '戸田市文化会館', '下戸田こどもクリニック'],
    number: (r) => `${r.int(1, 30)}番${r.int(1, 25)}号`,
  },
};

const fallbackLocality = (code: string): Locality => ({
  prefix: `自治体${code}`, areas: ['本町', '中町', '新町'], places: ['保健センター', '町立診療所'], number: (r) => `${r.int(1, 999)}番地`,
});

/* ---------- dates ---------- */

const toDate = (d: Date) => d.toISOString().slice(0, 10);
const fromDate = (s: string) => new Date(`${s}T00:00:00Z`);
const addDays = (s: string, n: number) => toDate(new Date(fromDate(s).getTime() + n * 86_400_000));
function addMonths(s: string, n: number): string {
  const d = fromDate(s);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + n);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return toDate(d);
}
const ageOn = (birth: string, on: string) => {
  const years = Number(on.slice(0, 4)) - Number(birth.slice(0, 4));
  return on.slice(5) >= birth.slice(5) ? years : years - 1;
};

/* ---------- vaccination histories ---------- */

/** A lot number in the product's format: the catalogue example with its digits redrawn. */
function lotFor(code: string, r: Rng): string {
  const product = findProduct(code)!;
  const lot = product.lotExample.replace(/\d/g, () => String(r.int(0, 9)));
  return product.lot.test(lot) ? lot : product.lotExample;
}

function covidHistory(birth: string, r: Rng, place: () => string): GeneratedRecord[] {
  const age = ageOn(birth, '2021-06-01');
  if (age < 12) return [];
  const elderly = age >= 65;
  const weights = elderly ? [5, 1, 6, 14, 14, 16, 20, 24] : [12, 2, 18, 30, 16, 10, 7, 5];
  let roll = r.int(1, weights.reduce((a, b) => a + b, 0));
  let doses = 0;
  while (roll > weights[doses]!) roll -= weights[doses++]!;
  const first = r.chance(0.8) ? 'covid19-comirnaty' : 'covid19-spikevax';
  const d1 = addDays(elderly ? '2021-05-01' : '2021-06-15', r.int(0, 60));
  const windows = ['2022-01-15', '2022-07-01', '2022-11-01', '2023-06-01', '2023-10-01', '2024-10-15'];
  const dates = [d1, addDays(d1, first === 'covid19-comirnaty' ? 21 : 28), ...windows.map((w) => addDays(w, r.int(0, 55)))];
  const later = ['covid19-comirnaty', 'covid19-comirnaty', 'covid19-spikevax', 'covid19-nuvaxovid'];
  const latest = ['covid19-comirnaty-xbb', 'covid19-comirnaty-xbb', 'covid19-spikevax', 'covid19-daichirona', 'covid19-kostaive'];
  const out: GeneratedRecord[] = [];
  for (let n = 1; n <= doses; n++) {
    const code = n <= 2 ? first : n <= 5 ? r.pick(later) : r.pick(latest);
    out.push({ occurrenceDate: dates[n - 1]!, vaccineCode: code, lotNumber: lotFor(code, r), doseNumber: n, place: place() });
  }
  return out;
}

/** Routine infant vaccines on the Japanese schedule (months after birth), each series stopping at a first missed dose. */
const INFANT_SCHEDULE: readonly { code: (birth: string) => string; months: number[] }[] = [
  { code: () => 'rota-rotarix', months: [2, 3] },
  { code: () => 'hib', months: [2, 3, 4, 13] },
  { code: (b) => (b < '2023-10-01' ? 'pcv13' : 'pcv15'), months: [2, 3, 4, 13] },
  { code: () => 'hepb', months: [2, 3, 8] },
  { code: () => 'dpt-ipv', months: [3, 4, 5, 18] },
  { code: () => 'bcg', months: [6] },
  { code: () => 'mr', months: [13, 72] },
  { code: () => 'varicella', months: [13, 19] },
  { code: () => 'je', months: [36, 37, 48] },
];

function routineHistory(birth: string, sex: Sex, r: Rng, place: () => string): GeneratedRecord[] {
  const out: GeneratedRecord[] = [];
  const push = (code: string, doseNumber: number, date: string) => {
    if (date <= SEED_REFERENCE_DATE) out.push({ occurrenceDate: date, vaccineCode: code, lotNumber: lotFor(code, r), doseNumber, place: place() });
  };
  if (birth >= '2016-01-01') {
    for (const series of INFANT_SCHEDULE) {
      const code = series.code(birth);
      for (const [i, months] of series.months.entries()) {
        if (!r.chance(0.93)) break;
        push(code, i + 1, addDays(addMonths(birth, months), r.int(0, 14)));
      }
    }
  }
  if (sex === 'female' && birth >= '2006-04-02' && birth <= '2012-04-01' && r.chance(0.5)) {
    const d1 = addDays(addMonths(birth, 156), r.int(0, 90));
    push('hpv9', 1, d1);
    if (r.chance(0.9)) push('hpv9', 2, addMonths(d1, 2));
    if (r.chance(0.8)) push('hpv9', 3, addMonths(d1, 6));
  }
  for (const season of [2021, 2022, 2023, 2024]) {
    if (ageOn(birth, `${season}-10-01`) >= 65 && r.chance(0.6)) push('influenza-elderly', 1, addDays(`${season}-10-15`, r.int(0, 55)));
  }
  const turned65 = addMonths(birth, 65 * 12);
  if (turned65 >= '2014-10-01' && r.chance(0.4)) push('ppsv23', 1, addDays(turned65, r.int(0, 200)));
  return out;
}

/* ---------- residents ---------- */

function birthDate(r: Rng): string {
  const band = r.next();
  const [from, to] = band < 0.1 ? ['2019-01-01', '2024-10-31'] : band < 0.2 ? ['2005-01-01', '2013-12-31'] : band < 0.7 ? ['1960-01-01', '2004-12-31'] : ['1930-01-01', '1959-12-31'];
  const span = (fromDate(to).getTime() - fromDate(from).getTime()) / 86_400_000;
  return addDays(from, r.int(0, span));
}

/**
 * Generates `count` residents of `municipalityCode`, deterministically from `seed`.
 * Addressee numbers, My Numbers and ticket numbers are unique within one generation.
 */
export function generateResidents(municipalityCode: string, count: number, seed: number | string): GeneratedResident[] {
  const r = seededRandom(`${municipalityCode}:${seed}`);
  const locality = LOCALITIES[municipalityCode] ?? fallbackLocality(municipalityCode);
  const used = { addressee: new Set<string>(), myNumber: new Set<string>(), ticket: new Set<string>() };
  const unique = (set: Set<string>, make: () => string) => {
    for (;;) {
      const v = make();
      if (!set.has(v)) {
        set.add(v);
        return v;
      }
    }
  };
  const place = () => r.pick(locality.places);
  const residents: GeneratedResident[] = [];
  for (let i = 0; i < count; i++) {
    const roll = r.next();
    const sex: Sex = roll < 0.49 ? 'male' : roll < 0.98 ? 'female' : roll < 0.99 ? 'other' : 'unknown';
    const [family, familyKana] = r.pick(FAMILY);
    const [given, givenKana] = r.pick(sex === 'male' || (sex !== 'female' && r.chance(0.5)) ? GIVEN_MALE : GIVEN_FEMALE);
    const birth = birthDate(r);
    const records = [...covidHistory(birth, r, place), ...routineHistory(birth, sex, r, place)]
      .sort((a, b) => a.occurrenceDate.localeCompare(b.occurrenceDate));
    const covidDoses = records.filter((x) => x.vaccineCode.startsWith('covid19-')).length;
    const tickets: GeneratedTicket[] = [];
    if (ageOn(birth, SEED_REFERENCE_DATE) >= 12 && covidDoses < 8 && r.chance(0.25)) {
      tickets.push({ ticketNumber: unique(used.ticket, () => String(r.int(1, 9)) + r.digits(9)), type: 1, doseNumber: covidDoses + 1 });
    }
    residents.push({
      addresseeNumber: unique(used.addressee, () => completeAddresseeNumber(String(r.int(1, 9)) + r.digits(8))),
      name: `${family} ${given}`,
      kana: `${familyKana}\u3000${givenKana}`,
      birthDate: birth,
      sex,
      address: `${locality.prefix}${r.pick(locality.areas)}${locality.number(r)}`,
      myNumber: unique(used.myNumber, () => completeMyNumber(String(r.int(1, 9)) + r.digits(10))),
      records,
      tickets,
    });
  }
  return residents;
}
