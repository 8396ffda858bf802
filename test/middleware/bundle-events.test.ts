import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { pushBundle } from '../../src/bundles/client.js';
import { NodeLayout } from '../../src/config/layout.js';
import { eventsTopic, type CloudEvent } from '../../src/contracts/events.js';
import { createLogger } from '../../src/logger.js';
import {
  createKafkaAdapter,
  newKafkaClusterId,
  type KafkaAdapter,
} from '../../src/middleware/kafka/index.js';
import { repoRoot } from '../../src/process.js';
import { freePort, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { startRunbook } from '../../src/client/index.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { writeTestJar } from '../helpers/bundles.js';
import { startTestOrchestrator, type TestOrchestrator } from '../helpers/temporal.js';

// Addresses of this file's own: the broker and one agent.
const kafkaAddress = '127.0.0.45';
const broker = `${kafkaAddress}:9092`;
const agent = '127.0.0.46';
const binDir = process.env.CG_KAFKA_BIN_DIR ?? path.join(repoRoot, '.tools');

describe('bundle events reach a Kafka consumer', { timeout: 180_000 }, () => {
  let root: string;
  let adapter: KafkaAdapter;
  let server: DevServer;
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  let consumer: Consumer | undefined;
  const received: CloudEvent[] = [];
  // The old service's topic and what its consumers read from it.
  const legacyTopic = 'test';
  const legacy: { channel: string; message: string }[] = [];

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'cg-bundle-events-'));
    adapter = createKafkaAdapter({
      address: kafkaAddress,
      layout: new NodeLayout(path.join(root, 'kafka')),
      binDir,
      logger: createLogger('bundle-events-test', 'warn'),
      options: { heapMb: 256, serverProperties: { 'group.initial.rebalance.delay.ms': '0' } },
      operationOptions: { stopServer: { timeoutMs: 10_000 }, createCluster: { timeoutMs: 90_000 } },
    });
    // The middleware suite has no Temporal server: this file starts its own.
    const started = adapter.createCluster({
      nodes: [kafkaAddress],
      decommissionNodes: [],
      memberIds: { [kafkaAddress]: 1 },
      clusterUuid: newKafkaClusterId(),
    });
    server = await startDevServer({
      binary: process.env.CG_TEMPORAL_BIN ?? path.join(repoRoot, '.tools', 'bin', 'temporal'),
      port: await freePort(),
      headless: true,
    });
    process.env.CG_TEST_TEMPORAL_ADDRESS = server.address;
    process.env.CG_TEST_TEMPORAL_NAMESPACE = server.namespace;
    // The orchestrator of the test publishes runbook events to this broker.
    process.env.CG_TEST_KAFKA_BROKERS = broker;
    [orchestrator, cluster] = await Promise.all([
      // The orchestrator's whole bundle: a rollout asks the cluster's admission workflow first.
      startTestOrchestrator(),
      startTestCluster([agent], {
        env: () => ({
          CG_EVENTS__BROKERS: broker,
          CG_BUNDLES__LEGACY_ANNOUNCEMENT__TOPIC: legacyTopic,
          CG_BUNDLES__LEGACY_ANNOUNCEMENT__CHANNEL: 'bundle',
        }),
      }),
      started,
    ]);
    const kafka = new Kafka({
      clientId: 'bundle-events-test',
      brokers: [broker],
      logLevel: logLevel.NOTHING,
      retry: { retries: 8, initialRetryTime: 300 },
    });
    // Subscribing to a topic that does not exist yet fails; the publishers would create it later.
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: eventsTopic }, { topic: legacyTopic }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    // A short fetch wait: disconnecting otherwise waits out a 5 s fetch.
    consumer = kafka.consumer({ groupId: `bundle-events-${Date.now()}`, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topics: [eventsTopic, legacyTopic], fromBeginning: true });
    await consumer.run({
      eachMessage: ({ topic, message }) => {
        if (topic === legacyTopic) {
          legacy.push(JSON.parse(message.value?.toString() ?? 'null') as (typeof legacy)[0]);
          return Promise.resolve();
        }
        received.push(JSON.parse(message.value?.toString() ?? 'null') as CloudEvent);
        return Promise.resolve();
      },
    });
  });

  after(async () => {
    await Promise.all([
      consumer?.disconnect().catch(() => undefined),
      orchestrator?.close(),
      cluster?.close(),
    ]);
    await adapter?.stopServer().catch(() => undefined);
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const waitForEvent = async (type: string) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const e = received.find((r) => r.type === type);
      if (e) return e;
      if (Date.now() > deadline) {
        throw new Error(`no ${type} within 60 s; got ${received.map((r) => r.type).join(', ')}`);
      }
      await sleep(200);
    }
  };

  test('bundle.available after an upload, bundle.installed after a rollout', async () => {
    const jar = await writeTestJar(path.join(root, 'events.jar'), {
      symbolicName: 'com.example.events',
      version: '1.2.3',
    });
    await pushBundle({ url: `http://${agent}:${cluster.port}`, token: cluster.token }, jar.file);
    const available = await waitForEvent('io.clusterguard.bundle.available');
    assert.equal(available.subject, 'com.example.events');
    assert.deepEqual(
      [available.data.node, available.data.version, available.data.sha256],
      [agent, '1.2.3', jar.sha256],
    );
    // A consumer of the old service: filter on the channel, read symbolicname from the message.
    const deadline = Date.now() + 30_000;
    while (legacy.length === 0 && Date.now() < deadline) await sleep(200);
    assert.equal(legacy.length, 1, 'one announcement on the legacy topic');
    assert.equal(legacy[0]?.channel, 'bundle');
    const old = JSON.parse(legacy[0]?.message ?? '{}') as Record<string, unknown>;
    assert.equal(old.symbolicname, 'com.example.events');
    assert.equal(old.version, '1.2.3');

    const clusterId = `bundle-events-${process.pid}`;
    const handle = await startRunbook(
      orchestrator.client,
      'rolloutBundle',
      { clusterId, sha256: jar.sha256, nodes: [agent] },
      { symbolicName: 'com.example.events', taskQueue: orchestrator.taskQueue },
    );
    assert.equal((await handle.result()).outcome, 'completed');
    const installed = await waitForEvent('io.clusterguard.bundle.installed');
    assert.equal(installed.subject, agent);
    assert.equal(installed.source, `/clusterguard/clusters/${clusterId}`);
    assert.deepEqual(
      [installed.data.node, installed.data.version, installed.data.sha256, installed.data.previous],
      [agent, '1.2.3', jar.sha256, null],
    );
    assert.equal(installed.data.workflowId, `cg/${clusterId}/bundle/com.example.events`);
  });
});
