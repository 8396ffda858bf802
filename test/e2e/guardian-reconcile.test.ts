import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { guardianState, setGuardianMembership, startRunbook } from '../../src/client/index.js';
import { orchestratorTaskQueue } from '../../src/contracts/addresses.js';
import type { GuardianState } from '../../src/contracts/guardian.js';
import { fourLetterWord, parseSrvr } from '../../src/middleware/zookeeper/wire.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { kafkaClient } from '../helpers/traffic.js';

/**
 * The guardian reconciles for real (not dry runs): it grows a 2-node cluster to 3 and shrinks it
 * back, with real ZooKeeper and Kafka on 127.0.0.196–.198, and shows every member healthy.
 */

const [a, b, c] = ['127.0.0.196', '127.0.0.197', '127.0.0.198'] as const;
const clusterId = 'heal-guard';
const log = (msg: string) => console.error(`[guardian-reconcile] ${msg}`);

async function brokers(nodes: string[]): Promise<number> {
  const admin = kafkaClient(nodes, 9092, 'guard-admin').admin();
  await admin.connect();
  try {
    return (await admin.describeCluster()).brokers.length;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Members of the ZooKeeper ensemble as one server sees it: its mode and its voters. */
async function zkModes(nodes: string[]): Promise<(string | undefined)[]> {
  return Promise.all(
    nodes.map(async (n) => parseSrvr(await fourLetterWord(n, 2181, 'srvr').catch(() => '')).mode),
  );
}

describe('the guardian grows and shrinks a cluster for real', () => {
  let stack: Stack;

  async function waitForState(
    predicate: (s: GuardianState) => boolean,
    timeoutMs: number,
  ): Promise<GuardianState> {
    const deadline = Date.now() + timeoutMs;
    let last: GuardianState | undefined;
    for (;;) {
      last = await guardianState(stack.client, clusterId).catch(() => last);
      if (last && predicate(last)) return last;
      if (Date.now() > deadline)
        throw new Error(`guardian state never matched: ${JSON.stringify(last?.lastCheck)}`);
      await sleep(500);
    }
  }

  before(async () => {
    stack = await startStack([a, b, c], {
      // Topics made while three brokers run would get three replicas, and then two brokers
      // cannot hold them: decommissionNodes refuses that shrink, as it must. Two replicas let
      // the cluster shrink back.
      agentEnv: () => ({
        CG_MIDDLEWARE__KAFKA__REPLICATION_FACTOR: '2',
        CG_AGENT__SUPERVISOR__ENABLED: 'true',
      }),
    });
    const handle = await stack.client.workflow.start('bootstrapCluster', {
      args: [{ clusterId, nodes: [a, b] }],
      taskQueue: orchestratorTaskQueue,
      workflowId: `cg/${clusterId}/membership`,
    });
    await handle.result();
    await startRunbook(
      stack.client,
      'clusterGuardian',
      { clusterId, master: a, desired: [a, b], intervalSeconds: 1 },
      { taskQueue: orchestratorTaskQueue },
    );
    await waitForState(
      (s) => s.lastCheck?.outcome === 'in-sync' && s.health?.[a]?.healthy === true,
      60_000,
    );
  });
  after(async () => {
    await stack?.client.workflow
      .getHandle(`cg/${clusterId}/guardian`)
      .terminate('test over')
      .catch(() => undefined);
    await stack?.close();
  });

  test('grows [a, b] to [a, b, c]: joinNode runs for real', { timeout: 300_000 }, async () => {
    const t0 = Date.now();
    await setGuardianMembership(stack.client, clusterId, { nodes: [a, b, c], reason: 'grow' });
    const state = await waitForState(
      (s) => s.lastCheck?.outcome === 'reconciled' || s.lastCheck?.outcome === 'failed',
      240_000,
    );
    assert.equal(state.lastCheck?.outcome, 'reconciled', state.lastCheck?.message);
    log(`grown in ${Date.now() - t0} ms`);
    assert.equal(state.lastChild?.runbook, 'joinNode');
    assert.equal(state.lastChild?.dryRun, false);
    for (const n of [a, b, c]) {
      const file = await stack.clusterFile(n);
      assert.deepEqual(file.cluster.nodes, [a, b, c], `cluster.json of ${n}`);
    }
    const modes = await zkModes([a, b, c]);
    assert.equal(modes.filter((m) => m === 'leader').length, 1, modes.join(','));
    assert.equal(modes.filter((m) => m === 'follower').length, 2, modes.join(','));
    assert.equal(await brokers([a, b, c]), 3);
    // The new member shows healthy once its agent supervises its servers.
    const healthy = await waitForState(
      (s) => [a, b, c].every((n) => s.health?.[n]?.healthy === true),
      60_000,
    );
    assert.deepEqual(Object.keys(healthy.health ?? {}).sort(), [a, b, c]);
  });

  test(
    'shrinks [a, b, c] back to [a, b]: decommissionNodes runs for real',
    { timeout: 300_000 },
    async () => {
      const t0 = Date.now();
      await setGuardianMembership(stack.client, clusterId, { nodes: [a, b], reason: 'shrink' });
      const state = await waitForState(
        (s) =>
          s.desired?.nodes.length === 2 &&
          (s.lastCheck?.outcome === 'reconciled' ||
            s.lastCheck?.outcome === 'failed' ||
            s.lastCheck?.outcome === 'unsafe'),
        240_000,
      );
      assert.equal(state.lastCheck?.outcome, 'reconciled', state.lastCheck?.message);
      log(`shrunk in ${Date.now() - t0} ms`);
      assert.equal(state.lastChild?.runbook, 'decommissionNodes');
      assert.equal(state.lastChild?.dryRun, false);
      for (const n of [a, b]) {
        const file = await stack.clusterFile(n);
        assert.deepEqual(file.cluster.nodes, [a, b], `cluster.json of ${n}`);
      }
      assert.deepEqual(
        await zkModes([c]),
        [undefined],
        'the decommissioned node serves no ZooKeeper',
      );
      const modes = await zkModes([a, b]);
      assert.deepEqual([...modes].sort(), ['follower', 'leader']);
      assert.equal(await brokers([a, b]), 2);
      // The decommissioned node's agent does not bring its servers back: it is no member.
      await sleep(3000);
      assert.deepEqual(await zkModes([c]), [undefined]);
      const after = await waitForState((s) => Object.keys(s.health ?? {}).length === 2, 30_000);
      assert.ok(
        [a, b].every((n) => after.health?.[n]?.healthy),
        JSON.stringify(after.health),
      );
    },
  );
});
