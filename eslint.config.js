// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importPlugin from 'eslint-plugin-import';
import prettier from 'eslint-config-prettier';
import { builtinModules } from 'node:module';

// Workflow code runs in Temporal's deterministic sandbox: anything that touches the host
// (Node built-ins, processes, sockets, archives) must stay in activities.
const forbiddenInWorkflows = [
  ...builtinModules,
  ...builtinModules.map((m) => `node:${m}`),
  'execa',
  'archiver',
  'kafkajs',
  'yauzl',
  'hono',
  '@hono/node-server',
  '@temporalio/worker',
  '@temporalio/client',
  '@temporalio/activity',
];

// The layers (docs/design.md, "Layers"): an import may point down or sideways, never up.
const nodeSide = [
  'src/config/**',
  'src/middleware/**',
  'src/archive/**',
  'src/events/**',
  'src/bundles/**',
  'src/agent/**',
  'src/observability/**',
  'src/@(logger|auth|process).ts',
];
const processes = [
  'worker/**',
  'bench/**',
  'scripts/**',
  'test/**',
  'src/cli/**',
  'src/dev/**',
  'src/production/**',
  'src/temporal/**',
];
const layer = (target, from, name) => ({
  target,
  from,
  message: `${name} must not import this (docs/design.md, "Layers")`,
});
export const layerZones = [
  layer(
    'src/contracts/**',
    ['src/!(contracts)/**', 'src/*.ts', 'workflows/**', 'activities/**', ...processes],
    'src/contracts (pure, workflow-safe)',
  ),
  layer(
    'workflows/**',
    ['src/!(contracts)/**', 'src/*.ts', ...processes],
    'Workflow code (contracts and activity types only)',
  ),
  layer('activities/**', ['workflows/**', 'src/client/**', ...processes], 'An activity'),
  layer(
    nodeSide,
    ['workflows/**', 'activities/**', 'src/client/**', ...processes],
    'A node-side module',
  ),
  layer(
    'src/client/**',
    ['workflows/**', 'activities/**', ...nodeSide, ...processes],
    'The client (contracts only)',
  ),
];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.tools/', '.data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { import: importPlugin },
    settings: {
      'import/resolver': { typescript: { project: './tsconfig.json' }, node: true },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's describe/test return promises that the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'test', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'import/no-cycle': 'error',
      'import/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: layerZones }],
    },
  },
  {
    files: ['workflows/**/*.ts', 'src/contracts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: forbiddenInWorkflows.map((name) => ({
            name,
            message: 'Workflow code must stay deterministic: do this in an activity.',
            allowTypeImports: true,
          })),
          patterns: [
            {
              group: ['**/activities/*', '**/activities', '!**/activities/types*'],
              message: 'Import only types from activities in workflow code (import type …).',
              allowTypeImports: true,
            },
            {
              group: [
                '**/src/config/*',
                '**/src/middleware/*',
                '**/src/agent/*',
                '**/src/events/*',
              ],
              message: 'Workflow code may import only src/contracts.',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.ts'],
    ignores: ['workflows/**', 'src/contracts/**', 'src/middleware/zookeeper/client.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'node-zookeeper-client',
              message:
                'Import { zookeeper } from src/middleware/zookeeper/client.ts: unpatched, a reply it cannot parse kills the process.',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
  prettier,
);
