import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { DefaultLogger, Runtime, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { repoRoot } from '../../src/process.js';
import { loadWorkflowBundle } from '../../worker/workflow-bundle.js';

/**
 * Every history under test/replay/histories (recorded with `temporal workflow show --output
 * json` from real runs; the membership ones by the e2e suite with CG_RECORD_HISTORIES set, some
 * with crashes of the orchestrator, an agent and the Temporal server in them) must replay
 * against today's workflow code: a change that would break runs in flight fails here, and
 * needs `patched()`.
 */
const folder = path.join(repoRoot, 'test', 'replay', 'histories');
// Child workflow ids derive from the parent's, so a history replays under its recorded id.
const idsFile = 'workflow-ids.json';
const files = readdirSync(folder).filter((f) => f.endsWith('.json') && f !== idsFile);
const workflowIds = JSON.parse(readFileSync(path.join(folder, idsFile), 'utf8')) as Record<
  string,
  string
>;

describe('stored histories replay against the current workflow code', () => {
  let workflowBundle: WorkflowBundleOption;
  before(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    workflowBundle = await loadWorkflowBundle();
  });

  test('there are histories of every runbook to replay', () => {
    // Every runbook the orchestrator registers (workflows/index.ts), so a new one cannot be
    // forgotten: record its history with CG_RECORD_HISTORIES=<dir> (see README).
    const index = readFileSync(path.join(repoRoot, 'workflows', 'index.ts'), 'utf8');
    const runbooks = [...index.matchAll(/from '\.\/([a-z-]+)\.js'/g)].map((m) => m[1] ?? '');
    assert.ok(runbooks.length >= 13, runbooks.join(', '));
    for (const prefix of runbooks) {
      assert.ok(
        files.some((f) => f.startsWith(prefix)),
        `no ${prefix}*.json in ${folder}`,
      );
    }
  });

  test('every history replays (Worker.runReplayHistories)', async () => {
    const histories = files.map((file) => ({
      workflowId: workflowIds[file] ?? file,
      history: JSON.parse(readFileSync(path.join(folder, file), 'utf8')) as unknown,
    }));
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
    }
    assert.equal(replayed, files.length);
    assert.deepEqual(failures, []);
  });
});
