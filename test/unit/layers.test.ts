import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ESLint } from 'eslint';
import importPlugin from 'eslint-plugin-import';
import tseslint from 'typescript-eslint';
import { repoRoot } from '../../src/process.js';

/**
 * The lint's layer zones (docs/design.md, "Layers") refuse every import that points back up. Each
 * case lints one import line as if it stood in a file of the importing layer; the files need not
 * exist, the imported modules do.
 */
const { layerZones } = (await import(path.join(repoRoot, 'eslint.config.js'))) as {
  layerZones: unknown[];
};

const eslint = new ESLint({
  cwd: repoRoot,
  overrideConfigFile: true,
  overrideConfig: [
    {
      files: ['**/*.ts'],
      languageOptions: { parser: tseslint.parser },
      plugins: { import: importPlugin },
      settings: { 'import/resolver': { typescript: { project: './tsconfig.json' }, node: true } },
      rules: {
        'import/no-restricted-paths': ['error', { basePath: repoRoot, zones: layerZones }],
      },
    },
  ],
});

async function layerErrors(file: string, specifier: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import * as x from '${specifier}';\nvoid x;\n`, {
    filePath: path.join(repoRoot, file),
  });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'import/no-restricted-paths')
    .map((m) => m.message);
}

describe('the lint refuses imports that run back up the layers', () => {
  const backArrows: [string, string, string][] = [
    ['contracts → a node-side module', 'src/contracts/fixture.ts', '../config/app-config.js'],
    ['contracts → the client', 'src/contracts/fixture.ts', '../client/index.js'],
    ['a workflow → a node-side module', 'workflows/fixture.ts', '../src/middleware/index.js'],
    ['an activity → a process', 'activities/fixture.ts', '../worker/orchestrator.js'],
    [
      'a node-side module → an activity',
      'src/config/fixture.ts',
      '../../activities/interceptor.js',
    ],
    ['a node-side module → the client', 'src/agent/fixture.ts', '../client/index.js'],
    ['a node-side module → a process', 'src/middleware/fixture.ts', '../temporal/connection.js'],
    ['the client → a node-side module', 'src/client/fixture.ts', '../config/app-config.js'],
  ];
  for (const [what, file, specifier] of backArrows) {
    test(what, async () => {
      const errors = await layerErrors(file, specifier);
      assert.equal(errors.length, 1, `${file} importing ${specifier}: ${errors.join('; ')}`);
      assert.match(errors[0] ?? '', /docs\/design\.md, "Layers"/);
    });
  }

  test('arrows that point down or sideways pass', async () => {
    assert.deepEqual(await layerErrors('activities/fixture.ts', '../src/middleware/index.js'), []);
    assert.deepEqual(await layerErrors('src/client/fixture.ts', '../contracts/catalog.js'), []);
    assert.deepEqual(await layerErrors('worker/fixture.ts', '../src/client/index.js'), []);
    assert.deepEqual(await layerErrors('src/bundles/fixture.ts', '../middleware/index.js'), []);
  });
});
