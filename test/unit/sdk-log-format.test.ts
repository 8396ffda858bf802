import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { repoRoot } from '../../src/process.js';

/**
 * `npm start`'s own SDK log lines (worker/dev-stack.ts installs the SDK runtime as below) are
 * JSON lines in the orchestrator's format (src/logger.ts), at warn unless CG_LOG_LEVEL says
 * otherwise. A child process installs the runtime and logs through the SDK's runtime logger,
 * the one the SDK's own code (and the forwarded core lines) go through.
 */
const child = `
import { Runtime } from '@temporalio/worker';
import { installRuntime } from ${JSON.stringify(path.join(repoRoot, 'src/observability/runtime.ts'))};
installRuntime({ defaultLevel: 'warn' });
const log = Runtime.instance().logger;
log.info('an info line');
log.warn('a warning', { workflowId: 'wf-1', workflowRunId: 'run-1', activityType: 'ping' });
log.error('an error', { sdkComponent: 'worker' });
Runtime.instance().flushLogs();
process.exit(0);
`;

async function sdkLines(env: Record<string, string | undefined>) {
  const { stderr } = await execa(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', child],
    { cwd: repoRoot, env: { ...env }, extendEnv: true, timeout: 30_000 },
  );
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  return lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return assert.fail(`a line that is not JSON: ${line}`);
    }
  });
}

describe("the dev stack's SDK log lines", () => {
  test('are JSON with our fields, at warn by default', async () => {
    const lines = await sdkLines({ CG_LOG_LEVEL: undefined });
    assert.deepEqual(
      lines.map((l) => [l.level, l.logger, l.msg]),
      [
        ['warn', 'temporal-sdk', 'a warning'],
        ['error', 'temporal-sdk', 'an error'],
      ],
    );
    const [warning, error] = lines;
    assert.equal(warning?.workflowId, 'wf-1');
    assert.equal(warning?.runId, 'run-1');
    assert.equal(warning?.activity, 'ping');
    assert.equal(error?.component, 'worker');
    assert.ok(!Number.isNaN(Date.parse(String(warning?.time))));
  });

  test('CG_LOG_LEVEL governs them', async () => {
    const lines = await sdkLines({ CG_LOG_LEVEL: 'info' });
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['an info line', 'a warning', 'an error'],
    );
  });
});
