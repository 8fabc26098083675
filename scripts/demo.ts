/**
 * What names the demo federation `npm start` runs: its municipalities and the seed its synthetic
 * residents are generated from. Kept apart from the launcher and the seeding, so the demo's card
 * reader (scripts/demo-my-number.ts), run several times by every walkthrough, loads only this and
 * the generator.
 */
/** The launcher's MunicipalitySpec (scripts/federation.ts), by shape: this module imports nothing. */
export const DEMO_MUNICIPALITIES: { code: string; name: string; port: number; federationPort: number }[] = [
  { code: '293610', name: 'Tawaramoto', port: 3001, federationPort: 9001 },
  { code: '343692', name: 'Akiota', port: 3002, federationPort: 9002 },
  { code: '112241', name: 'Toda', port: 3003, federationPort: 9003 },
];

export const DEMO_SEED = 'hikitsugi-demo';
