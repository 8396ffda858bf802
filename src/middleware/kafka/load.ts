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
import {
  createKafkaResume,
  fingerprintOfLine,
  loadProgressFile,
  type TopicProgress,
} from './resume.js';

/** Where a retried import goes on: see resume.ts. */
interface Resume {
  /** Dump lines acknowledged before. */
  from: number;
  /** Per partition, what lies beyond them in the topic (fingerprints, in offset order). */
  written: Map<number, string[]>;
}

/**
 * Import and restore: topics recreated or appended to from `<op>-data/kafka/`. A restore
 * recreates each topic, so a retry starts it over; an import appends, so it keeps a record of
 * how far it got and a retry sends only what is not there yet (resume.ts).
 */
export function createKafkaLoad(k: KafkaServer & KafkaClients & KafkaLifecycle) {
  const { readProgress, writeProgress, writtenBeyond } = createKafkaResume(k);

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
    const progress = replace ? undefined : await readProgress(folder);
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
          const earlier = progress?.topics[t.name];
          if (earlier?.done) {
            k.progress(`${op}: ${t.name} was written by an earlier attempt`);
            continue;
          }
          const rf = Math.min(t.replicationFactor, m.replicationFactor, live);
          const partitions = await readyTopic(admin, op, t, rf, replace, deadline);
          const ends = new Map(
            (
              await k.whileStale(`offsets of ${t.name}`, deadline, () =>
                admin.fetchTopicOffsets(t.name),
              )
            ).map((o) => [o.partition, BigInt(o.high)]),
          );
          const total = async () =>
            (
              await k.whileStale(`offsets of ${t.name}`, deadline, () =>
                admin.fetchTopicOffsets(t.name),
              )
            ).reduce((n, o) => n + BigInt(o.high), 0n);
          const before = [...ends.values()].reduce((n, e) => n + e, 0n);
          let record: TopicProgress | undefined;
          let resume: Resume | undefined;
          if (progress) {
            if (earlier) {
              record = earlier;
              const written = await writtenBeyond(kafka, admin, t.name, earlier, ends, deadline);
              resume = { from: earlier.lines, written };
            } else {
              // Before the first send: from here on a retry knows where this topic ended before.
              record = {
                start: Object.fromEntries([...ends].map(([p, e]) => [String(p), e.toString()])),
                acked: {},
                lines: 0,
                done: false,
              };
              progress.topics[t.name] = record;
              await writeProgress(folder, progress);
            }
          }
          const mine = record;
          const r = await produceFile(
            producer,
            path.join(folder, t.file),
            t.name,
            partitions,
            resume,
            mine &&
              progress &&
              (async (lines, dealt) => {
                mine.lines = lines;
                for (const [p, n] of dealt)
                  mine.acked[String(p)] = (mine.acked[String(p)] ?? 0) + n;
                await writeProgress(folder, progress);
              }),
          );
          if (r.lines !== t.messages)
            throw k.fail(
              'MiddlewareFailure',
              `${k.who}: ${op} of topic ${t.name} read ${r.lines} messages but the dump lists ${t.messages}; the dump in ${folder} is incomplete`,
            );
          const added = (await total()) - before;
          if (added !== BigInt(r.sent))
            k.logger.warn(
              `kafka ${op}: topic ${t.name} grew by ${added} messages for ${r.sent} sent`,
              {
                topic: t.name,
              },
            );
          if (mine && progress) {
            mine.done = true;
            await writeProgress(folder, progress);
          }
          if (resume)
            k.logger.info(`kafka ${op}: resumed topic ${t.name}`, {
              topic: t.name,
              alreadyWritten: r.found,
              skippedLines: resume?.from ?? 0,
              sent: r.sent,
            });
          k.progress(
            `${op}: ${t.name} ← ${r.sent} messages${resume ? ` (resumed at line ${resume.from + 1}, ${r.found} found written)` : ''}`,
          );
        }
      } finally {
        await producer.disconnect().catch(() => undefined);
      }
    });
    k.logger.info(`kafka ${op} done`, { folder, topics: data.topics.length });
    const listed = await listData(folder);
    // The record is the load's bookkeeping, not data it read.
    return { ...listed, files: listed.files.filter((f) => !f.path.startsWith(loadProgressFile)) };
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

  /**
   * Sends the dump's lines in order, in batches, each line to its partition. With `resume`, the
   * first `from` lines were acknowledged before, and per partition the lines that follow are
   * first looked for, in order, among the messages `written` beyond them: a line found there is
   * not sent again. `onFlushed` hears, after every acknowledged batch, how many lines are dealt
   * with and how many of those since the last call went to each partition.
   */
  async function produceFile(
    producer: ReturnType<Kafka['producer']>,
    file: string,
    topic: string,
    partitions: number,
    resume?: Resume,
    onFlushed?: (lines: number, dealt: Map<number, number>) => Promise<void>,
  ): Promise<{ lines: number; sent: number; found: number }> {
    let batch: Message[] = [];
    let bytes = 0;
    let lineNo = 0;
    let sent = 0;
    let found = 0;
    const dealt = new Map<number, number>();
    const cursor = new Map<number, number>();
    const count = (partition: number) => dealt.set(partition, (dealt.get(partition) ?? 0) + 1);
    const flush = async () => {
      if (batch.length > 0) {
        await producer.send({ topic, acks: -1, timeout: 30_000, messages: batch });
        sent += batch.length;
        batch = [];
        bytes = 0;
      }
      if (onFlushed && dealt.size > 0) {
        await onFlushed(lineNo, dealt);
        dealt.clear();
      }
    };
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const text of lines) {
      if (!text.trim()) continue;
      lineNo += 1;
      if (resume && lineNo <= resume.from) continue;
      const line = messageLineSchema.parse(JSON.parse(text));
      // A target with fewer partitions folds the extra ones onto the existing ones.
      const partition = line.partition % partitions;
      const written = resume?.written.get(partition);
      if (written) {
        const fingerprint = fingerprintOfLine(line);
        let i = cursor.get(partition) ?? 0;
        while (i < written.length && written[i] !== fingerprint) i++;
        if (i < written.length) {
          cursor.set(partition, i + 1);
          found += 1;
          count(partition);
          continue;
        }
        // Not there: the interrupted attempt wrote nothing of this partition from here on.
        resume?.written.delete(partition);
      }
      const value = line.value === null ? null : Buffer.from(line.value, 'base64');
      batch.push({
        partition,
        key: line.key === null ? null : Buffer.from(line.key, 'base64'),
        value,
        timestamp: line.timestamp,
        headers: headersFrom(line.headers),
      });
      count(partition);
      bytes += text.length;
      if (batch.length >= 500 || bytes > 512 * 1024) await flush();
    }
    await flush();
    return { lines: lineNo, sent, found };
  }

  return {
    load,
    readyTopic,
    produceFile,
  };
}

export type KafkaLoad = ReturnType<typeof createKafkaLoad>;
