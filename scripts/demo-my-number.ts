/**
 * Demo only: the My Number on a synthetic resident's card. The walkthrough and the simulator stand
 * in for the resident at the counter, so they need the card; the demo generator is deterministic,
 * so the cards of every seeded resident of the demo municipalities can be made again.
 *
 * A card is found by the person (name, kana, birth date, sex), not by an addressee number: a
 * resident who moved in (by the walkthrough or `npm run simulate`) has a new addressee number at
 * the new municipality, but still the card they were seeded with. A resident registered by hand
 * with a mistyped birth date has no card here (nor would the counter accept one).
 *
 *   tsx scripts/demo-my-number.ts [--residents 400] [--seed …] < resident.json
 *       the My Number on the card of the resident (a staff view, GET /residents/:a) on stdin;
 *       exit 1 "no such demo resident" when no card matches
 *   tsx scripts/demo-my-number.ts --known [--residents 400] [--seed …] < page.json
 *       the addressee numbers, one a line, of the residents in a page (GET /residents) whose
 *       card is known; never a My Number
 *
 * It writes a My Number only into a pipe (a script's variable), never onto a terminal.
 */
import { generateResidents } from '../services/municipality/seed.ts';
import { DEMO_MUNICIPALITIES, DEMO_SEED } from './demo.ts';
import { isMainModule } from '../shared/platform/main-module.ts';

export interface Person {
  name: string;
  kana: string;
  birthDate: string;
  sex: string;
}

/** One key per person: a card is recognised by what is printed on it. */
export const cardKey = (p: Person): string => `${p.name}|${p.kana}|${p.birthDate}|${p.sex}`;

/**
 * Every seeded card of the given municipalities, by person. A person generated twice (the same
 * name, kana, birth date and sex in two places) maps to null: such a card cannot be told apart.
 */
export function demoCards(codes: readonly string[], residents: number, seed: string = DEMO_SEED): Map<string, string | null> {
  const cards = new Map<string, string | null>();
  for (const code of codes) {
    for (const g of generateResidents(code, residents, seed)) cards.set(cardKey(g), cards.has(cardKey(g)) ? null : g.myNumber);
  }
  return cards;
}

/** The card of a resident, or undefined when none (or more than one) matches. */
export const cardOf = (cards: Map<string, string | null>, p: Person): string | undefined => cards.get(cardKey(p)) ?? undefined;

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text;
}

if (isMainModule(import.meta.url)) {
  const args = process.argv.slice(2);
  const option = (name: string, fallback: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
  };
  const residents = Number(option('--residents', process.env.RESIDENTS ?? '400'));
  const seed = option('--seed', DEMO_SEED);
  if (!(Number.isInteger(residents) && residents > 0)) {
    console.error('--residents must be a positive whole number');
    process.exit(2);
  }
  const cards = demoCards(DEMO_MUNICIPALITIES.map((m) => m.code), residents, seed);
  const input = JSON.parse(await readStdin()) as Person & { items?: (Person & { addresseeNumber: string })[] };
  if (args.includes('--known')) {
    for (const r of input.items ?? []) if (cardOf(cards, r)) console.log(r.addresseeNumber);
    process.exit(0);
  }
  if (process.stdout.isTTY) {
    console.error('refusing to print a My Number on a terminal; read it into a variable: MY_NUMBER=$(… | tsx scripts/demo-my-number.ts)');
    process.exit(2);
  }
  const myNumber = cardOf(cards, input);
  if (!myNumber) {
    console.error('no such demo resident');
    process.exit(1);
  }
  console.log(myNumber);
}
