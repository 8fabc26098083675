// The dependency rule (docs/DESIGN.md §8 "Layout"), checked by `npm test` (`npm run deps`):
//
// 1. No member imports another member's code: services/municipality, services/issuer and gateway
//    each import only themselves and shared/; shared/ imports no member. scripts/ and test/ may
//    import anything, and nothing imports them.
// 2. Inside each member and inside shared/, folders form layers, bottom to top: a layer imports
//    only the layers below it (and itself). A member's root files are each a layer of their own
//    (config and context at the bottom, the assembly at the top). A strict order also means no
//    two folders import each other, directly or round about.
// 3. No circular imports between modules anywhere.
//
// Every folder and root file of a layered tree must be in its layer list: a new folder takes its
// place in the order when it is added (rule `not-in-a-layer`).

/** Bottom → top. Each layer lists folders (`name/`) or root files (`name.ts`) that sit at the same height. */
const LAYERS = {
  shared: [
    ['identifiers.ts'],
    ['platform/'],
    ['crypto.ts'],
    ['federation/'],
    ['staff/'],
    ['access-log/'],
    ['consent-policy.ts'],
    ['migrations/'],
  ],
  'services/municipality': [
    ['config.ts', 'migrations/'],
    ['context.ts'],
    ['staff/'],
    ['federation/'],
    ['access-log/'],
    ['idempotency/'],
    ['residents/'],
    ['alerts/'],
    ['vaccinations/'],
    ['fhir/'],
    // The vaccination certificate (SMART Health Card): reads residents and records, signs, logs.
    ['certificates/'],
    ['consents/'],
    ['notices/'],
    ['codes/'],
    ['exceptions/'],
    ['disclosure/'],
    ['moves/'],
    ['answering/'],
    ['corrections/'],
    ['asking/'],
    // A resident's trail across the federation (docs/PROTOCOL.md §3.11): asked for at B, answered at A.
    ['trail/'],
    // The resident's own page (docs/DESIGN.md §4.14): the resident reads and revokes through the flows below.
    ['resident-page/'],
    // Retention by the national rule (docs/DESIGN.md §4.13): removes rows of every flow below it, each through its own model.
    ['retention/'],
    ['health/'],
    // The OpenAPI documents describe every flow's routes; only the assembly serves them.
    ['openapi.ts'],
    ['models.ts', 'federation-app.ts', 'seed.ts', 'app.ts', 'main.ts', 'host.ts'],
  ],
  gateway: [
    ['config.ts', 'migrations/'],
    ['context.ts'],
    ['access-log/'],
    ['directory/'],
    ['codes/'],
    ['alerts/'],
    ['notifications/'],
    // Consent revocations (docs/DESIGN.md §4.4): recorded and relayed here, read by routing.
    ['consent-revocations/'],
    ['routing/'],
    // A resident's trail request (docs/PROTOCOL.md §3.11): routed like a query subject, with routing's replay cache.
    ['trail/'],
    ['openapi.ts'],
    ['models.ts', 'app.ts', 'main.ts'],
  ],
  'services/issuer': [
    ['config.ts', 'actions.ts', 'schemas.ts', 'migrations/'],
    ['context.ts'],
    ['service.ts'],
    ['routes.ts'],
    ['openapi.ts'],
    ['app.ts'],
    ['main.ts'],
  ],
};

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** A path regex for the entries of one layer (a folder matches everything under it). */
const entries = (root, names) => `^${escape(root)}/(${names.map((n) => (n.endsWith('/') ? escape(n) : `${escape(n)}$`)).join('|')})`;

const layerRules = Object.entries(LAYERS).flatMap(([root, layers]) => layers.slice(0, -1).map((layer, i) => ({
  name: 'no-upward-import',
  severity: 'error',
  comment: `${root}: ${layer.join(', ')} may import only the layers below it; ${layers.slice(i + 1).flat().join(', ')} sit above`,
  from: { path: entries(root, layer) },
  to: { path: entries(root, layers.slice(i + 1).flat()) },
})));

const unlayered = Object.entries(LAYERS).map(([root, layers]) => ({
  name: 'not-in-a-layer',
  severity: 'error',
  comment: `every folder and root file of ${root} takes a place in the layer order (.dependency-cruiser.cjs LAYERS)`,
  from: { path: `^${escape(root)}/`, pathNot: entries(root, layers.flat()) },
  to: {},
}));

const MEMBERS = ['services/municipality', 'services/issuer', 'gateway'];

module.exports = {
  forbidden: [
    ...MEMBERS.map((member) => ({
      name: 'no-cross-member-import',
      severity: 'error',
      comment: `${member} imports only its own code and shared/ (a member is its own service)`,
      from: { path: `^${escape(member)}/` },
      to: { path: `^(services|gateway|scripts|test)/`, pathNot: `^${escape(member)}/` },
    })),
    {
      name: 'no-member-in-shared',
      severity: 'error',
      comment: 'shared/ is below every member: it imports none of them, nor scripts/ or test/',
      from: { path: '^shared/' },
      to: { path: '^(services|gateway|scripts|test)/' },
    },
    ...layerRules,
    ...unlayered,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'modules that import each other, directly or round about',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|\\.cache|data)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count: a type from a layer above is still an upward dependency.
    moduleSystems: ['es6'],
  },
};
