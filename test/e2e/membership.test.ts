import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { MembershipRunbookResult } from '../../src/contracts/membership-runbooks.js';
import { withZooKeeperClient } from '../../src/middleware/zookeeper/index.js';
import { messages, startRunbook, type RunbookInput } from '../../src/client/index.js';
import {
  recordHistory,
  startStack,
  stepStatus,
  waitForProgress,
  type Stack,
} from '../helpers/stack.js';

/**
 * The membership runbooks end to end: five loopback nodes whose agents, ZooKeeper and Kafka are
 * real processes, an orchestrator process and a Temporal dev server on a SQLite file. The test
 * SIGKILLs each of them mid-runbook and checks that the runbook completes, that no cluster.json
 * write ran twice, and that every member records the same membership. CockroachDB cannot be had
 * on this machine, so these clusters run ZooKeeper and Kafka only.
 */

const [n1, n2, n3, n4, n5] = [
  '127.0.0.31',
  '127.0.0.32',
  '127.0.0.33',
  '127.0.0.34',
  '127.0.0.35',
] as const;
const clusterId = 'e2e';
const log = (msg: string) => console.error(`[e2e] ${msg}`);
type Handle = WorkflowHandle<(input: unknown) => Promise<MembershipRunbookResult>>;

/** The membership state that must be identical on every member. */
async function sharedState(stack: Stack, nodes: readonly string[]) {
  return Promise.all(
    nodes.map(async (n) => {
      // Per node by nature: who is master, whether it came back by rejoining, which step wrote.
      const cluster: Record<string, unknown> = { ...(await stack.clusterFile(n)).cluster };
      delete cluster.nodeIsMaster;
      delete cluster.nodeIsRejoin;
      delete cluster.revision;
      return cluster;
    }),
  );
}

async function assertSameState(stack: Stack, nodes: readonly string[]) {
  const states = await sharedState(stack, nodes);
  for (const [i, s] of states.entries()) assert.deepEqual(s, states[0], `${nodes[i]} differs`);
  assert.deepEqual(states[0]?.nodes, nodes);
  assert.deepEqual(states[0]?.decommissionNodes, []);
}

/** Every history entry a runbook's step writes appears once: no cluster.json write ran twice. */
async function assertWrittenOnce(stack: Stack, nodes: readonly string[], reason: RegExp) {
  for (const n of nodes) {
    const file = await stack.clusterFile(n);
    const hits = file.history.filter((h) => h.reason && reason.test(h.reason));
    assert.equal(hits.length, 1, `${n}: ${hits.length} history entries match ${reason}`);
  }
}

const zkData = (host: string) =>
  withZooKeeperClient(`${host}:2181`, 20_000, async (zk) => {
    const children = await new Promise<string[]>((res, rej) =>
      zk.getChildren('/e2e', (err, names) => (err ? rej(err) : res(names))),
    );
    return children.sort();
  });

const zkWrite = (host: string, name: string) =>
  withZooKeeperClient(
    `${host}:2181`,
    10_000,
    (zk) =>
      new Promise<void>((res, rej) =>
        zk.create(`/e2e/${name}`, Buffer.from(name), 0, (err) => (err ? rej(err) : res())),
      ),
  );

function kafkaOf(nodes: readonly string[]) {
  return new Kafka({
    clientId: 'e2e',
    brokers: nodes.map((n) => `${n}:9092`),
    logLevel: logLevel.NOTHING,
    retry: { retries: 3, initialRetryTime: 300 },
    connectionTimeout: 3000,
  });
}

async function brokers(nodes: readonly string[]): Promise<string[]> {
  const admin = kafkaOf(nodes).admin();
  await admin.connect();
  try {
    return (await admin.describeCluster()).brokers.map((b) => b.host).sort();
  } finally {
    await admin.disconnect();
  }
}

/** How many messages `topic` holds: the sum of its partitions' high watermarks. */
async function highWatermarks(nodes: readonly string[], topic: string): Promise<number> {
  const admin = kafkaOf(nodes).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Every message value of `topic`, read from the beginning by a fresh consumer group, each record
 * once. The group may rebalance while it reads (a coordinator moved by a restart) and read a
 * partition again from its start: a count of what was delivered would then reach `expected`
 * before another partition was read at all, so the read stops on distinct values (`values`, the
 * default) or distinct records by partition and offset (`records`, to read a whole log that
 * may hold a value twice).
 */
async function consumeAll(
  nodes: readonly string[],
  topic: string,
  expected: number,
  until: 'values' | 'records' = 'values',
) {
  const consumer = kafkaOf(nodes).consumer({ groupId: `e2e-${Date.now()}-${Math.random()}` });
  const records = new Map<string, string>();
  const distinct = new Set<string>();
  const perPartition = new Map<number, Set<string>>();
  const count = () => (until === 'values' ? distinct.size : records.size);
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        const value = message.value?.toString() ?? '';
        records.set(`${partition}:${message.offset}`, value);
        distinct.add(value);
        perPartition.set(partition, (perPartition.get(partition) ?? new Set()).add(message.offset));
        return Promise.resolve();
      },
    });
    const deadline = Date.now() + 60_000;
    while (count() < expected && Date.now() < deadline) await sleep(250);
  } finally {
    await consumer.disconnect();
  }
  const read = new Map([...perPartition].map(([p, offsets]) => [p, offsets.size]));
  if (count() < expected) await explainShortRead(nodes, topic, expected, read);
  return [...records.values()];
}

/**
 * A read that came up short says whether the messages are gone (offsets) or out of reach (no
 * leader, a replica out of sync): the two call for different fixes.
 */
async function explainShortRead(
  nodes: readonly string[],
  topic: string,
  expected: number,
  read: Map<number, number>,
): Promise<void> {
  const admin = kafkaOf(nodes).admin();
  try {
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    const partitions = meta.topics[0]?.partitions ?? [];
    const lines = offsets.map((o) => {
      const p = partitions.find((x) => x.partitionId === o.partition);
      return (
        `partition ${o.partition}: read ${read.get(o.partition) ?? 0}, offsets ${o.low}..${o.high}, ` +
        `leader ${p?.leader}, replicas [${p?.replicas.join(',')}], in sync [${p?.isr.join(',')}]`
      );
    });
    log(
      `read ${[...read.values()].reduce((a, b) => a + b, 0)} of ${expected} from ${topic}:\n  ${lines.join('\n  ')}`,
    );
  } catch (err) {
    log(
      `read fewer than ${expected} from ${topic}; the topic could not be described: ${String(err)}`,
    );
  } finally {
    await admin.disconnect();
  }
}

/** An update the workflow's validator refused: the reason is the failure's cause. */
const rejectedWith = (pattern: RegExp) => (err: unknown) =>
  err instanceof WorkflowUpdateFailedError && pattern.test(err.cause?.message ?? '');

async function failureOf(handle: Handle): Promise<string> {
  try {
    await handle.result();
  } catch (err) {
    if (err instanceof WorkflowFailedError) return err.cause?.message ?? err.message;
    throw err;
  }
  throw new Error('the runbook did not fail');
}

describe('membership runbooks on loopback nodes with real ZooKeeper and Kafka', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack([n1, n2, n3, n4, n5]);
  });
  after(async () => {
    await stack?.close();
  });
  // A test that failed may leave its runbook running; the next test would only be refused.
  beforeEach(async () => {
    const handle = stack.client.workflow.getHandle(`cg/${clusterId}/membership`);
    const running = await handle.describe().then(
      (d) => d.status.name === 'RUNNING',
      () => false,
    );
    if (running) {
      log('terminating the runbook that an earlier failed test left running');
      await handle.terminate('e2e: an earlier test failed');
    }
  });

  test(
    'bootstrap three nodes through SIGKILLs of the orchestrator, an agent and the Temporal server',
    { timeout: 600_000 },
    async () => {
      const started = Date.now();
      const handle = await startRunbook(stack.client, 'bootstrapCluster', {
        clusterId,
        nodes: [n1, n2, n3],
      });
      // A second membership runbook of the same cluster is refused by Temporal itself.
      await assert.rejects(
        startRunbook(stack.client, 'decommissionNodes', { clusterId, nodes: [n3] }),
        /bootstrapCluster \(run .*\) is still running as cg\/e2e\/membership/,
      );

      await waitForProgress(handle, (p) => stepStatus(p, `create:${n1}:kafka`) === 'running');
      log('killing the orchestrator during create kafka');
      await stack.killOrchestrator();
      await stack.startOrchestrator();

      await waitForProgress(handle, (p) => stepStatus(p, `join:${n2}`) === 'running');
      log(`killing the agent of ${n2} during its join`);
      await stack.killAgent(n2);
      await stack.startAgent(n2);

      await waitForProgress(handle, (p) =>
        [n1, n2, n3].some((n) => stepStatus(p, `sync:${n}`) !== 'pending'),
      );
      log('killing the Temporal dev server');
      await stack.killTemporal();
      await stack.startTemporal();

      const result = await handle.result();
      log(`bootstrap of 3 nodes completed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      assert.deepEqual(result.nodes, [n1, n2, n3]);
      await assertSameState(stack, [n1, n2, n3]);
      await assertWrittenOnce(stack, [n1, n2, n3], /bootstrapCluster: \[.*\] formed/);
      await recordHistory(stack, handle.workflowId, 'bootstrap-cluster-with-crashes');
      await recordHistory(stack, `${handle.workflowId}/join/${n2}`, 'join-node-child');

      // ZooKeeper and Kafka serve as one cluster of three.
      await withZooKeeperClient(
        `${n2}:2181`,
        20_000,
        (zk) =>
          new Promise<void>((res, rej) =>
            zk.create('/e2e', Buffer.from('e2e'), 0, (err) => (err ? rej(err) : res())),
          ),
      );
      await zkWrite(n3, 'before-join');
      assert.deepEqual(await zkData(n1), ['before-join']);
      assert.deepEqual(await brokers([n1, n2, n3]), [n1, n2, n3]);

      // The runbook's events reached the cluster's own Kafka, though it did not run yet when
      // the first ones were published.
      // Published from the orchestrator's spool: on a loaded machine the last ones may still be
      // on their way, so read again for a while.
      const wanted = ['runbook.started', 'configuration.before-init', 'runbook.completed'];
      let types: string[] = [];
      for (let tries = 0; tries < 15; tries++) {
        types = (await consumeAll([n1, n2, n3], 'clusterguard.events', 1))
          .map((v) => JSON.parse(v) as { type: string; data: { workflowId?: string } })
          .filter((e) => e.data.workflowId === handle.workflowId)
          .map((e) => e.type);
        if (wanted.every((t) => types.includes(`io.clusterguard.${t}`))) break;
        await sleep(2000);
      }
      for (const t of wanted) {
        assert.ok(types.includes(`io.clusterguard.${t}`), `${t} in ${types.join(', ')}`);
      }
    },
  );

  test('refusals come before anything changed', { timeout: 300_000 }, async () => {
    const before = await Promise.all([n1, n2, n3].map((n) => stack.clusterFile(n)));
    const refusal = async (input: RunbookInput<'decommissionNodes'>, pattern: RegExp) => {
      const handle = await startRunbook(stack.client, 'decommissionNodes', input as never);
      assert.match(await failureOf(handle), pattern);
    };
    await refusal({ clusterId, nodes: [n5], master: n1 }, /127\.0\.0\.35 is not a member/);
    await refusal(
      { clusterId, nodes: [n1], master: n1 },
      /127\.0\.0\.31 is the master and would leave without a new master/,
    );
    await refusal(
      { clusterId, nodes: [n2, n3], master: n1 },
      /Refusing to change the membership .* would leave 1 of 2 members/s,
    );
    // 3 → 2 loses no majority, but Kafka's topics keep 3 replicas.
    await refusal(
      { clusterId, nodes: [n3], master: n1 },
      /unsafe for kafka: .*topics with 3 replicas need 3 brokers/,
    );
    const afterRefusals = await Promise.all([n1, n2, n3].map((n) => stack.clusterFile(n)));
    assert.deepEqual(afterRefusals, before, 'no cluster.json changed');
  });

  test('a dry run returns the plan and changes nothing', { timeout: 300_000 }, async () => {
    const before = await Promise.all([n1, n2, n3].map((n) => stack.clusterFile(n)));
    const handle = await startRunbook(stack.client, 'decommissionNodes', {
      clusterId,
      nodes: [n3],
      add: [n4],
      master: n1,
      dryRun: true,
    });
    const { plan, nodes, dryRun } = await handle.result();
    assert.equal(dryRun, true);
    assert.deepEqual(nodes, [n1, n2, n3]);
    assert.equal(plan.membership.kind, 'replace');
    assert.deepEqual(
      plan.membership.steps.map((s) => `${s.action} ${s.nodes.join(',')}`),
      [`add ${n4}`, `remove ${n3}`],
    );
    assert.ok(plan.quorum.every((q) => q.ok));
    assert.ok(plan.quorum.some((q) => q.middleware === 'zookeeper' && q.action === 'remove'));
    assert.deepEqual(
      plan.wipes.map((w) => w.node),
      [n3],
    );
    const ids = plan.steps.map((s) => s.id);
    assert.ok(ids.indexOf(`join:${n4}`) < ids.indexOf(`decommission:${n3}:zookeeper`));
    assert.deepEqual(await Promise.all([n1, n2, n3].map((n) => stack.clusterFile(n))), before);
  });

  test(
    'join a fourth node, paused and resumed, through SIGKILLs of all three',
    { timeout: 600_000 },
    async () => {
      const handle = await startRunbook(stack.client, 'joinNode', {
        clusterId,
        node: n4,
        master: n1,
      });
      await handle.signal(messages.pauseSignal, 'e2e: hold before the download');
      await sleep(3000);
      let progress = await handle.query(messages.progressQuery);
      assert.ok(progress.paused, 'progress shows the pause');
      // The steps before it take a second; paused, the runbook does not start the download.
      assert.ok(
        !['running', 'waiting', 'completed'].includes(
          stepStatus(progress, `download:${n4}`) ?? 'pending',
        ),
      );
      await handle.signal(messages.resumeSignal);

      await waitForProgress(handle, (p) => stepStatus(p, `download:${n4}`) === 'completed');
      log(`killing the agent of ${n4} after its download`);
      await stack.killAgent(n4);
      await stack.startAgent(n4);
      await waitForProgress(handle, (p) => stepStatus(p, `join:${n4}:kafka`) === 'running');
      log('killing the orchestrator during join kafka');
      await stack.killOrchestrator();
      await stack.startOrchestrator();
      await waitForProgress(handle, (p) => stepStatus(p, `sync:${n2}`) !== 'pending');
      log('killing the Temporal dev server during the sync');
      await stack.killTemporal();
      await stack.startTemporal();

      const result = await handle.result();
      assert.deepEqual(result.nodes, [n1, n2, n3, n4]);
      await assertSameState(stack, [n1, n2, n3, n4]);
      await assertWrittenOnce(stack, [n1, n2, n3], new RegExp(`joinNode: ${n4} joined`));
      await assertWrittenOnce(stack, [n4], /joinNode: joined/);
      assert.deepEqual(await zkData(n4), ['before-join'], 'the new member serves ZooKeeper data');
      assert.deepEqual(await brokers([n1]), [n1, n2, n3, n4]);
      progress = await handle.query(messages.progressQuery);
      assert.equal(progress.paused, undefined);
      await recordHistory(stack, handle.workflowId, 'join-node-fourth');
    },
  );

  test(
    'decommission the fourth node: reassignment, reconfig, rolling restart, through SIGKILLs',
    { timeout: 600_000 },
    async () => {
      // Data that must survive: a topic replicated three times, a znode.
      const producer = kafkaOf([n1, n2, n3]).producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { retries: 10, initialRetryTime: 300 },
      });
      await producer.connect();
      const admin = kafkaOf([n1]).admin();
      await admin.connect();
      await admin.createTopics({
        topics: [{ topic: 'ledger', numPartitions: 4, replicationFactor: 3 }],
        // kafkajs gives up on UNKNOWN_TOPIC_OR_PARTITION, which KRaft answers for a moment
        // after a create; the producer below retries until the leaders are elected.
        waitForLeaders: false,
      });
      await admin.disconnect();
      await producer.send({
        topic: 'ledger',
        acks: -1,
        messages: Array.from({ length: 100 }, (_, i) => ({ value: `m${i}` })),
      });
      await producer.disconnect();

      const handle = await startRunbook(stack.client, 'decommissionNodes', {
        clusterId,
        nodes: [n4],
      });
      await waitForProgress(handle, (p) => stepStatus(p, `decommission:${n4}:kafka`) === 'running');
      log(`killing the agent of ${n4} during its kafka decommission`);
      await stack.killAgent(n4);
      await stack.startAgent(n4);
      await waitForProgress(handle, (p) => stepStatus(p, `restart:${n2}`) === 'running');
      log(`killing the orchestrator during the restart of ${n2}`);
      await stack.killOrchestrator();
      await stack.startOrchestrator();
      await waitForProgress(handle, (p) => stepStatus(p, `health:${n3}`) !== 'pending');
      log('killing the Temporal dev server during the rolling restart');
      await stack.killTemporal();
      await stack.startTemporal();

      const result = await handle.result();
      assert.deepEqual(result.nodes, [n1, n2, n3]);
      await assertSameState(stack, [n1, n2, n3]);
      await assertWrittenOnce(stack, [n1, n2, n3], new RegExp(`decommissionNodes: ${n4} removed`));
      const gone = await stack.clusterFile(n4);
      assert.deepEqual(gone.cluster.nodes, [n4], 'the removed node is standalone');
      assert.ok(
        gone.history.some((h) => h.nodes.includes(n1)),
        'and remembers its cluster',
      );
      assert.deepEqual(await brokers([n1]), [n1, n2, n3]);
      assert.deepEqual(await zkData(n2), ['before-join']);
      const values = await consumeAll([n1, n2, n3], 'ledger', 100);
      assert.equal(new Set(values).size, 100, 'no committed message was lost');
      await recordHistory(stack, handle.workflowId, 'decommission-nodes-one');
    },
  );

  test(
    'rejoin a member whose agent and data were kept, through SIGKILLs of all three',
    { timeout: 600_000 },
    async () => {
      // The node goes down hard: agent and middleware killed, data left on disk.
      await stack.killAgent(n3);
      const { stopMiddleware } = await import('../helpers/stack.js');
      await stopMiddleware([stack.layout(n3).root]);
      await zkWrite(n1, 'while-away');
      await stack.startAgent(n3);

      const handle = await startRunbook(stack.client, 'rejoinNode', {
        clusterId,
        node: n3,
      });
      await waitForProgress(handle, (p) => stepStatus(p, `rejoin:${n3}:zookeeper`) === 'running');
      log('killing the Temporal dev server during rejoin zookeeper');
      await stack.killTemporal();
      await stack.startTemporal();
      await waitForProgress(handle, (p) => stepStatus(p, `rejoin:${n3}:kafka`) === 'running');
      log('killing the orchestrator during rejoin kafka');
      await stack.killOrchestrator();
      await stack.startOrchestrator();
      await waitForProgress(handle, (p) => stepStatus(p, `sync:${n1}`) === 'completed');
      log(`killing the agent of ${n3} before it records the membership`);
      await stack.killAgent(n3);
      await stack.startAgent(n3);
      const result = await handle.result();
      assert.deepEqual(result.nodes, [n1, n2, n3]);
      await assertWrittenOnce(stack, [n3], /rejoinNode: rejoined/);
      await assertWrittenOnce(stack, [n1, n2], new RegExp(`rejoinNode: ${n3} rejoined`));
      await assertSameState(stack, [n1, n2, n3]);
      assert.equal((await stack.clusterFile(n3)).cluster.nodeIsRejoin, true);
      assert.deepEqual(await zkData(n3), ['before-join', 'while-away']);
      const values = await consumeAll([n3], 'ledger', 100);
      assert.equal(new Set(values).size, 100);
      await recordHistory(stack, handle.workflowId, 'rejoin-node');
    },
  );

  test(
    'replace two of three (five members transiently) while clients write and read',
    { timeout: 900_000 },
    async () => {
      const committed = { zk: [] as string[], kafka: [] as string[] };
      let stop = false;
      const writer = (async () => {
        const producer = kafkaOf([n1, n2, n3, n4, n5]).producer({
          createPartitioner: Partitioners.DefaultPartitioner,
          retry: { retries: 5 },
        });
        await producer.connect();
        for (let i = 0; !stop; i++) {
          // A write counts once it is acknowledged; failures during a change may be retried by
          // the client but are not counted.
          for (const host of [n1, n5, n4]) {
            try {
              await zkWrite(host, `w${i}`);
              committed.zk.push(`w${i}`);
              break;
            } catch {
              // next member
            }
          }
          try {
            await producer.send({ topic: 'ledger', acks: -1, messages: [{ value: `r${i}` }] });
            committed.kafka.push(`r${i}`);
          } catch {
            // not acknowledged: not committed
          }
          await sleep(200);
        }
        await producer.disconnect();
      })();

      let result: MembershipRunbookResult;
      try {
        const handle = await startRunbook(stack.client, 'decommissionNodes', {
          clusterId,
          nodes: [n2, n3],
          add: [n4, n5],
          stepAttempts: 8,
        });
        await waitForProgress(handle, (p) => stepStatus(p, `join:${n5}`) === 'completed', 600_000);
        const five = await stack.clusterFile(n1);
        assert.deepEqual(five.cluster.nodes, [n1, n2, n3, n4, n5], 'five members transiently');
        result = await handle.result();
        await recordHistory(stack, handle.workflowId, 'decommission-nodes-replace-two');
      } finally {
        stop = true;
        await writer;
      }
      assert.deepEqual(result.nodes, [n1, n4, n5]);
      await assertSameState(stack, [n1, n4, n5]);
      for (const n of [n2, n3]) assert.deepEqual((await stack.clusterFile(n)).cluster.nodes, [n]);
      assert.ok(
        committed.zk.length > 10 && committed.kafka.length > 10,
        JSON.stringify(committed).slice(0, 200),
      );
      const znodes = new Set(await zkData(n5));
      assert.deepEqual(
        committed.zk.filter((w) => !znodes.has(w)),
        [],
        'every acknowledged znode is there',
      );
      const values = new Set(
        await consumeAll([n1, n4, n5], 'ledger', 100 + committed.kafka.length),
      );
      assert.deepEqual(
        committed.kafka.filter((v) => !values.has(v)),
        [],
        'every acknowledged message is there',
      );
      assert.deepEqual(await brokers([n1]), [n1, n4, n5]);
    },
  );

  test(
    'a step that exhausts its attempts parks; skipNode is refused where unsafe; retryStep and abort',
    { timeout: 600_000 },
    async () => {
      // n2 is standalone again; its agent comes back without middleware binaries.
      await stack.killAgent(n2);
      await stack.startAgent(n2, { binDir: path.join(stack.dir, 'no-binaries') });
      const handle = await startRunbook(stack.client, 'joinNode', {
        clusterId,
        node: n2,
        master: n1,
        stepAttempts: 1,
      });
      const parked = await waitForProgress(handle, (p) => (p.parked?.length ?? 0) > 0);
      const [first] = parked.parked ?? [];
      assert.equal(first?.node, n2);
      assert.equal(first?.step, `join:${n2}:zookeeper`);
      assert.match(first?.reason ?? '', /127\.0\.0\.32/);
      assert.deepEqual(first?.accepts, ['retryStep', 'abort']);
      await assert.rejects(
        handle.executeUpdate(messages.skipNodeUpdate, { args: [{ node: n2, reason: 'e2e' }] }),
        rejectedWith(
          /cannot skip join:127\.0\.0\.32:zookeeper on 127\.0\.0\.32: this step cannot be skipped/,
        ),
      );
      await assert.rejects(
        handle.executeUpdate(messages.retryStepUpdate, { args: [{ step: 'no-such-step' }] }),
        rejectedWith(/step no-such-step is not parked/),
      );
      // The operator repairs the node, then retries the step.
      await stack.killAgent(n2);
      await stack.startAgent(n2);
      assert.match(
        await handle.executeUpdate(messages.retryStepUpdate, { args: [{}] }),
        /retrying join:127\.0\.0\.32:zookeeper/,
      );
      const result = await handle.result();
      assert.deepEqual(result.nodes, [n1, n4, n5, n2]);
      await assertSameState(stack, [n1, n4, n5, n2]);
      await recordHistory(stack, handle.workflowId, 'join-node-parked-then-retried');

      // An abort leaves the cluster as the failure says.
      await stack.killAgent(n3);
      await stack.startAgent(n3, { binDir: path.join(stack.dir, 'no-binaries') });
      const doomed = await startRunbook(stack.client, 'joinNode', {
        clusterId,
        node: n3,
        master: n1,
        stepAttempts: 1,
      });
      await waitForProgress(doomed, (p) => (p.parked?.length ?? 0) > 0);
      await doomed.executeUpdate(messages.abortUpdate, {
        args: [{ reason: 'e2e: node is broken' }],
      });
      const message = await failureOf(doomed);
      assert.match(
        message,
        /aborted by an operator at step join:127\.0\.0\.33:zookeeper: e2e: node is broken/,
      );
      assert.match(message, /State: 127\.0\.0\.33's middleware is stopped/);
      await assertSameState(stack, [n1, n4, n5, n2]);
      assert.deepEqual((await stack.clusterFile(n3)).cluster.nodes, [n3]);
      await stack.killAgent(n3);
      await stack.startAgent(n3);
    },
  );

  test(
    'bootstrapping a formed cluster again keeps its data: former members rejoin while the master creates',
    { timeout: 600_000 },
    async () => {
      const members = [n1, n4, n5, n2];
      const znodes = await zkData(n1);
      const written = await consumeAll(
        members,
        'ledger',
        await highWatermarks(members, 'ledger'),
        'records',
      );
      const handle = await startRunbook(stack.client, 'bootstrapCluster', {
        clusterId,
        nodes: members,
      });
      const result = await handle.result();
      assert.deepEqual(result.nodes, members);
      assert.deepEqual(
        result.plan.wipes.map((w) =>
          w.what.some((t) => /formatted for this cluster as the same node/.test(t)),
        ),
        [true, true, true],
        'the former members rejoin',
      );
      await assertSameState(stack, members);
      assert.deepEqual(await zkData(n2), znodes, 'ZooKeeper data kept');
      assert.ok(written.length >= 100, `${written.length} messages before`);
      assert.deepEqual(
        new Set(await consumeAll(members, 'ledger', written.length, 'records')),
        new Set(written),
        'every Kafka message kept',
      );
      assert.ok(
        result.inSync?.some((l) => /^kafka: all \d+ partitions/.test(l)),
        result.inSync?.join('; '),
      );
      assert.deepEqual(await brokers([n1]), [...members].sort());
      await recordHistory(stack, handle.workflowId, 'bootstrap-cluster-again');
    },
  );
});
