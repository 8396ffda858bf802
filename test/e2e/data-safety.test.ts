import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { orchestratorTaskQueue } from '../../src/contracts/addresses.js';
import type { MembershipRunbookResult } from '../../src/contracts/membership-runbooks.js';
import { startStack, stepStatus, waitForProgress, type Stack } from '../helpers/stack.js';
import { Traffic, type TrafficReport } from '../helpers/traffic.js';
import { progressQuery } from '../../src/contracts/messages.js';

/**
 * No acknowledged write is lost across membership runbooks, whatever is killed meanwhile: a
 * client writes to ZooKeeper and produces to Kafka (acks=all, three partitions, replication 3)
 * all the time and counts what the servers acknowledged; after each runbook everything
 * acknowledged so far must read back, and every partition must have a leader and all its
 * replicas in sync the moment the runbook reports done. Four loopback nodes with real
 * ZooKeeper and Kafka (127.0.0.131–.134, which no other test binds).
 */

const [a, b, c, d] = ['127.0.0.131', '127.0.0.132', '127.0.0.133', '127.0.0.134'] as const;
const clusterId = 'safety';
const log = (msg: string) => console.error(`[data-safety] ${msg}`);
type Handle = WorkflowHandle<(input: unknown) => Promise<MembershipRunbookResult>>;

function start(stack: Stack, runbook: string, input: Record<string, unknown>): Promise<Handle> {
  return stack.client.workflow.start(runbook, {
    args: [{ clusterId, ...input }],
    taskQueue: orchestratorTaskQueue,
    workflowId: `cg/${clusterId}/membership`,
  });
}

/** The result says what the runbook waited for before it reported done. */
function assertInSyncResult(result: MembershipRunbookResult): void {
  const lines = result.inSync ?? [];
  assert.ok(
    lines.some((l) => /^zookeeper: \d+ voters serve, leader /.test(l)) &&
      lines.some((l) =>
        /^kafka: all \d+ partitions of \d+ topics have a leader and every replica in sync$/.test(l),
      ),
    `inSync: ${lines.join('; ')}`,
  );
}

function describeReport(r: TrafficReport): string {
  return (
    `${r.zkAcknowledged} znodes and ${r.kafkaAcknowledged} messages acknowledged; ` +
    `lost ${r.zkLost.length} znodes, ${r.kafkaLost.length} messages; ` +
    `not in sync: ${r.notInSync.join('; ') || 'none'}`
  );
}

describe('acknowledged writes survive membership runbooks and SIGKILLs (real ZooKeeper and Kafka)', () => {
  let stack: Stack;
  let traffic: Traffic;

  /** Everything acknowledged so far reads back, and every partition is in sync right now. */
  async function assertNothingLost(after: string, nodes: string[]) {
    traffic.setNodes(nodes);
    const inSyncAtOnce = (await traffic.describe()).filter(
      (p) => p.leader < 0 || p.isr.length < p.replicas.length,
    );
    const report = await traffic.verify();
    log(`after ${after}: ${describeReport(report)}`);
    assert.deepEqual(
      inSyncAtOnce.map((p) => p.name),
      [],
      `${after} reported done while partitions were not in sync`,
    );
    assert.deepEqual(report.zkLost, [], `acknowledged znodes lost after ${after}`);
    assert.deepEqual(
      report.kafkaLost.slice(0, 20),
      [],
      `acknowledged messages lost after ${after}`,
    );
    assert.deepEqual(report.notInSync, []);
  }

  before(async () => {
    stack = await startStack([a, b, c, d]);
  });
  after(async () => {
    await traffic?.stop();
    await stack?.close();
  });

  test('a formed cluster, written to all the time', { timeout: 600_000 }, async () => {
    const handle = await start(stack, 'bootstrapCluster', { nodes: [a, b, c] });
    const result = await handle.result();
    assert.deepEqual(result.nodes, [a, b, c]);
    traffic = new Traffic({ nodes: [a, b, c], topic: 'ledger', zkPath: '/safety' });
    await traffic.start();
    await sleep(5000);
    assert.ok(traffic.kafkaAcked.length > 5 && traffic.zkAcked.length > 5, 'the client writes');
  });

  test(
    'bootstrap of the formed cluster, the Temporal server killed while the nodes stop and an agent while it joins',
    { timeout: 600_000 },
    async () => {
      const before = traffic.kafkaAcked.length;
      const handle = await start(stack, 'bootstrapCluster', { nodes: [a, b, c] });
      await waitForProgress(handle, (p) =>
        [a, b, c].some((n) => stepStatus(p, `stop:${n}`) !== 'pending'),
      );
      log('killing the Temporal server while the nodes stop');
      await stack.killTemporal();
      await stack.startTemporal();
      await waitForProgress(handle, (p) => stepStatus(p, `join:${b}`) === 'running');
      log(`killing the agent of ${b} while it joins`);
      await stack.killAgent(b);
      await stack.startAgent(b);
      const result = await handle.result();
      assert.deepEqual(result.nodes, [a, b, c]);
      assertInSyncResult(result);
      await sleep(3000);
      assert.ok(traffic.kafkaAcked.length > before, 'the client wrote again after the bootstrap');
      await assertNothingLost('the bootstrap of the formed cluster', [a, b, c]);
    },
  );

  test('join a fourth node, decommission it, join it again', { timeout: 900_000 }, async () => {
    let handle = await start(stack, 'joinNode', { node: d, master: a });
    assertInSyncResult(await handle.result());
    await assertNothingLost(`the join of ${d}`, [a, b, c, d]);

    handle = await start(stack, 'decommissionNodes', { nodes: [d] });
    assertInSyncResult(await handle.result());
    await assertNothingLost(`the decommission of ${d}`, [a, b, c]);

    handle = await start(stack, 'joinNode', { node: d, master: a });
    await handle.result();
    await assertNothingLost(`the second join of ${d}`, [a, b, c, d]);
  });

  test(
    'decommission with the leaving agent, the orchestrator and the Temporal server killed',
    { timeout: 900_000 },
    async () => {
      const handle = await start(stack, 'decommissionNodes', { nodes: [d] });
      await waitForProgress(handle, (p) => stepStatus(p, `decommission:${d}:kafka`) === 'running');
      log(`killing the agent of ${d} during its kafka decommission`);
      await stack.killAgent(d);
      await stack.startAgent(d);
      await waitForProgress(handle, (p) => stepStatus(p, `restart:${b}`) === 'running');
      log(`killing the orchestrator during the restart of ${b}`);
      await stack.killOrchestrator();
      await stack.startOrchestrator();
      await waitForProgress(handle, (p) => stepStatus(p, `health:${c}`) !== 'pending');
      log('killing the Temporal server during the rolling restart');
      await stack.killTemporal();
      await stack.startTemporal();
      const result = await handle.result();
      assert.deepEqual(result.nodes, [a, b, c]);
      assertInSyncResult(result);
      // The rolling restart waited after each member before the next one.
      const progress = await handle.query(progressQuery);
      for (const n of [a, b, c])
        assert.equal(
          progress.steps.find((st) => st.id === `in-sync:restart:${n}`)?.status,
          'completed',
        );
      await assertNothingLost(`the decommission of ${d} through SIGKILLs`, [a, b, c]);
      await traffic.stop();
      const report = await traffic.verify();
      log(`in all: ${describeReport(report)}`);
      assert.ok(report.kafkaAcknowledged > 100 && report.zkAcknowledged > 100);
      assert.deepEqual(report.kafkaLost, []);
      assert.deepEqual(report.zkLost, []);
    },
  );
});
