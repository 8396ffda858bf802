import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { DefaultLogger, Runtime, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { repoRoot } from '../../src/process.js';
import { loadWorkflowBundle } from '../../worker/orchestrator.js';

/**
 * Every history under test/replay/histories (recorded with `temporal workflow show --output
 * json` from real runs) must replay against today's workflow code: a change that would break
 * runs in flight fails here, and needs `patched()`.
 */
const folder = path.join(repoRoot, 'test', 'replay', 'histories');
const files = readdirSync(folder).filter((f) => f.endsWith('.json'));

describe('stored histories replay against the current workflow code', () => {
  let workflowBundle: WorkflowBundleOption;
  before(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    workflowBundle = await loadWorkflowBundle();
  });

  test('there are histories to replay', () => {
    assert.ok(files.length >= 2, `found ${files.length} histories`);
  });

  for (const file of files) {
    test(file, async () => {
      const history: unknown = JSON.parse(readFileSync(path.join(folder, file), 'utf8'));
      await Worker.runReplayHistory({ workflowBundle }, history, file);
    });
  }
});
