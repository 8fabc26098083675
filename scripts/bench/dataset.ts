/**
 * The benchmark's synthetic population, the same for both designs: N municipalities and S
 * residents who moved from one municipality (the source, which holds their records) to another
 * (the receiver, where they now live and consented to the fetch). People, My Numbers and records
 * come from the project's own deterministic generator, so every record passes the record rules.
 */
import { completeMunicipalityCode } from '../../shared/identifiers.ts';
import { completeAddresseeNumber } from '../../services/municipality/residents/schemas.ts';
import { generateResidents, type GeneratedResident } from '../../services/municipality/seed.ts';

export interface BenchMunicipality {
  code: string;
  name: string;
}

export interface Transfer {
  /** Position in the data set; also the order the workloads use. */
  index: number;
  source: string;
  receiver: string;
  /** The person as the source holds them (addressee number there, My Number, records). */
  person: GeneratedResident;
  /** The person's addressee number at the receiver. */
  receiverAddressee: string;
  receiverAddress: string;
}

export interface Dataset {
  municipalities: BenchMunicipality[];
  transfers: Transfer[];
}

export const BENCH_SEED = 'hikitsugi-bench';

/**
 * N distinct municipality codes with valid check digits, shaped like real ones: a prefecture
 * number 01–47 and a three-digit local part (enough for 47 × 900 members).
 */
export function benchMunicipalities(n: number): BenchMunicipality[] {
  if (n < 2) throw new Error('a federation needs at least 2 municipalities');
  if (n > 47 * 900) throw new Error('at most 42,300 municipalities');
  return Array.from({ length: n }, (_, i) => {
    const prefecture = String(1 + (i % 47)).padStart(2, '0');
    const local = String(100 + Math.floor(i / 47)).padStart(3, '0');
    const code = completeMunicipalityCode(prefecture + local);
    return { code, name: `Municipality ${code}` };
  });
}

/** A small seeded generator (the dataset must be the same on every run). */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Spreads `subjects` transfers over every (source, receiver) pair: subject i comes from
 * source i mod N and goes to a receiver that cycles through all the others, so every receiver
 * asks every source and every source answers every receiver.
 */
export function buildDataset(n: number, subjects: number, seed = BENCH_SEED): Dataset {
  const municipalities = benchMunicipalities(n);
  const codes = municipalities.map((m) => m.code);
  const perSource = new Map<string, number>();
  const pairs: { source: string; receiver: string }[] = [];
  for (let i = 0; i < subjects; i++) {
    const s = i % n;
    const r = (s + 1 + (Math.floor(i / n) % (n - 1))) % n;
    pairs.push({ source: codes[s]!, receiver: codes[r]! });
    perSource.set(codes[s]!, (perSource.get(codes[s]!) ?? 0) + 1);
  }
  // People are generated per source; the generator keeps addressee numbers unique per municipality.
  const people = new Map<string, GeneratedResident[]>();
  for (const [code, count] of perSource) people.set(code, generateResidents(code, count, seed));
  const usedAddressees = new Map<string, Set<string>>(codes.map((c) => [c, new Set(people.get(c)?.map((p) => p.addresseeNumber) ?? [])]));
  const usedMyNumbers = new Set<string>();
  const next = prng(subjects * 7919 + n);
  const taken = new Map<string, number>();
  const transfers: Transfer[] = [];
  for (const [index, pair] of pairs.entries()) {
    const k = taken.get(pair.source) ?? 0;
    taken.set(pair.source, k + 1);
    const person = people.get(pair.source)![k]!;
    // Two sources' generators could in principle draw one My Number; a person exists once.
    if (usedMyNumbers.has(person.myNumber)) continue;
    usedMyNumbers.add(person.myNumber);
    const used = usedAddressees.get(pair.receiver)!;
    let receiverAddressee: string;
    do {
      receiverAddressee = completeAddresseeNumber(String(1 + Math.floor(next() * 9)) + String(Math.floor(next() * 1e8)).padStart(8, '0'));
    } while (used.has(receiverAddressee));
    used.add(receiverAddressee);
    transfers.push({
      index, ...pair, person, receiverAddressee,
      receiverAddress: `自治体${pair.receiver}本町${1 + Math.floor(next() * 999)}番地`,
    });
  }
  return { municipalities, transfers };
}

/** Transfers grouped by the municipality that asks for them. */
export function byReceiver(transfers: Transfer[]): Map<string, Transfer[]> {
  const out = new Map<string, Transfer[]>();
  for (const t of transfers) {
    const list = out.get(t.receiver) ?? [];
    list.push(t);
    out.set(t.receiver, list);
  }
  return out;
}
