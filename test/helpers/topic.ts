import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, Partitioners } from 'kafkajs';

/**
 * One Kafka topic of a test cluster, written and read the way the data e2e files check their
 * runbooks: known messages produced once (idempotent, acks=all), and the whole topic read back
 * as `partition|key|value` lines in offset order, so that a lost, extra or repeated message
 * shows as a difference.
 */
export class TestTopic {
  private readonly kafka: Kafka;

  constructor(
    readonly name: string,
    hosts: readonly string[],
  ) {
    this.kafka = new Kafka({
      clientId: `test-topic-${name}`,
      brokers: hosts.map((h) => `${h}:9092`),
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 300 },
      connectionTimeout: 3000,
    });
  }

  /** ~400 bytes per value, hash-derived so that they compress about as badly as real data. */
  static valueOf(prefix: string, i: number): string {
    return `${prefix}-${i}-${createHash('sha512').update(`${prefix}${i}`).digest('base64').repeat(4)}`;
  }

  async create(partitions: number, replicationFactor: number): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      // KRaft answers UNKNOWN_TOPIC_OR_PARTITION a moment after a create; the producer retries.
      await admin.createTopics({
        topics: [{ topic: this.name, numPartitions: partitions, replicationFactor }],
        waitForLeaders: false,
      });
    } finally {
      await admin.disconnect();
    }
  }

  /** Deletes the topic and waits until the brokers no longer list it. */
  async delete(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [this.name], timeout: 30_000 });
      const deadline = Date.now() + 60_000;
      while ((await admin.listTopics()).includes(this.name)) {
        if (Date.now() > deadline) throw new Error(`topic ${this.name} was not deleted in 60 s`);
        await sleep(250);
      }
    } finally {
      await admin.disconnect();
    }
  }

  async produce(count: number, prefix: string): Promise<void> {
    // Idempotent: a retried send on a loaded machine must not write a batch twice.
    const producer = this.kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 10, initialRetryTime: 300 },
    });
    await producer.connect();
    try {
      for (let from = 0; from < count; from += 500) {
        await producer.send({
          topic: this.name,
          acks: -1,
          messages: Array.from({ length: Math.min(500, count - from) }, (_, j) => ({
            key: `${prefix}-key-${(from + j) % 17}`,
            value: TestTopic.valueOf(prefix, from + j),
          })),
        });
      }
    } finally {
      await producer.disconnect();
    }
  }

  /** The topic's message count (the sum of its partitions' end offsets); 0 while it does not exist. */
  async total(): Promise<number> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(this.name);
      return offsets.reduce((n, o) => n + Number(o.high), 0);
    } catch {
      return 0;
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Polls the message count with one admin connection, as fast as the brokers answer, until
   * `predicate` holds (true) or `until` does (false): to act while a runbook is part way through
   * writing the topic. A topic being deleted or created counts as 0.
   */
  async waitForTotal(
    predicate: (total: number) => boolean,
    until: () => Promise<boolean>,
    timeoutMs = 300_000,
  ): Promise<boolean> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const deadline = Date.now() + timeoutMs;
      for (let round = 0; Date.now() < deadline; round++) {
        const total = await admin.fetchTopicOffsets(this.name).then(
          (offsets) => offsets.reduce((n, o) => n + Number(o.high), 0),
          () => 0,
        );
        if (predicate(total)) return true;
        if (round % 20 === 19 && (await until())) return false;
        await sleep(20);
      }
      throw new Error(`topic ${this.name}: the awaited count did not come within ${timeoutMs} ms`);
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Every message as `partition|key|value`, partition by partition in offset order, once at
   * least `expected` arrived (or after 60 s); strays beyond it are given a moment to show.
   */
  read(expected: number): Promise<string[]> {
    return readAll(this.kafka, this.name, expected);
  }
}

/**
 * Every message of `topic` as `partition|key|value`, partition by partition in offset order, once
 * at least `expected` arrived (or after 60 s); strays beyond it are given a moment to show. Each
 * record counts once by partition and offset: a rebalance of the fresh group makes kafkajs
 * deliver a partition again from its start, and a count of deliveries would stop the read
 * before another partition was read at all.
 */
export async function readAll(kafka: Kafka, topic: string, expected: number): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: `test-topic-${randomUUID()}` });
  const got = new Map<string, { partition: number; offset: bigint; text: string }>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        got.set(`${partition}:${message.offset}`, {
          partition,
          offset: BigInt(message.offset),
          text: `${partition}|${message.key?.toString() ?? ''}|${message.value?.toString() ?? ''}`,
        });
        return Promise.resolve();
      },
    });
    const deadline = Date.now() + 60_000;
    while (got.size < expected && Date.now() < deadline) await sleep(250);
    await sleep(1500);
  } finally {
    await consumer.disconnect();
  }
  return [...got.values()]
    .sort((x, y) => x.partition - y.partition || (x.offset < y.offset ? -1 : 1))
    .map((m) => m.text);
}
