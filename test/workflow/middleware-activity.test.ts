import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { MiddlewareOperationResult } from '../../activities/middleware-activities.js';
import { agentReadyLine, spawnNodeAgent, type ChildProcess } from '../../src/dev/processes.js';
import { repoRoot } from '../../src/process.js';
import { freePortOnAll } from '../helpers/agents.js';
import { startTestOrchestrator, testServer, type TestOrchestrator } from '../helpers/temporal.js';

const node = '127.0.0.11';
const workflowsPath = fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url));

describe('a node agent runs middleware operations for a workflow (real agent, real ZooKeeper)', () => {
  let orchestrator: TestOrchestrator;
  let agent: ChildProcess;
  let dir: string;
  let run = 0;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-mw-activity-'));
    const tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, 'test-token-0123456789abcdef\n', { mode: 0o600 });
    orchestrator = await startTestOrchestrator({ workflowsPath });
    agent = spawnNodeAgent({
      address: node,
      root: path.join(dir, 'root'),
      temporalAddress: testServer().address,
      namespace: testServer().namespace,
      tokenFile,
      port: await freePortOnAll([node]),
      binDir: path.join(repoRoot, '.tools'),
      onLine: () => undefined,
    });
    await agent.waitForLine(agentReadyLine, 180_000);
  });
  after(async () => {
    await orchestrator?.client.workflow
      .execute('runNodeOperations', {
        args: [
          { node, operations: [{ component: 'zookeeper', operation: 'stopServer', force: true }] },
        ],
        taskQueue: orchestrator.taskQueue,
        workflowId: `mw-cleanup-${process.pid}`,
      })
      .catch(() => undefined);
    await agent?.stop();
    await orchestrator?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const execute = (operations: unknown[]) =>
    orchestrator.client.workflow.execute('runNodeOperations', {
      args: [{ node, operations }],
      taskQueue: orchestrator.taskQueue,
      workflowId: `mw-activity-${process.pid}-${++run}`,
    }) as Promise<MiddlewareOperationResult[]>;

  test('createCluster starts ZooKeeper on the node; check and stop report its state', async () => {
    const cluster = {
      nodes: [node],
      decommissionNodes: [],
      memberIds: { [node]: 1 },
      clusterUuid: 'x',
    };
    const [created, checked, stopped] = await execute([
      { component: 'zookeeper', operation: 'createCluster', cluster },
      { component: 'zookeeper', operation: 'checkServer' },
      { component: 'zookeeper', operation: 'stopServer' },
    ]);
    assert.equal(created?.node, node);
    assert.equal(created?.status?.running, true);
    assert.equal(checked?.status?.healthy, true, checked?.status?.detail);
    assert.ok(checked?.status?.pid);
    assert.equal(stopped?.status?.running, false);
  });

  test('an operation the middleware does not have fails at once as InvalidInput, naming node and operation', async () => {
    await assert.rejects(
      execute([{ component: 'controller', operation: 'joinCluster' }]),
      (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        const failure = err.cause?.cause;
        assert.ok(failure instanceof ApplicationFailure, String(err.cause));
        assert.equal(failure.type, 'InvalidInput');
        assert.equal(failure.nonRetryable, true);
        assert.match(
          failure.message,
          /joinCluster of controller on node 127\.0\.0\.11: controller does not support joinCluster/,
        );
        return true;
      },
    );
  });
});
