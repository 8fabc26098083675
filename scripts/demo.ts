/**
 * What names the demo federation `npm start` runs: its municipalities, the seed its synthetic
 * residents are generated from, the demo accounts' password and where the launcher publishes its
 * control endpoint. Kept apart from the launcher and the seeding, so the demo's card reader
 * (scripts/demo-my-number.ts), run several times by every walkthrough, and the simulator load only
 * this and what they use themselves.
 */
import { join, resolve } from 'node:path';

/** The launcher's MunicipalitySpec (scripts/federation.ts), by shape: this module imports nothing of the project. */
export const DEMO_MUNICIPALITIES: { code: string; name: string; port: number; federationPort: number }[] = [
  { code: '293610', name: 'Tawaramoto', port: 3001, federationPort: 9001 },
  { code: '343692', name: 'Akiota', port: 3002, federationPort: 9002 },
  { code: '112241', name: 'Toda', port: 3003, federationPort: 9003 },
];

export const DEMO_SEED = 'hikitsugi-demo';

/** Demo accounts only: printed by `npm start`, never used outside a local federation. */
export const DEMO_PASSWORD = 'hikitsugi-demo-2026';

/** Where a running launcher publishes its control endpoint: <dataDir>/control.json (mode 0600). */
export const controlFile = (dataDir: string): string => join(resolve(dataDir), 'control.json');
