// ESLint 9 flat config, run by `npm test` (`npm run lint`). TypeScript is linted with type
// information (typescript-eslint's project service reads tsconfig.json): a promise nobody awaits
// or handles is an error, and type-only imports are written as such (verbatimModuleSyntax).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.cache/', 'data/', '.tmp/'] },
  js.configs.recommended,
  {
    rules: {
      // Input schemas refuse control characters by naming them in a character class.
      'no-control-regex': 'off',
      'no-useless-escape': 'off',
      // Comments quote Japanese input as residents type it, ideographic spaces included.
      'no-irregular-whitespace': ['error', { skipComments: true }],
    },
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // Deliberately unused names start with `_` (a destructured field left out of a response).
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true,
      }],
      // Each folder adds its tables to the context's models by augmenting an interface (`extends …{}`).
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      // Untyped JSON (staff API answers in tests and scripts, a peer's body before its schema) is `any` on purpose.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    languageOptions: { globals: globals.mocha },
  },
  {
    // The privacy officer's console runs in the browser, as a classic script.
    files: ['shared/access-log/console/*.js'],
    languageOptions: { globals: globals.browser, sourceType: 'script' },
  },
  {
    // The resident's page runs in the browser as a module script.
    files: ['services/municipality/resident-page/page/*.js'],
    languageOptions: { globals: globals.browser, sourceType: 'module' },
  },
  {
    files: ['eslint.config.js', '.dependency-cruiser.cjs'],
    languageOptions: { globals: globals.node },
  },
);
