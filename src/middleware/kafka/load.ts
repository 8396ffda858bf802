import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Kafka } from 'kafkajs';
import { Partitioners, type Admin, type Message } from 'kafkajs';
import type { DataOperation } from '../../config/layout.js';
import { listData, type DataResult } from '../kit/index.js';
import type { DataManifest } from './dump-format.js';
import {
  dataManifestSchema,
  messageLineSchema,
  dataManifestFile,
  headersFrom,
} from './dump-format.js';
import type { KafkaServer } from './server.js';
import type { KafkaClients } from './clients.js';
import type { KafkaLifecycle } from './lifecycle.js';

/** Import and restore: topics recreated or appended to from `<op>-data/kafka/`. */
export function createKafkaLoad(k: KafkaServer & KafkaClients & KafkaLifecycle) {
  async function load(op: DataOperation, replace: boolean): Promise<DataResult> {
    const deadline = k.deadlineFor(`${op}Data`);
    const folder = k.layout.workingFolder(op, 'kafka');
    let data: DataManifest;
    try {
      data = dataManifestSchema.parse(
        JSON.parse(await readFile(path.join(folder, dataManifestFile), 'utf8')),
      );
    } catch (err) {
      throw k.fail(
        'InvalidInput',
        `${k.who}: ${folder}/${dataManifestFile} is missing or not a clusterguard kafka message dump (${(err as Error).message.split('\n')[0]}); unpack the archive into ${folder} first`,
      );
    }
    const m = await k.readManifest();
    const kafka = k.client(k.brokersOf(m.nodes, m));
    await k.withAdmin(k.brokersOf(m.nodes, m), async (admin) => {
      const live = (await admin.describeCluster()).brokers.length;
      // Idempotent: right after a topic is created, a leader may still answer
      // UNKNOWN_TOPIC_OR_PARTITION for one partition of a request, and kafkajs then resends the
      // whole request, partitions already written included; the broker drops those repeats only
      // for an idempotent producer. Bounded retries: the operation has a deadline.
      const producer = kafka.producer({
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        idempotent: true,
        maxInFlightRequests: 1,
        retry: { retries: 10, initialRetryTime: 300 },
      });
      await producer.connect();
      try {
        for (const t of data.topics) {
          k.deps.signal?.throwIfAborted();
          const rf = Math.min(t.replicationFactor, m.replicationFactor, live);
          const partitions = await readyTopic(admin, op, t, rf, replace, deadline);
          const total = async () =>
            (
              await k.whileStale(`offsets of ${t.name}`, deadline, () =>
                admin.fetchTopicOffsets(t.name),
              )
            ).reduce((n, o) => n + BigInt(o.high), 0n);
          const before = await total();
          const sent = await produceFile(producer, path.join(folder, t.file), t.name, partitions);
          if (sent !== t.messages)
            throw k.fail(
              'MiddlewareFailure',
              `${k.who}: ${op} of topic ${t.name} read ${sent} messages but the dump lists ${t.messages}; the dump in ${folder} is incomplete`,
            );
          const added = (await total()) - before;
          if (added !== BigInt(sent))
            k.logger.warn(
              `kafka ${op}: topic ${t.name} grew by ${added} messages for ${sent} sent`,
              {
                topic: t.name,
              },
            );
          k.progress(`${op}: ${t.name} ← ${sent} messages`);
        }
      } finally {
        await producer.disconnect().catch(() => undefined);
      }
    });
    k.logger.info(`kafka ${op} done`, { folder, topics: data.topics.length });
    return listData(folder);
  }

  /**
   * Makes `t` exist with leaders (deleting it first when `replace`), from fresh metadata each
   * round: brokers learn about deletes and creates a moment after the controller, so every
   * answer is only a snapshot. Returns its partition count.
   */
  async function readyTopic(
    admin: Admin,
    op: DataOperation,
    t: DataManifest['topics'][number],
    rf: number,
    replace: boolean,
    deadline: number,
  ): Promise<number> {
    let gone = !replace;
    let deleteSent = false;
    let last = '';
    for (;;) {
      k.deps.signal?.throwIfAborted();
      try {
        const found = (await k.allTopics(admin)).find((x) => x.name === t.name);
        if (!gone) {
          if (!found) gone = true;
          else if (!deleteSent) {
            await admin.deleteTopics({ topics: [t.name], timeout: 30_000 });
            deleteSent = true;
            k.logger.info(`kafka ${op}: deleted topic before restoring it`, { topic: t.name });
          }
        }
        if (gone) {
          if (found && found.partitions.length > 0 && found.partitions.every((p) => p.leader >= 0))
            return found.partitions.length;
          if (!found)
            await admin.createTopics({
              waitForLeaders: false,
              timeout: 30_000,
              topics: [
                {
                  topic: t.name,
                  numPartitions: t.partitions,
                  replicationFactor: rf,
                  configEntries: Object.entries(t.configs).map(([name, value]) => ({
                    name,
                    value,
                  })),
                },
              ],
            });
        }
        last = !gone ? 'waiting for the old topic to be deleted' : 'waiting for partition leaders';
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline)
        throw k.fail(
          'MiddlewareFailure',
          `${k.who}: topic ${t.name} could not be made ready for ${op} (${last}); check the brokers and run ${op}Data again`,
        );
      k.progress(`${op}: topic ${t.name}: ${last}`);
      await k.pause(300);
    }
  }

  async function produceFile(
    producer: ReturnType<Kafka['producer']>,
    file: string,
    topic: string,
    partitions: number,
  ): Promise<number> {
    let batch: Message[] = [];
    let bytes = 0;
    let sent = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      await producer.send({ topic, acks: -1, timeout: 30_000, messages: batch });
      sent += batch.length;
      batch = [];
      bytes = 0;
    };
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const text of lines) {
      if (!text.trim()) continue;
      const line = messageLineSchema.parse(JSON.parse(text));
      const value = line.value === null ? null : Buffer.from(line.value, 'base64');
      batch.push({
        // A target with fewer partitions folds the extra ones onto the existing ones.
        partition: line.partition % partitions,
        key: line.key === null ? null : Buffer.from(line.key, 'base64'),
        value,
        timestamp: line.timestamp,
        headers: headersFrom(line.headers),
      });
      bytes += text.length;
      if (batch.length >= 500 || bytes > 512 * 1024) await flush();
    }
    await flush();
    return sent;
  }

  return {
    load,
    readyTopic,
    produceFile,
  };
}

export type KafkaLoad = ReturnType<typeof createKafkaLoad>;
