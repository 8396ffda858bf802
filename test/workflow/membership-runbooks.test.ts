import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { MembershipRunbookResult } from '../../src/contracts/membership-runbooks.js';
import type { Progress } from '../../src/contracts/progress.js';
import { startRunbook } from '../../src/client/index.js';
import {
  abortUpdate,
  pauseSignal,
  progressQuery,
  retryStepUpdate,
} from '../../src/contracts/messages.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { failureOf, startTestOrchestrator, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * The membership runbooks' guard rails against a real dev server and real agent processes whose
 * nodes run no middleware: everything here is refused, planned or aborted before a server would
 * be touched. The runs that do change clusters are in test/e2e.
 */
const [n1, n2, n3] = ['127.0.0.11', '127.0.0.12', '127.0.0.13'] as const;

async function waitForProgress(
  query: () => Promise<Progress>,
  predicate: (p: Progress) => boolean,
): Promise<Progress> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const p = await query().catch(() => undefined);
    if (p && predicate(p)) return p;
    if (Date.now() > deadline) throw new Error(`progress never matched: ${JSON.stringify(p)}`);
    await sleep(200);
  }
}

describe('membership runbooks: refusals, plans and aborts before anything changes', () => {
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  let run = 0;
  const clusterId = () => `mship-${process.pid}-${++run}`;
  const clusterFile = (node: string) =>
    readFile(path.join(cluster.dir, 'nodes', node, 'conf', 'cluster.json'), 'utf8');

  before(async () => {
    [orchestrator, cluster] = await Promise.all([
      startTestOrchestrator(),
      startTestCluster([n1, n2, n3]),
    ]);
  });
  after(async () => {
    await Promise.all([orchestrator?.close(), cluster?.close()]);
  });

  test('a runbook started under another workflow id is refused', async () => {
    const id = clusterId();
    const handle = await orchestrator.client.workflow.start('bootstrapCluster', {
      taskQueue: orchestrator.taskQueue,
      workflowId: `somewhere-else-${id}`,
      args: [{ clusterId: id, nodes: [n1, n2] }],
    });
    const failure = await failureOf(handle.result());
    assert.equal(failure.type, 'InvalidInput');
    assert.match(failure.message, new RegExp(`must run as cg/${id}/membership`));
  });

  test('invalid input is refused with every problem named', async () => {
    const id = clusterId();
    const handle = await orchestrator.client.workflow.start('decommissionNodes', {
      taskQueue: orchestrator.taskQueue,
      workflowId: `cg/${id}/membership`,
      args: [{ clusterId: id, nodes: ['not an address'], add: [n1, n1] }],
    });
    const failure = await failureOf(handle.result());
    assert.equal(failure.type, 'InvalidInput');
    assert.match(failure.message, /nodes\.0: expected an IPv4 address/);
    assert.match(failure.message, /add: duplicate 127\.0\.0\.11/);
  });

  test('a dry run of a bootstrap plans every step and changes nothing', async () => {
    const id = clusterId();
    const before = await Promise.all([n1, n2, n3].map(clusterFile));
    const handle = await startRunbook(
      orchestrator.client,
      'bootstrapCluster',
      { clusterId: id, nodes: [n1, n2, n3], middleware: ['kafka', 'zookeeper'], dryRun: true },
      { taskQueue: orchestrator.taskQueue },
    );
    const result: MembershipRunbookResult = await handle.result();
    assert.equal(result.dryRun, true);
    assert.equal(result.plan.membership.kind, 'bootstrap');
    assert.deepEqual(result.plan.middleware, ['zookeeper', 'kafka']);
    const ids = result.plan.steps.map((s) => s.id);
    assert.deepEqual(ids.slice(0, 3), [`stop:${n1}`, `stop:${n2}`, `stop:${n3}`]);
    assert.ok(ids.indexOf(`create:${n1}:kafka`) < ids.indexOf(`join:${n2}`));
    assert.deepEqual(
      result.plan.wipes.map((w) => w.node),
      [n2, n3],
    );
    assert.deepEqual(await Promise.all([n1, n2, n3].map(clusterFile)), before);
  });

  test('joining a cluster that clusterguard did not create, and rejoining a non-member, are refused', async () => {
    const id = clusterId();
    // Every test node is standalone: 127.0.0.1 in its own cluster.json, no clusterUuid.
    let handle = await startRunbook(
      orchestrator.client,
      'joinNode',
      { clusterId: id, node: n2, master: n1 },
      { taskQueue: orchestrator.taskQueue },
    );
    let failure = await failureOf(handle.result());
    assert.match(
      failure.message,
      /127\.0\.0\.11 is not the master of cluster .*: its cluster\.json names 127\.0\.0\.1/,
    );

    handle = await startRunbook(
      orchestrator.client,
      'rejoinNode',
      { clusterId: id, node: n2 },
      { taskQueue: orchestrator.taskQueue },
    );
    failure = await failureOf(handle.result());
    assert.equal(failure.type, 'InvalidInput');
    assert.match(failure.message, /127\.0\.0\.12 is standalone .*give the master of the cluster/);
  });

  test('a step waiting for a node that never answers can be aborted; retryStep is refused', async () => {
    const id = clusterId();
    // 127.0.0.14 has no agent: reading its cluster.json waits, and says why.
    const handle = await startRunbook(
      orchestrator.client,
      'decommissionNodes',
      { clusterId: id, nodes: [n3], master: '127.0.0.14', agentTimeoutSeconds: 1 },
      { taskQueue: orchestrator.taskQueue },
    );
    const progress = await waitForProgress(
      () => handle.query(progressQuery),
      (p) => (p.parked?.length ?? 0) > 0,
    );
    const [waiting] = progress.parked ?? [];
    assert.equal(waiting?.node, '127.0.0.14');
    assert.deepEqual(waiting?.accepts, ['abort']);
    assert.match(waiting?.reason ?? '', /no agent on 127\.0\.0\.14 claimed the step/);
    assert.equal(progress.steps.find((s) => s.id === waiting?.step)?.status, 'waiting');
    // Once the node is known to be down the step asks again with a long schedule-to-start
    // timeout: a node that stays down does not fill the history with one ask per second.
    await sleep(4000);
    const history = await handle.fetchHistory();
    // The asks of the node's step (not the runbook's admission request, docs/design.md).
    const asks = (history.events ?? []).filter(
      (e) =>
        e.activityTaskScheduledEventAttributes &&
        e.activityTaskScheduledEventAttributes.activityType?.name !== 'requestAdmission',
    );
    assert.equal(asks.length, 2, 'one ask with the agent timeout, then one that waits longer');

    await assert.rejects(
      handle.executeUpdate(retryStepUpdate, { args: [{}] }),
      (err: unknown) =>
        err instanceof WorkflowUpdateFailedError &&
        /waits for an unreachable node and is retried by itself/.test(err.cause?.message ?? ''),
    );
    await assert.rejects(
      handle.executeUpdate(abortUpdate, { args: [{ reason: '  ' }] }),
      (err: unknown) =>
        err instanceof WorkflowUpdateFailedError &&
        /abort needs a reason/.test(err.cause?.message ?? ''),
    );
    await handle.executeUpdate(abortUpdate, { args: [{ reason: 'node 14 is gone for good' }] });
    const failure = await failureOf(handle.result());
    assert.equal(failure.type, 'Aborted');
    assert.match(
      failure.message,
      /aborted by an operator at step read-master:127\.0\.0\.14: node 14 is gone for good/,
    );
    assert.match(failure.message, /State: nothing has been changed yet/);
  });

  test('pause holds the runbook before its next step; abort while paused stops it there', async () => {
    const id = clusterId();
    const handle = await startRunbook(
      orchestrator.client,
      'decommissionNodes',
      { clusterId: id, nodes: [n3], master: '127.0.0.14', agentTimeoutSeconds: 1 },
      { taskQueue: orchestrator.taskQueue },
    );
    await assert.rejects(
      handle.executeUpdate(abortUpdate, { args: [{ reason: 'too early' }] }),
      (err: unknown) =>
        err instanceof WorkflowUpdateFailedError &&
        /neither parked nor paused/.test(err.cause?.message ?? ''),
    );
    await handle.signal(pauseSignal, 'maintenance window closed');
    const paused = await waitForProgress(
      () => handle.query(progressQuery),
      (p) => p.paused !== undefined,
    );
    assert.equal(paused.paused?.reason, 'maintenance window closed');
    await handle.executeUpdate(abortUpdate, { args: [{ reason: 'not today' }] });
    const failure = await failureOf(handle.result());
    assert.equal(failure.type, 'Aborted');
    assert.match(failure.message, /not today/);
  });
});
