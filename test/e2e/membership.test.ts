import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { startMembershipRunbook } from '../../src/temporal/runbooks.js';
import { withZooKeeperClient } from '../../src/middleware/zookeeper.js';
import { startStack, stepStatus, waitForProgress, type Stack } from '../helpers/stack.js';

const [n1, n2, n3, n4] = ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14'] as const;
const clusterId = 'e2e';
const log = (msg: string) => console.error(`[e2e] ${msg}`);

/** The membership state that must be identical on every member (nodeIsMaster is per node). */
async function sharedState(stack: Stack, nodes: string[]) {
  return Promise.all(
    nodes.map(async (n) => {
      // Per node by nature: who is master, and which step wrote the file.
      const cluster: Record<string, unknown> = { ...(await stack.clusterFile(n)).cluster };
      delete cluster.nodeIsMaster;
      delete cluster.revision;
      return cluster;
    }),
  );
}

async function assertSameState(stack: Stack, nodes: string[]) {
  const states = await sharedState(stack, nodes);
  for (const s of states.slice(1)) assert.deepEqual(s, states[0]);
  assert.deepEqual(states[0]?.nodes, nodes);
}

/** Every entry written by one runbook's step appears once: no cluster.json write ran twice. */
async function assertWrittenOnce(stack: Stack, nodes: string[], reason: RegExp) {
  for (const n of nodes) {
    const file = await stack.clusterFile(n);
    const hits = file.history.filter((h) => h.reason && reason.test(h.reason));
    assert.ok(hits.length <= 1, `${n}: ${hits.length} history entries match ${reason}`);
  }
}

describe('membership runbooks on loopback nodes with real ZooKeeper and Kafka', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack([n1, n2, n3, n4]);
  });
  after(async () => {
    await stack?.close();
  });

  test(
    'bootstrap three nodes, surviving SIGKILL of the orchestrator, an agent and the Temporal server',
    { timeout: 600_000 },
    async () => {
      const started = Date.now();
      const handle = await startMembershipRunbook(stack.client, 'bootstrapCluster', {
        clusterId,
        nodes: [n1, n2, n3],
      });
      // A second membership runbook of the same cluster is refused by Temporal itself.
      await assert.rejects(
        startMembershipRunbook(stack.client, 'decommissionNodes', { clusterId, nodes: [n3] }),
        /bootstrapCluster .* is still running as cg\/e2e\/membership/,
      );

      await waitForProgress(handle, (p) => stepStatus(p, `create:${n1}:kafka`) === 'running');
      log('killing the orchestrator during create kafka');
      await stack.killOrchestrator();
      await stack.startOrchestrator();

      await waitForProgress(handle, (p) => stepStatus(p, `join:${n2}`) === 'running');
      log(`killing the agent of ${n2} during its join`);
      await stack.killAgent(n2);
      await stack.startAgent(n2);

      await waitForProgress(
        handle,
        (p) =>
          stepStatus(p, `join:${n3}`) === 'completed' || stepStatus(p, `sync:${n1}`) !== 'pending',
      );
      log('killing the Temporal dev server');
      await stack.killTemporal();
      await stack.startTemporal();

      const result = await handle.result();
      log(`bootstrap completed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      assert.deepEqual(result.nodes, [n1, n2, n3]);
      await assertSameState(stack, [n1, n2, n3]);
      await assertWrittenOnce(stack, [n1, n2, n3], /bootstrapCluster: \[.*\] formed/);

      // ZooKeeper and Kafka serve as one cluster.
      await withZooKeeperClient(`${n2}:2181`, 20_000, async (zk) => {
        await new Promise<void>((res, rej) =>
          zk.create('/e2e', Buffer.from('hello'), 0, (err) => (err ? rej(err) : res())),
        );
      });
      const kafka = new Kafka({
        brokers: [`${n1}:9092`, `${n2}:9092`, `${n3}:9092`],
        logLevel: logLevel.NOTHING,
      });
      const admin = kafka.admin();
      await admin.connect();
      const cluster = await admin.describeCluster();
      await admin.disconnect();
      assert.deepEqual(cluster.brokers.map((b) => b.host).sort(), [n1, n2, n3]);
    },
  );
});
