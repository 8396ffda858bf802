import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { NodeLayout } from '../../src/config/layout.js';
import {
  eventsTopic,
  type CloudEvent,
  type RunbookEvent,
  type RunbookEventType,
} from '../../src/contracts/events.js';
import { createEventPublisher, type EventPublisher } from '../../src/events/publisher.js';
import { createLogger, type Logger } from '../../src/logger.js';
import {
  createKafkaAdapter,
  newKafkaClusterId,
  type KafkaAdapter,
} from '../../src/middleware/kafka/index.js';
import { repoRoot } from '../../src/process.js';

// Other middleware tests use .11–.13: this file's broker has an address of its own.
const address = '127.0.0.14';
const broker = `${address}:9092`;
const binDir = process.env.CG_KAFKA_BIN_DIR ?? path.join(repoRoot, '.tools');
const quiet = createLogger('events-test', 'warn');

interface Entry {
  level: keyof Logger;
  message: string;
}

function recordingLogger(): { logger: Logger; entries: Entry[] } {
  const entries: Entry[] = [];
  const at = (level: keyof Logger) => (message: string) => {
    entries.push({ level, message });
  };
  return {
    entries,
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
  };
}

let seq = 0;
function event(clusterId: string, id: string, type: RunbookEventType): RunbookEvent {
  seq += 1;
  return {
    id,
    type,
    clusterId,
    runbook: 'addNode',
    workflowId: `cg/${clusterId}/add/1`,
    subject: address,
    time: new Date(Date.UTC(2026, 10, 22, 7, 50, seq)).toISOString(),
    data: { seq },
  };
}

/** Resolves with 'spooled', or 'waited' when enqueue is still busy after 2 s. */
const enqueueRace = (publisher: EventPublisher, e: RunbookEvent) =>
  Promise.race([
    publisher.enqueue(e).then(() => 'spooled' as const),
    sleep(2000).then(() => 'waited' as const),
  ]);

const spooledIds = async (file: string) =>
  (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as RunbookEvent).id);

interface Received {
  partition: number;
  offset: string;
  key: string | null;
  contentType: string | undefined;
  event: CloudEvent;
}

describe('runbook events to a real Kafka broker', { timeout: 150_000 }, () => {
  let root: string;
  let adapter: KafkaAdapter;
  let consumer: Consumer | undefined;
  const publishers: EventPublisher[] = [];
  // One consumer for the whole file; kept by partition/offset because a rebalance may deliver a
  // partition again from its start.
  const received = new Map<string, Received>();
  const inOrder = () =>
    [...received.values()].sort(
      (x, y) => x.partition - y.partition || Number(BigInt(x.offset) - BigInt(y.offset)),
    );
  const idsOf = (clusterId: string) =>
    inOrder()
      .filter((r) => r.key === clusterId)
      .map((r) => r.event.id);
  const waitForIds = async (clusterId: string, count: number) => {
    const deadline = Date.now() + 30_000;
    while (idsOf(clusterId).length < count && Date.now() < deadline) await sleep(200);
    // A little longer, so that a duplicate would have arrived too.
    await sleep(1000);
    return idsOf(clusterId);
  };

  const first = recordingLogger();
  let spoolA: string;
  let spoolB: string;
  let publisherA: EventPublisher;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), `cg-events-${address}-`));
    spoolA = path.join(root, 'a', 'events-spool.jsonl');
    spoolB = path.join(root, 'b', 'events-spool.jsonl');
    adapter = createKafkaAdapter({
      address,
      layout: new NodeLayout(path.join(root, 'node')),
      binDir,
      logger: quiet,
      options: {
        heapMb: 256,
        // The test's consumer group would otherwise wait 3 s for more members.
        serverProperties: { 'group.initial.rebalance.delay.ms': '0' },
      },
      operationOptions: { stopServer: { timeoutMs: 10_000 }, createCluster: { timeoutMs: 60_000 } },
    });
  });

  after(async () => {
    await Promise.all(publishers.map((p) => p.close()));
    await consumer?.disconnect().catch(() => undefined);
    await adapter.stopServer().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  const publisher = (spoolFile: string, logger: Logger) => {
    const p = createEventPublisher({
      brokers: () => [broker],
      spoolFile,
      logger,
      clientId: 'events-test',
      retry: { initialMs: 200, maxMs: 1000 },
    });
    publishers.push(p);
    return p;
  };

  test('while Kafka is down, enqueue returns without waiting and keeps the events in the spool', async () => {
    publisherA = publisher(spoolA, first.logger);
    const types: RunbookEventType[] = [
      'io.clusterguard.runbook.started',
      'io.clusterguard.configuration.before-change',
      'io.clusterguard.configuration.after-change',
    ];
    for (const [i, type] of types.entries()) {
      assert.equal(await enqueueRace(publisherA, event('plant-a', `a-${i}`, type)), 'spooled');
    }
    assert.equal(publisherA.pending(), 3);
    assert.deepEqual(await spooledIds(spoolA), ['a-0', 'a-1', 'a-2']);

    // A second publisher stops before Kafka is there: a crashed orchestrator's spool.
    const second = publisher(spoolB, recordingLogger().logger);
    for (const id of ['b-0', 'b-1'])
      assert.equal(
        await enqueueRace(second, event('plant-b', id, 'io.clusterguard.server.before-start')),
        'spooled',
      );
    await second.close();
    assert.deepEqual(await spooledIds(spoolB), ['b-0', 'b-1']);

    // Several attempts fail meanwhile, with one warning for all of them.
    await sleep(1500);
    assert.equal(publisherA.pending(), 3);
    const warnings = first.entries.filter((e) => e.level === 'warn');
    assert.equal(warnings.length, 1, JSON.stringify(first.entries));
    assert.match(warnings[0]!.message, /unreachable/);
  });

  test('once the broker is up, they are delivered in order as CloudEvents keyed by cluster', async () => {
    await adapter.createCluster({
      nodes: [address],
      decommissionNodes: [],
      memberIds: { [address]: 1 },
      clusterUuid: newKafkaClusterId(),
    });
    assert.equal(await publisherA.flush(30_000), 0);
    assert.deepEqual(await spooledIds(spoolA), []);
    const infos = first.entries.filter(
      (e) => e.level === 'info' && /reachable again/.test(e.message),
    );
    assert.equal(infos.length, 1, JSON.stringify(first.entries));

    consumer = new Kafka({
      clientId: 'events-test-consumer',
      brokers: [broker],
      logLevel: logLevel.NOTHING,
      retry: { retries: 8, initialRetryTime: 300 },
    }).consumer({ groupId: `events-test-${Date.now()}` });
    await consumer.connect();
    await consumer.subscribe({ topics: [eventsTopic], fromBeginning: true });
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        received.set(`${partition}/${message.offset}`, {
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          contentType: message.headers?.['content-type']?.toString(),
          event: JSON.parse(message.value?.toString() ?? 'null') as CloudEvent,
        });
        return Promise.resolve();
      },
    });

    assert.deepEqual(await waitForIds('plant-a', 3), ['a-0', 'a-1', 'a-2']);
    const got = inOrder().filter((r) => r.key === 'plant-a');
    for (const r of got) {
      assert.equal(r.contentType, 'application/cloudevents+json; charset=UTF-8');
      assert.equal(r.event.specversion, '1.0');
      assert.equal(r.event.source, '/clusterguard/clusters/plant-a');
      assert.equal(r.event.datacontenttype, 'application/json');
      assert.equal(r.event.subject, address);
      assert.ok(!Number.isNaN(Date.parse(r.event.time)));
      assert.equal(r.event.data.clusterId, 'plant-a');
      assert.equal(r.event.data.runbook, 'addNode');
      assert.equal(r.event.data.workflowId, 'cg/plant-a/add/1');
      assert.equal(typeof r.event.data.seq, 'number');
    }
    assert.deepEqual(
      got.map((r) => r.event.type),
      [
        'io.clusterguard.runbook.started',
        'io.clusterguard.configuration.before-change',
        'io.clusterguard.configuration.after-change',
      ],
    );
  });

  test('a publisher started on the spool of a stopped one delivers what it had not sent', async () => {
    const restarted = publisher(spoolB, recordingLogger().logger);
    assert.equal(restarted.pending(), 2);
    assert.equal(await restarted.flush(30_000), 0);
    assert.deepEqual(await spooledIds(spoolB), []);
    assert.deepEqual(await waitForIds('plant-b', 2), ['b-0', 'b-1']);
  });

  test('an id enqueued twice, or again after it was sent, is published once', async () => {
    const once = event('plant-a', 'a-3', 'io.clusterguard.runbook.completed');
    await Promise.all([publisherA.enqueue(once), publisherA.enqueue({ ...once })]);
    await publisherA.enqueue(event('plant-a', 'a-0', 'io.clusterguard.runbook.started'));
    assert.equal(publisherA.pending() <= 1, true);
    assert.equal(await publisherA.flush(30_000), 0);
    assert.deepEqual(await waitForIds('plant-a', 4), ['a-0', 'a-1', 'a-2', 'a-3']);
    assert.equal(received.size, 6);
  });
});
