/**
 * Demo only: the My Number on a synthetic resident's card, regenerated from the deterministic
 * demo generator (the walkthrough and simulator stand in for the resident at the counter).
 *   tsx scripts/demo-my-number.ts <municipality code> <addressee number> [residents] [seed]
 */
import { generateResidents } from '../services/municipality/seed.ts';
import { DEMO_SEED } from './seed.ts';

const [code, addressee, count = '400', seed = DEMO_SEED] = process.argv.slice(2);
const found = generateResidents(code!, Number(count), seed).find((r) => r.addresseeNumber === addressee);
if (!found) {
  console.error('no such demo resident');
  process.exit(1);
}
console.log(found.myNumber);
