import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { ClusterStore } from '../../src/config/cluster-store.js';
import { nodeTaskQueue } from '../../src/contracts/addresses.js';
import type { MembershipRunbookResult } from '../../src/contracts/membership-runbooks.js';
import { startRunbook } from '../../src/client/index.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { failureOf, startTestOrchestrator, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * A runbook whose input names a node in the wrong role is refused before it waits for anything
 * (docs/design.md, "Role refusals"): a non-member to decommission or rejoin, a member to join.
 * Real agents on 127.0.0.231–.234 and a real dev server; .231–.233 hold the cluster.json of a
 * formed three-node cluster (written by the ClusterStore as a bootstrap would leave it; the
 * refusals read nothing else), .234 is a standalone node, .235 has no agent at all.
 */
const [m1, m2, m3, spare, ghost] = [
  '127.0.0.231',
  '127.0.0.232',
  '127.0.0.233',
  '127.0.0.234',
  '127.0.0.235',
] as const;
const members = [m1, m2, m3];

/** The task queue of every activity the run scheduled, in order. */
/** The nodes' task queues the runbook scheduled activities on (the cluster's admission, on the
 * orchestrator's own queue, is asked first and is not a node). */
async function asked(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const name = e.activityTaskScheduledEventAttributes?.taskQueue?.name;
    return name?.startsWith('cg-node-') ? [name] : [];
  });
}

describe('a node in the wrong role is refused before the runbook waits for anything', () => {
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  const clusterId = 'roles';
  // Membership runbooks run as cg/roles/membership, one after the other.
  const opts = () => ({ taskQueue: orchestrator.taskQueue });

  before(async () => {
    [orchestrator, cluster] = await Promise.all([
      startTestOrchestrator(),
      startTestCluster([...members, spare]),
    ]);
    const memberIds = { [m1]: 1, [m2]: 2, [m3]: 3 };
    for (const n of members) {
      const store = new ClusterStore({
        file: path.join(cluster.dir, 'nodes', n, 'conf', 'cluster.json'),
      });
      await store.update(
        (f) => ({
          ...f,
          cluster: {
            ...f.cluster,
            nodes: members,
            memberIds,
            lastMemberId: 3,
            clusterUuid: 'roles-test-cluster',
            clusterConfigReady: true,
            nodeConfigReady: true,
            nodeIsMaster: n === m1,
          },
        }),
        'formed by the role-refusal test',
      );
    }
  });
  after(async () => {
    await Promise.all([orchestrator?.close(), cluster?.close()]);
  });

  test('decommission of a non-member: refused after reading the master only', async () => {
    const handle = await startRunbook(
      orchestrator.client,
      'decommissionNodes',
      { clusterId, nodes: [ghost], master: m1, middleware: ['zookeeper'] },
      opts(),
    );
    const failure = await failureOf(handle.result());
    assert.equal(failure.type, 'InvalidInput');
    assert.match(failure.message, /127\.0\.0\.235 is not a member of cluster roles/);
    assert.match(failure.message, /Nothing was changed/);
    assert.deepEqual(await asked(handle), [nodeTaskQueue(m1)]);
  });

  test('decommission of an address without an agent and no master: refused, not waited for', async () => {
    const handle = await startRunbook(
      orchestrator.client,
      'decommissionNodes',
      { clusterId, nodes: [ghost] },
      opts(),
    );
    const failure = await failureOf(handle.result());
    assert.equal(failure.type, 'NodeUnreachable');
    assert.match(failure.message, /no agent on 127\.0\.0\.235 answered/);
    assert.match(failure.message, /give the master of the cluster in `master`/);
    assert.deepEqual(await asked(handle), [nodeTaskQueue(ghost)], 'asked once, not again');
  });

  test('rejoin of a non-member: refused, with or without a master', async () => {
    let handle = await startRunbook(
      orchestrator.client,
      'rejoinNode',
      { clusterId, node: spare, master: m1, middleware: ['zookeeper'] },
      opts(),
    );
    let failure = await failureOf(handle.result());
    assert.equal(failure.type, 'InvalidInput');
    assert.match(failure.message, /127\.0\.0\.234 is not a member of \[127\.0\.0\.231, /);
    assert.match(failure.message, /join it with joinNode/);
    assert.deepEqual(await asked(handle), [nodeTaskQueue(m1)]);

    handle = await startRunbook(
      orchestrator.client,
      'rejoinNode',
      { clusterId, node: ghost, middleware: ['zookeeper'] },
      opts(),
    );
    failure = await failureOf(handle.result());
    assert.equal(failure.type, 'NodeUnreachable');
    assert.match(failure.message, /rejoinNode cannot learn from 127\.0\.0\.235's cluster\.json/);
  });

  test('join of a current member: refused, with or without a master', async () => {
    for (const master of [m1, undefined]) {
      const handle = await startRunbook(
        orchestrator.client,
        'joinNode',
        { clusterId, node: m2, middleware: ['zookeeper'], ...(master ? { master } : {}) },
        opts(),
      );
      const failure = await failureOf(handle.result());
      assert.equal(failure.type, 'InvalidInput');
      assert.match(failure.message, /127\.0\.0\.232 is already a member of cluster roles/);
      assert.match(failure.message, /start rejoinNode/);
      const queues = await asked(handle);
      assert.deepEqual(queues, master ? [nodeTaskQueue(m1)] : [m2, m1].map(nodeTaskQueue));
    }
  });

  test('the right roles are planned: a join of the spare, a decommission of a member', async () => {
    const join = await startRunbook(
      orchestrator.client,
      'joinNode',
      { clusterId, node: spare, master: m1, middleware: ['zookeeper'], dryRun: true },
      opts(),
    );
    const joined: MembershipRunbookResult = await join.result();
    assert.deepEqual(joined.plan.membership.desired, [...members, spare]);
    assert.ok(joined.plan.steps.some((s) => s.id === `join:${spare}:zookeeper`));

    const leave = await startRunbook(
      orchestrator.client,
      'decommissionNodes',
      { clusterId, nodes: [m3], middleware: ['zookeeper'], dryRun: true },
      opts(),
    );
    const left: MembershipRunbookResult = await leave.result();
    assert.equal(left.plan.master, m1, "found from the leaving member's cluster.json");
    assert.deepEqual(left.plan.membership.desired, [m1, m2]);
  });
});
