import { randomUUID } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { z } from 'zod';
import { headerPairs, type MessageLine } from './dump-format.js';
import type { KafkaServer } from './server.js';
import type { KafkaClients } from './clients.js';

/**
 * Where an import got to, so that a retried import appends each message once.
 *
 * An import appends; unlike a restore it cannot start over by recreating the topic. An agent
 * killed in the middle of an import (or an attempt whose completion was lost) leaves part of a
 * topic written, and a retry that sent the whole dump again would write that part twice. So the
 * import keeps a record beside the dump it reads, `<op>-data/kafka/.load-progress.json`: per
 * topic, each partition's end offset before the first message was sent, how many dump lines
 * were acknowledged and how many of them went to each partition, and whether the topic is done.
 * It is written before the first send and after every acknowledged batch. Unpacking an archive
 * replaces the folder, so a new import starts without one; a retried step finds it.
 *
 * A retry then skips the acknowledged lines and, per partition, reads what lies beyond them
 * (normally at most the batch in flight at the kill, which the broker may or may not have
 * written) and matches it against the dump lines that follow, in order: a line found there is
 * not sent again. A message that matches nothing (another producer's) is passed over.
 */
export const loadProgressFile = '.load-progress.json';

const topicProgressSchema = z.object({
  /** Per partition, its end offset before this import sent anything (decimal string). */
  start: z.record(z.string(), z.string()),
  /** Per partition, the acknowledged lines that went to it. */
  acked: z.record(z.string(), z.number().int().nonnegative()),
  /** Dump lines (messages) dealt with: sent and acknowledged, or found already written. */
  lines: z.number().int().nonnegative(),
  done: z.boolean(),
});
const loadProgressSchema = z.object({
  format: z.literal('clusterguard-kafka-load-progress/1'),
  topics: z.record(z.string(), topicProgressSchema),
});
export type TopicProgress = z.infer<typeof topicProgressSchema>;
export type LoadProgress = z.infer<typeof loadProgressSchema>;

/**
 * A message as the dump writes it, for comparing a dump line with a message read back. Headers
 * by name (stable): the load sends a repeated header's values together, so one that came
 * interleaved with others reads back in another order.
 */
export const fingerprintOfLine = (line: Pick<MessageLine, 'key' | 'value' | 'headers'>) =>
  JSON.stringify([
    line.key,
    line.value,
    [...line.headers].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
  ]);

const fingerprintOfMessage = (m: KafkaMessage) =>
  fingerprintOfLine({
    key: m.key ? m.key.toString('base64') : null,
    value: m.value ? m.value.toString('base64') : null,
    headers: headerPairs(m.headers),
  });

export function createKafkaResume(k: KafkaServer & KafkaClients) {
  /** The record in `folder`, or an empty one when there is none (a first attempt). */
  async function readProgress(folder: string): Promise<LoadProgress> {
    let text: string;
    try {
      text = await readFile(path.join(folder, loadProgressFile), 'utf8');
    } catch {
      return { format: 'clusterguard-kafka-load-progress/1', topics: {} };
    }
    try {
      return loadProgressSchema.parse(JSON.parse(text));
    } catch (err) {
      throw k.fail(
        'InvalidInput',
        `${k.who}: ${path.join(folder, loadProgressFile)} is not a clusterguard load record (${(err as Error).message.split('\n')[0]}); ` +
          'nothing more was sent. Unpack the archive again (that starts the import over) or remove the file only if no message of this import reached Kafka',
      );
    }
  }

  /** Replaces the record in one rename: a kill leaves the old one or the new one. */
  async function writeProgress(folder: string, progress: LoadProgress): Promise<void> {
    const file = path.join(folder, loadProgressFile);
    const temp = `${file}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify(progress)}\n`);
    await rename(temp, file);
  }

  /**
   * The fingerprints of the messages in `[from, to)` of each partition, in offset order: what an
   * interrupted attempt may have written beyond its last acknowledged batch.
   */
  async function readBeyond(
    kafka: Kafka,
    admin: Admin,
    topic: string,
    ranges: Map<number, { from: bigint; to: bigint }>,
    deadline: number,
  ): Promise<Map<number, string[]>> {
    const found = new Map<number, string[]>([...ranges.keys()].map((p) => [p, []]));
    const pending = new Map([...ranges].filter(([, r]) => r.to > r.from));
    if (pending.size === 0) return found;
    const groupId = `clusterguard-resume-${randomUUID()}`;
    const consumer = kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 250,
    });
    await consumer.connect();
    try {
      await k.whileStale('subscribing', deadline, () =>
        consumer.subscribe({ topics: [topic], fromBeginning: true }),
      );
      await consumer.run({
        autoCommit: false,
        eachBatch: async (payload) => {
          const { batch } = payload;
          const range = pending.get(batch.partition);
          if (!range) return;
          for (const m of batch.messages) {
            const offset = BigInt(m.offset);
            if (offset >= range.from && offset < range.to)
              found.get(batch.partition)?.push(fingerprintOfMessage(m));
          }
          if (BigInt(batch.lastOffset()) + 1n >= range.to) {
            pending.delete(batch.partition);
            consumer.pause([{ topic, partitions: [batch.partition] }]);
          }
          await payload.heartbeat();
        },
      });
      // Applied when the partitions are assigned; the range filter above holds either way.
      for (const [partition, { from }] of pending)
        consumer.seek({ topic, partition, offset: from.toString() });
      while (pending.size > 0) {
        if (Date.now() > deadline)
          throw k.fail(
            'MiddlewareFailure',
            `${k.who}: reading back what an interrupted import wrote to ${topic} did not finish in time ` +
              `(partitions ${[...pending.keys()].join(', ')}); nothing more was sent. Check that every partition has a leader and run importData again`,
          );
        k.progress(`import: ${topic}: reading back what the interrupted attempt wrote`);
        await k.pause(100);
      }
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
    }
    return found;
  }

  /**
   * Per partition, the messages an interrupted attempt wrote beyond its acknowledged lines, as
   * fingerprints in offset order; empty maps for a first attempt.
   */
  async function writtenBeyond(
    kafka: Kafka,
    admin: Admin,
    topic: string,
    progress: TopicProgress,
    ends: Map<number, bigint>,
    deadline: number,
  ): Promise<Map<number, string[]>> {
    const ranges = new Map<number, { from: bigint; to: bigint }>();
    for (const [partition, end] of ends) {
      const start = BigInt(progress.start[partition] ?? end.toString());
      ranges.set(partition, { from: start + BigInt(progress.acked[partition] ?? 0), to: end });
    }
    return readBeyond(kafka, admin, topic, ranges, deadline);
  }

  return { readProgress, writeProgress, writtenBeyond };
}

export type KafkaResume = ReturnType<typeof createKafkaResume>;
