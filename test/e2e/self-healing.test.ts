import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { orchestratorTaskQueue } from '../../src/contracts/addresses.js';
import type { ServerHealth } from '../../src/agent/supervisor.js';
import { fourLetterWord, parseSrvr, servingModes } from '../../src/middleware/zookeeper/wire.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { kafkaClient, Traffic, type TrafficReport } from '../helpers/traffic.js';

/**
 * The self-healing node (docs/design.md): a node agent starts again a server of its node that
 * died, and leaves one that keeps failing stopped and reported. Three loopback nodes with real
 * ZooKeeper and Kafka (127.0.0.191–.193), a client writing all the time.
 */

const [a, b, c] = ['127.0.0.191', '127.0.0.192', '127.0.0.193'] as const;
const clusterId = 'heal';
const log = (msg: string) => console.error(`[self-healing] ${msg}`);

async function pidOf(stack: Stack, node: string, mw: 'zookeeper' | 'kafka'): Promise<number> {
  const file = path.join(stack.layout(node).nodeDataRoot, mw, `${mw}.pid`);
  return Number((await readFile(file, 'utf8')).trim());
}

async function supervisorOf(stack: Stack, node: string): Promise<ServerHealth[]> {
  const res = await fetch(`http://${node}:${stack.agentPort}/healthz`);
  const body = (await res.json()) as { supervisor?: { servers: ServerHealth[] } };
  return body.supervisor?.servers ?? [];
}

async function zkServes(node: string): Promise<boolean> {
  try {
    const mode = parseSrvr(await fourLetterWord(node, 2181, 'srvr')).mode;
    return mode !== undefined && servingModes.has(mode);
  } catch {
    return false;
  }
}

/** Broker ids registered with the controller. */
async function brokers(nodes: string[]): Promise<number[]> {
  const admin = kafkaClient(nodes, 9092, 'heal-admin').admin();
  await admin.connect();
  try {
    return (await admin.describeCluster()).brokers.map((br) => br.nodeId).sort();
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

function describeReport(r: TrafficReport): string {
  return (
    `${r.zkAcknowledged} znodes and ${r.kafkaAcknowledged} messages acknowledged; ` +
    `lost ${r.zkLost.length} znodes, ${r.kafkaLost.length} messages`
  );
}

describe('a node agent heals its node (real ZooKeeper and Kafka)', () => {
  let stack: Stack;
  let traffic: Traffic;

  before(async () => {
    stack = await startStack([a, b, c], {
      // Short backoff, so that five failed starts take seconds, not minutes.
      agentEnv: () => ({
        CG_AGENT__SUPERVISOR__ENABLED: 'true',
        CG_AGENT__SUPERVISOR__INTERVAL_MS: '500',
        CG_AGENT__SUPERVISOR__INITIAL_BACKOFF_MS: '200',
        CG_AGENT__SUPERVISOR__MAX_BACKOFF_MS: '1000',
        // A server that ran 5 s counts as started well: the kill in the second test is not
        // counted as a failed start of the restart in the first.
        CG_AGENT__SUPERVISOR__STABLE_MS: '5000',
      }),
    });
    const handle = await stack.client.workflow.start('bootstrapCluster', {
      args: [{ clusterId, nodes: [a, b, c] }],
      taskQueue: orchestratorTaskQueue,
      workflowId: `cg/${clusterId}/membership`,
    });
    await handle.result();
    traffic = new Traffic({ nodes: [a, b, c], topic: 'ledger', zkPath: '/heal' });
    await traffic.start();
  });
  after(async () => {
    await traffic?.stop();
    await stack?.close();
  });

  test(
    'ZooKeeper and Kafka SIGKILLed on one node come back by themselves',
    { timeout: 180_000 },
    async () => {
      const zkPid = await pidOf(stack, c, 'zookeeper');
      const kafkaPid = await pidOf(stack, c, 'kafka');
      const brokersBefore = await brokers([a, b, c]);
      assert.equal(brokersBefore.length, 3);
      const killedAt = Date.now();
      process.kill(zkPid, 'SIGKILL');
      process.kill(kafkaPid, 'SIGKILL');
      log(`killed ZooKeeper (pid ${zkPid}) and Kafka (pid ${kafkaPid}) of ${c}`);

      const zkBack = await until(
        'ZooKeeper of the killed node serves again',
        async () => ((await zkServes(c)) ? Date.now() - killedAt : undefined),
        120_000,
      );
      const kafkaBack = await until(
        'Kafka of the killed node is a registered broker again',
        async () =>
          (await pidOf(stack, c, 'kafka')) !== kafkaPid && (await brokers([a, b])).length === 3
            ? Date.now() - killedAt
            : undefined,
        120_000,
      );
      log(`ZooKeeper served again after ${zkBack} ms, Kafka after ${kafkaBack} ms (from the kill)`);
      assert.notEqual(await pidOf(stack, c, 'zookeeper'), zkPid, 'a new ZooKeeper process');

      // The agent counts a start done when the server is ready by its own checks.
      const servers = await until(
        'the agent reports both running',
        async () => {
          const list = await supervisorOf(stack, c);
          return list.filter((x) => x.state === 'running').length === 2 ? list : undefined;
        },
        120_000,
      );
      for (const mw of ['zookeeper', 'kafka']) {
        const s = servers.find((x) => x.server === mw);
        assert.equal(s?.state, 'running', `${mw}: ${s?.detail}`);
        assert.equal(s?.restarts, 1, `${mw} restarted once by the agent`);
        log(`agent: ${mw} recovered in ${s?.lastRecoveryMs} ms (from seeing it down)`);
      }
      const line = (stack.lines.get(`agent ${c}`) ?? []).find((l) =>
        l.includes('supervisor: kafka restarted'),
      );
      assert.ok(line, 'the agent logs the restart');

      // The ensemble is whole: every member serves under one leader.
      const modes = await Promise.all(
        [a, b, c].map(async (n) => parseSrvr(await fourLetterWord(n, 2181, 'srvr')).mode),
      );
      assert.equal(modes.filter((m) => m === 'leader').length, 1, `modes: ${modes.join(', ')}`);
      assert.equal(modes.filter((m) => m === 'follower').length, 2, `modes: ${modes.join(', ')}`);
      assert.deepEqual(await brokers([a, b, c]), brokersBefore);

      const written = traffic.kafkaAcked.length;
      await until(
        'the client writes again',
        () => Promise.resolve(traffic.kafkaAcked.length > written + 5 ? true : undefined),
        60_000,
      );
      await until(
        'every partition in sync again',
        async () =>
          (await traffic.describe()).every(
            (p) => p.leader >= 0 && p.isr.length === p.replicas.length,
          )
            ? true
            : undefined,
        60_000,
      );
      const report = await traffic.verify();
      log(describeReport(report));
      assert.deepEqual(report.zkLost, []);
      assert.deepEqual(report.kafkaLost.slice(0, 20), []);
    },
  );

  test(
    'a server that fails to start five times is left stopped and reported',
    { timeout: 420_000 },
    async () => {
      const kafkaPid = await pidOf(stack, c, 'kafka');
      // Its port taken by another process: every start of Kafka on that node fails.
      const squatter = net.createServer((s) => s.destroy());
      process.kill(kafkaPid, 'SIGKILL');
      await until(
        'the port is free',
        () =>
          new Promise<true | undefined>((resolve) => {
            squatter.once('error', () => resolve(undefined));
            squatter.listen(9092, c, () => resolve(true));
          }),
        30_000,
      );
      try {
        const failed = await until(
          'the agent gives up on Kafka',
          async () =>
            (await supervisorOf(stack, c)).find(
              (s) => s.server === 'kafka' && s.state === 'failed',
            ),
          // Five JVM starts that fail, with backoff: under load each takes up to a minute.
          360_000,
        );
        assert.equal(failed.failures, 5, failed.detail);
        assert.match(failed.detail, /left stopped after 5 failed starts in a row/);
        const lines = stack.lines.get(`agent ${c}`) ?? [];
        assert.equal(lines.filter((l) => l.includes('supervisor: kafka did not start')).length, 5);
        assert.ok(
          lines.some((l) => l.includes('supervisor: kafka gave-up')),
          'the give-up is logged',
        );
        // The event, on the cluster's Kafka.
        const event = await readEvent('io.clusterguard.server.gave-up');
        assert.equal((event.data as { node?: string }).node, c);
        // No sixth attempt, however long one waits.
        await sleep(3000);
        assert.equal(
          (stack.lines.get(`agent ${c}`) ?? []).filter((l) =>
            l.includes('supervisor: kafka did not start'),
          ).length,
          5,
        );
        const kafka = (await supervisorOf(stack, c)).find((s) => s.server === 'kafka');
        assert.equal(kafka?.state, 'failed');
      } finally {
        await new Promise((resolve) => squatter.close(resolve));
      }
    },
  );
});

async function readEvent(type: string): Promise<{ type: string; data: unknown }> {
  const consumer = kafkaClient([a, b], 9092, 'heal-events').consumer({
    groupId: `heal-events-${Date.now()}`,
  });
  await consumer.connect();
  const found: { type: string; data: unknown }[] = [];
  try {
    await consumer.subscribe({ topic: 'clusterguard.events', fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        const e = JSON.parse(message.value?.toString() ?? '{}') as { type: string; data: unknown };
        if (e.type === type) found.push(e);
        return Promise.resolve();
      },
    });
    const deadline = Date.now() + 60_000;
    while (found.length === 0 && Date.now() < deadline) await sleep(250);
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  assert.ok(found[0], `an event ${type} on clusterguard.events`);
  return found[0];
}
