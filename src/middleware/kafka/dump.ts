import { randomUUID } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Admin } from 'kafkajs';
import type { DataOperation } from '../../config/layout.js';
import { listData, wipeFolder, type DataResult } from '../kit/index.js';
import type { DataManifest, MessageLine } from './dump-format.js';
import { dataManifestFile, headerPairs } from './dump-format.js';
import type { KafkaServer } from './server.js';
import type { KafkaClients } from './clients.js';
import type { KafkaLifecycle } from './lifecycle.js';

/** Export and backup: every topic's messages into `<op>-data/kafka/`. */
export function createKafkaDump(k: KafkaServer & KafkaClients & KafkaLifecycle) {
  async function dump(op: DataOperation): Promise<DataResult> {
    const deadline = k.deadlineFor(`${op}Data`);
    const folder = k.layout.workingFolder(op, 'kafka');
    await wipeFolder(folder);
    const m = await k.readManifest();
    const kafka = k.client(k.brokersOf(m.nodes, m));
    const admin = kafka.admin();
    await admin.connect();
    try {
      // Kafka's internal topics, and clusterguard's own event log: a restore must not rewind
      // the record of what was done to the cluster (the restore itself included).
      const topics = (await k.allTopics(admin))
        .filter((t) => !t.name.startsWith('__') && t.name !== 'clusterguard.events')
        .sort((a, b) => a.name.localeCompare(b.name));
      const manifest: DataManifest = {
        format: 'clusterguard-kafka-messages/1',
        createdAt: new Date().toISOString(),
        clusterId: m.clusterId,
        topics: [],
        warnings: [],
      };
      const ends = new Map<string, Map<number, bigint>>();
      const files = new Map<string, Awaited<ReturnType<typeof open>>>();
      const counts = new Map<string, number>();
      let configs: Map<string, Record<string, string>> = new Map();
      if (topics.length > 0) {
        const described = await admin.describeConfigs({
          includeSynonyms: false,
          resources: topics.map((t) => ({ type: 2, name: t.name })),
        });
        configs = new Map(
          described.resources.map((r) => [
            r.resourceName,
            Object.fromEntries(
              r.configEntries
                // Only what was set on the topic itself (DYNAMIC_TOPIC_CONFIG).
                .filter((e) => Number(e.configSource) === 1 && !e.isSensitive)
                .map((e) => [e.configName, e.configValue]),
            ),
          ]),
        );
      }
      try {
        for (const t of topics) {
          const file = `${t.name}.jsonl`;
          files.set(t.name, await open(path.join(folder, file), 'w'));
          counts.set(t.name, 0);
          const pending = new Map<number, bigint>();
          for (const o of await k.whileStale(`offsets of ${t.name}`, deadline, () =>
            admin.fetchTopicOffsets(t.name),
          ))
            if (BigInt(o.high) > BigInt(o.low)) pending.set(o.partition, BigInt(o.high));
          if (pending.size > 0) ends.set(t.name, pending);
          manifest.topics.push({
            name: t.name,
            partitions: t.partitions.length,
            replicationFactor: Math.max(1, ...t.partitions.map((p) => p.replicas.length)),
            configs: configs.get(t.name) ?? {},
            messages: 0,
            file,
          });
        }
        if (ends.size > 0)
          await readTopics(kafka, admin, op, ends, files, counts, manifest, deadline);
      } finally {
        for (const f of files.values()) await f.close();
      }
      for (const t of manifest.topics) t.messages = counts.get(t.name) ?? 0;
      await writeFile(
        path.join(folder, dataManifestFile),
        `${JSON.stringify(manifest, null, 2)}\n`,
      );
      k.logger.info(`kafka ${op} written`, {
        folder,
        topics: manifest.topics.length,
        messages: manifest.topics.reduce((n, t) => n + t.messages, 0),
      });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    return listData(folder);
  }

  async function readTopics(
    kafka: Kafka,
    admin: Admin,
    op: DataOperation,
    ends: Map<string, Map<number, bigint>>,
    files: Map<string, Awaited<ReturnType<typeof open>>>,
    counts: Map<string, number>,
    manifest: DataManifest,
    deadline: number,
  ): Promise<void> {
    // kafkajs consumes only through a group; a throwaway one that commits nothing is deleted after.
    const groupId = `clusterguard-${op}-${randomUUID()}`;
    // A short fetch wait: once every partition is read and paused, disconnect() waits for the
    // fetch in flight, which would otherwise sit out kafkajs's default of 5 s on every dump.
    const consumer = kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 250,
    });
    const written = new Map<string, bigint>();
    let joined = false;
    let lastActivity = Date.now();
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true;
      lastActivity = Date.now();
    });
    await consumer.connect();
    try {
      await k.whileStale('subscribing', deadline, () =>
        consumer.subscribe({ topics: [...ends.keys()], fromBeginning: true }),
      );
      await consumer.run({
        autoCommit: false,
        eachBatch: async (payload) => {
          const { batch } = payload;
          const pending = ends.get(batch.topic);
          const end = pending?.get(batch.partition);
          const file = files.get(batch.topic);
          if (!pending || end === undefined || !file) return;
          lastActivity = Date.now();
          // A rebalance starts the partition over (nothing is committed): skip what was written.
          const next = written.get(`${batch.topic}/${batch.partition}`) ?? -1n;
          const fresh = batch.messages.filter((msg) => {
            const offset = BigInt(msg.offset);
            return offset > next && offset < end;
          });
          const lastFresh = fresh.at(-1);
          if (lastFresh) written.set(`${batch.topic}/${batch.partition}`, BigInt(lastFresh.offset));
          const lines = fresh.map((msg) => {
            const line: MessageLine = {
              partition: batch.partition,
              offset: msg.offset,
              timestamp: msg.timestamp,
              key: msg.key ? msg.key.toString('base64') : null,
              value: msg.value ? msg.value.toString('base64') : null,
              headers: headerPairs(msg.headers),
            };
            return `${JSON.stringify(line)}\n`;
          });
          if (lines.length > 0) await file.write(lines.join(''));
          counts.set(batch.topic, (counts.get(batch.topic) ?? 0) + lines.length);
          if (BigInt(batch.lastOffset()) + 1n >= end) {
            pending.delete(batch.partition);
            consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
            if (pending.size === 0) ends.delete(batch.topic);
          }
          await payload.heartbeat();
        },
      });
      for (;;) {
        k.deps.signal?.throwIfAborted();
        if (ends.size === 0) break;
        // Compaction and transaction markers can hide a partition's last offsets: a partition
        // that stays silent long after the group started is read to its end.
        if (joined && Date.now() - lastActivity > 15_000) {
          for (const [topic, pending] of ends)
            for (const [partition, end] of pending)
              manifest.warnings.push(
                `${topic}-${partition}: no records after ${counts.get(topic) ?? 0} messages although its end offset was ${end} (compacted or transactional)`,
              );
          k.logger.warn(`kafka ${op}: some partitions ended early`, {
            warnings: manifest.warnings,
          });
          break;
        }
        if (Date.now() > deadline)
          throw k.fail(
            'MiddlewareFailure',
            `${k.who}: reading topics for ${op} did not finish in time; still reading ${[...ends].map(([t, p]) => `${t} (${p.size} partitions)`).join(', ')}. ` +
              `Check that every partition has a leader and raise the ${op}Data timeout`,
          );
        k.progress(`${op}: reading ${[...ends.keys()].join(', ')}`);
        await k.pause(200);
      }
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
    }
  }

  return {
    dump,
    readTopics,
  };
}

export type KafkaDump = ReturnType<typeof createKafkaDump>;
