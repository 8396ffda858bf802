import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { notSetUp } from '../../src/agent/set-up.js';
import { Supervision } from '../../src/agent/supervision.js';
import { startNodeSupervisor, type SupervisedServer } from '../../src/agent/supervisor.js';
import { NodeLayout } from '../../src/config/layout.js';
import { defaultClusterFile } from '../../src/contracts/cluster-file.js';
import type { Logger } from '../../src/logger.js';

const quiet: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * The supervisor restarts only what ran before (docs/design.md, "Self-healing node"): a server
 * whose configuration or data a runbook has not set up on this node is left alone, however
 * often it is looked at, and its health says why. Its files are real files in a node layout.
 */
describe('the supervisor never creates a server', () => {
  let root: string;
  let layout: NodeLayout;
  const address = '127.0.0.191';
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'cg-node-supervisor-'));
    layout = new NodeLayout(root);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('what a node needs before its servers are restarted', async () => {
    assert.match((await notSetUp(layout, 'kafka')) ?? '', /no configuration/);
    await mkdir(layout.nodeConfigFolder('kafka'), { recursive: true });
    await writeFile(path.join(layout.nodeConfigFolder('kafka'), 'clusterguard-kafka.json'), '{}');
    assert.match((await notSetUp(layout, 'kafka')) ?? '', /no formatted storage/);
    await mkdir(layout.nodeDataFolder('kafka'), { recursive: true });
    await writeFile(path.join(layout.nodeDataFolder('kafka'), 'meta.properties'), 'node.id=1\n');
    assert.equal(await notSetUp(layout, 'kafka'), undefined);

    await mkdir(layout.nodeConfigFolder('zookeeper'), { recursive: true });
    await writeFile(path.join(layout.nodeConfigFolder('zookeeper'), 'zoo.cfg'), 'tickTime=2000\n');
    assert.match((await notSetUp(layout, 'zookeeper')) ?? '', /no ensemble data/);
    await mkdir(path.join(layout.nodeDataFolder('zookeeper'), 'version-2'), { recursive: true });
    assert.equal(await notSetUp(layout, 'zookeeper'), undefined);
  });

  test('a member whose Kafka has no data: ZooKeeper is restarted, Kafka is never started', async () => {
    const kafkaLayout = new NodeLayout(path.join(root, 'other'));
    await mkdir(path.join(kafkaLayout.nodeDataFolder('zookeeper'), 'version-2'), {
      recursive: true,
    });
    await mkdir(kafkaLayout.nodeConfigFolder('zookeeper'), { recursive: true });
    await writeFile(path.join(kafkaLayout.nodeConfigFolder('zookeeper'), 'zoo.cfg'), '\n');
    const running = new Set<SupervisedServer>();
    const starts: SupervisedServer[] = [];
    const supervisor = startNodeSupervisor({
      address,
      enabled: ['zookeeper', 'kafka'],
      supervision: Supervision.forConfFolder(path.join(root, 'other'), quiet),
      loadClusterFile: () => Promise.resolve(defaultClusterFile(new Date(), address)),
      isRunning: (server) => Promise.resolve(running.has(server)),
      notSetUp: (server) => notSetUp(kafkaLayout, server),
      start: (server) => {
        starts.push(server);
        running.add(server);
        return Promise.resolve();
      },
      logger: quiet,
      options: { intervalMs: 20 },
    });
    try {
      await sleep(300);
      const health = supervisor.health();
      assert.deepEqual(starts, ['zookeeper']);
      const kafka = health.servers.find((s) => s.server === 'kafka');
      assert.equal(kafka?.state, 'unsupervised');
      assert.match(kafka?.detail ?? '', /not set up on this node \(no configuration/);
      assert.equal(kafka?.failures, 0);
    } finally {
      await supervisor.stop();
    }
  });
});
