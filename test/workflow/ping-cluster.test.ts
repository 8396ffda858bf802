import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { clusterIdKey, nodesKey, runbookKey } from '../../src/contracts/search-attributes.js';
import { startRunbook } from '../../src/client/index.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { startTestOrchestrator, type TestOrchestrator } from '../helpers/temporal.js';
import { progressQuery } from '../../src/contracts/messages.js';

const nodes = ['127.0.0.11', '127.0.0.12', '127.0.0.13'];

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('pingCluster against a real dev server and three agent processes', () => {
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  let run = 0;
  const clusterId = () => `ping-test-${process.pid}-${++run}`;

  before(async () => {
    [orchestrator, cluster] = await Promise.all([startTestOrchestrator(), startTestCluster(nodes)]);
  });
  after(async () => {
    await Promise.all([orchestrator?.close(), cluster?.close()]);
  });

  test('every node answers with its address, root and middleware, and progress shows all done', async () => {
    const id = clusterId();
    const handle = await startRunbook(
      orchestrator.client,
      'pingCluster',
      { clusterId: id, nodes },
      { taskQueue: orchestrator.taskQueue },
    );
    const result = await handle.result();
    assert.equal(result.clusterId, id);
    assert.deepEqual(
      result.nodes.map((n) => n.address),
      nodes,
    );
    for (const n of result.nodes) {
      assert.ok(n.root.endsWith(`/nodes/${n.address}`), `root of ${n.address}: ${n.root}`);
      assert.equal(n.attempts, 1);
      assert.deepEqual(
        n.middleware.map((m) => m.name),
        ['cockroach', 'zookeeper', 'kafka'],
      );
      assert.ok(
        n.middleware.every((m) => !m.found),
        'the test bin dir is empty',
      );
      assert.deepEqual(n.clusterFile, { nodes: ['127.0.0.1'], master: '127.0.0.1' });
    }
    const progress = await handle.query(progressQuery);
    assert.equal(progress.status, 'completed');
    assert.deepEqual(
      progress.steps.map((s) => [s.node, s.status]),
      nodes.map((n) => [n, 'completed']),
    );

    const description = await handle.describe();
    assert.equal(description.typedSearchAttributes.get(clusterIdKey), id);
    assert.equal(description.typedSearchAttributes.get(runbookKey), 'pingCluster');
    assert.deepEqual(description.typedSearchAttributes.get(nodesKey), nodes);
  });

  test('an agent SIGKILLed mid-step and restarted: the step is retried there and the runbook completes', async () => {
    const victim = '127.0.0.13';
    const log = cluster.lines.get(victim)!;
    const before = log.length;
    const handle = await startRunbook(
      orchestrator.client,
      'pingCluster',
      { clusterId: clusterId(), nodes, holdSeconds: 4 },
      { taskQueue: orchestrator.taskQueue },
    );
    await waitFor('the probe to start on the victim', () =>
      Promise.resolve(
        log.slice(before).some((l) => /activity pingNode started/.test(l)) || undefined,
      ),
    );
    const agent = cluster.agents.get(victim)!;
    agent.kill('SIGKILL');
    const exit = await agent.process;
    assert.equal(exit.signal, 'SIGKILL');
    await cluster.start(victim);

    const result = await handle.result();
    const byNode = new Map(result.nodes.map((n) => [n.address, n]));
    assert.ok(
      byNode.get(victim)!.attempt >= 2,
      `victim answered on attempt ${byNode.get(victim)!.attempt}`,
    );
    assert.equal(byNode.get('127.0.0.11')!.attempts, 1);
    assert.ok(log.slice(before).filter((l) => /activity pingNode completed/.test(l)).length >= 1);
  });

  test('a node whose agent is down makes the runbook wait, reported in progress, until the agent returns', async () => {
    const down = '127.0.0.12';
    await cluster.agents.get(down)!.stop();
    const handle = await startRunbook(
      orchestrator.client,
      'pingCluster',
      { clusterId: clusterId(), nodes, agentTimeoutSeconds: 2 },
      { taskQueue: orchestrator.taskQueue },
    );
    const waiting = await waitFor('the down node to be reported', async () => {
      const p = await handle.query(progressQuery);
      const step = p.steps.find((s) => s.node === down);
      return step?.status === 'waiting' ? { progress: p, step } : undefined;
    });
    assert.match(
      waiting.step.lastError ?? '',
      /no agent on 127\.0\.0\.12 claimed its task within 2 s/,
    );
    assert.equal(waiting.progress.status, 'running');
    assert.deepEqual(
      waiting.progress.steps.filter((s) => s.node !== down).map((s) => s.status),
      ['completed', 'completed'],
    );
    assert.equal((await handle.describe()).status.name, 'RUNNING');

    await cluster.start(down);
    const result = await handle.result();
    const node = result.nodes.find((n) => n.address === down)!;
    assert.ok(node.attempts >= 2, `attempts ${node.attempts}`);
    const progress = await handle.query(progressQuery);
    assert.equal(progress.steps.find((s) => s.node === down)!.status, 'completed');
  });

  test('invalid input is refused by the client and, if sent anyway, fails the workflow at once', async () => {
    await assert.rejects(
      startRunbook(orchestrator.client, 'pingCluster', {
        clusterId: 'Bad Id',
        nodes: ['127.0.0.11', '127.0.0.11'],
      }),
      (err: unknown) =>
        err instanceof ClusterGuardError &&
        err.type === 'InvalidInput' &&
        /clusterId/.test(err.message) &&
        /duplicate node address 127\.0\.0\.11/.test(err.message),
    );
    const handle = await orchestrator.client.workflow.start('pingCluster', {
      args: [{ clusterId: 'ok', nodes: ['127.0.0.11', 'not an address!'] }],
      taskQueue: orchestrator.taskQueue,
      workflowId: `cg/ok/ping/invalid-${process.pid}`,
    });
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, 'InvalidInput');
      assert.equal(err.cause.nonRetryable, true);
      assert.match(err.cause.message, /nodes\.1: expected an IPv4 address/);
      return true;
    });
  });
});
