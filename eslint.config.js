// Lint: TypeScript recommended rules plus the layer rules that keep code where it may run.
//   renderer/**    browser code: no main/, no Node built-ins, no Electron, no native modules.
//   main/**        no renderer/ (what both sides need lives in preload/).
//   main/engine/** plain Node: no Electron, no database, no API/transport layers (runs in the engine process).
//   preload/contract.ts, recipe.ts, methods.ts, wire.ts: shared by all sides, zod only.
// Import cycles are found by tests/unit/smoke/import-cycles.test.ts, which walks the import graph.
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.filter((m) => !m.startsWith('_'));
const nativeModules = ['better-sqlite3', 'onnxruntime-node', 'ws', 'cmake-js'];

const mainNoRenderer = { group: ['**/renderer/**', '../renderer', '../../renderer'], message: 'main/ may not import the renderer: what both sides need lives in preload/.' };

export const layerRules = {
  renderer: {
    paths: [...nodeBuiltins, 'electron', ...nativeModules].map((name) => ({
      name, message: 'renderer code runs in a sandboxed browser: no Node, Electron or native modules.',
    })),
    patterns: [
      { group: ['node:*'], message: 'renderer code runs in a sandboxed browser: no Node built-ins.' },
      { group: ['**/main/**', '../main', '../../main'], message: 'renderer may only import types from preload/contract.ts.' },
      { group: ['**/native-kernels/**'], message: 'renderer may not load native code.' },
    ],
  },
  main: {
    patterns: [mainNoRenderer],
  },
  engine: {
    paths: ['electron', 'better-sqlite3'].map((name) => ({
      name, message: 'engine modules are plain Node: no Electron, no database (the main process owns the history).',
    })),
    patterns: [
      { group: ['**/history/**', '**/api/**', '**/electron/**', '**/server/**', '**/jobs/**'], message: 'engine modules may not depend on the app layers above them.' },
      mainNoRenderer,
    ],
  },
  shared: {
    patterns: [{ group: ['**/main/**', 'node:*', 'electron'], message: 'the contract is shared by every side: zod only.' }],
  },
};

export default tseslint.config(
  { ignores: ['out/**', 'node_modules/**', '.tools/**', 'native-kernels/build/**', 'test-results/**', 'playwright-report/**', 'bench-results/**', '.team/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  // Type-aware rules: a promise is awaited, handled or deliberately voided; never handed to a caller that ignores it.
  {
    files: ['main/**/*.ts', 'preload/**/*.ts', 'renderer/**/*.{ts,tsx}', 'tests/**/*.ts', 'scripts/**/*.ts'],
    languageOptions: { parserOptions: { project: ['./tsconfig.node.json', './tsconfig.web.json'], tsconfigRootDir: import.meta.dirname } },
    rules: { '@typescript-eslint/no-floating-promises': 'error', '@typescript-eslint/no-misused-promises': 'error' },
  },
  { files: ['renderer/**/*.{ts,tsx}'], rules: { 'no-restricted-imports': ['error', layerRules.renderer] } },
  { files: ['main/**/*.ts'], rules: { 'no-restricted-imports': ['error', layerRules.main] } },
  { files: ['main/engine/**/*.ts'], rules: { 'no-restricted-imports': ['error', layerRules.engine] } },
  { files: ['preload/contract.ts', 'preload/recipe.ts', 'preload/methods.ts', 'preload/wire.ts'], rules: { 'no-restricted-imports': ['error', layerRules.shared] } },
  { files: ['scripts/**/*.mjs', 'bin/**/*.js', 'eslint.config.js'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  // The main process (services, jobs, server, history, desktop shell) never blocks on the disk: no
  // synchronous file calls. The CLI and the engine process may stay synchronous where they serve no one.
  // Left out: opening SQLite (synchronous by nature, once at start) and the job-folder clean-up, which
  // runs at start and must be done before a failed job reports that it finished.
  {
    files: ['main/api/**/*.ts', 'main/jobs/**/*.ts', 'main/server/**/*.ts', 'main/history/**/*.ts', 'main/electron/**/*.ts', 'main/app.ts'],
    ignores: ['main/history/open.ts', 'main/jobs/output-folder.ts'],
    rules: {
      'no-restricted-syntax': ['error',
        {
          selector: "ImportDeclaration[source.value=/^(node:)?fs$/] > ImportSpecifier[imported.name=/Sync$/]",
          message: 'The main process does no synchronous file I/O: use node:fs/promises (or move the work to a worker or the engine process).',
        },
        {
          selector: "CallExpression[callee.type='MemberExpression'][callee.property.name=/Sync$/][callee.object.name=/^(fs|nodeFs)$/]",
          message: 'The main process does no synchronous file I/O: use node:fs/promises (or move the work to a worker or the engine process).',
        },
      ],
    },
  },
);
