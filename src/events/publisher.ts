import { readFileSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import path from 'node:path';
import { Kafka, Partitioners, logLevel, type Message, type Producer } from 'kafkajs';
import {
  eventSource,
  eventsTopic,
  runbookEventSchema,
  toCloudEvent,
  type RunbookEvent,
} from '../contracts/events.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { describeZodError } from '../contracts/validation.js';
import type { Logger } from '../logger.js';

export interface EventPublisherOptions {
  /** Asked before every attempt: the orchestrator learns the brokers from the events' cluster. */
  brokers: () => string[] | Promise<string[]>;
  /** JSON lines of the events not yet acknowledged by Kafka; survives a crash of the process. */
  spoolFile: string;
  logger: Logger;
  clientId?: string;
  /** Backoff between attempts while Kafka cannot be reached. Default 1 s doubling to 30 s. */
  retry?: { initialMs: number; maxMs: number };
  /** CloudEvents `source`; default `eventSource(clusterId)` of each event. */
  source?: string;
  /** Default `clusterguard.events`. */
  topic?: string;
  /** The Kafka record of an event; default the CloudEvent, keyed by cluster. */
  toMessage?: (event: RunbookEvent) => Message;
}

export interface EventPublisher {
  /** Spools the event durably and returns; Kafka is never waited for. An id seen before is dropped. */
  enqueue(event: RunbookEvent): Promise<void>;
  /** Tries to publish everything now; resolves with how many events are still spooled. */
  flush(timeoutMs?: number): Promise<number>;
  /** Events spooled and not yet acknowledged by Kafka. */
  pending(): number;
  /** Stops publishing; what is left stays in the spool for the next start. */
  close(): Promise<void>;
}

const batchSize = 100;
/** Ids already sent, remembered so that an activity retried after the send does not resend. */
const rememberedSentIds = 10_000;
/**
 * A topic that Kafka is auto-creating answers UNKNOWN_TOPIC / LEADER_NOT_AVAILABLE for a moment;
 * that many attempts in a row pass before it counts as Kafka being unavailable.
 */
const topicSettleAttempts = 5;
const topicNotReady = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);
// CloudEvents Kafka protocol binding, structured mode.
const contentType = 'application/cloudevents+json; charset=UTF-8';

/** The kafkajs error types along an error's cause chain (they wrap one another). */
function kafkaErrorTypes(err: unknown): string[] {
  const types: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (typeof current === 'object' && current !== null && !seen.has(current)) {
    seen.add(current);
    const { type, cause, originalError } = current as {
      type?: unknown;
      cause?: unknown;
      originalError?: unknown;
    };
    if (typeof type === 'string') types.push(type);
    current = cause ?? originalError;
  }
  return types;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Publishes runbook events to Kafka (`clusterguard.events`, CloudEvents structured mode, keyed by
 * cluster) from a durable spool, in the order they were enqueued. A Kafka that is down or not
 * yet formed costs the runbooks nothing: events wait in the spool and a background loop retries
 * with backoff.
 */
export function createEventPublisher(options: EventPublisherOptions): EventPublisher {
  const { logger, spoolFile } = options;
  const retry = options.retry ?? { initialMs: 1000, maxMs: 30_000 };
  const clientId = options.clientId ?? 'clusterguard-orchestrator';
  const topic = options.topic ?? eventsTopic;

  const queue: RunbookEvent[] = [];
  const queuedIds = new Set<string>();
  const sentIds = new Set<string>();
  let closed = false;

  // Every change to the spool file goes through this chain, so that an append never lands in a
  // file that a rewrite is about to replace.
  let fileOps: Promise<unknown> = Promise.resolve();
  const serial = <T>(op: () => Promise<T>): Promise<T> => {
    const result = fileOps.then(op);
    fileOps = result.catch(() => undefined);
    return result;
  };

  let dirReady = false;
  const ensureDir = async () => {
    if (dirReady) return;
    await mkdir(path.dirname(path.resolve(spoolFile)), { recursive: true });
    dirReady = true;
  };

  const appendLine = async (line: string) => {
    await ensureDir();
    const fh = await open(spoolFile, 'a', 0o600);
    try {
      await fh.appendFile(`${line}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
  };

  const rewriteSpool = async () => {
    await ensureDir();
    const tmp = `${spoolFile}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(queue.map((e) => `${JSON.stringify(e)}\n`).join(''));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, spoolFile);
  };

  // Synchronous on purpose: pending() must count what a previous process left from the start.
  let text = '';
  try {
    text = readFileSync(spoolFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ClusterGuardError(
        'InvalidConfig',
        `events.spoolFile: cannot read ${path.resolve(spoolFile)}: ${errorText(err)}`,
      );
    }
  }
  let unreadable = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let parsed;
    try {
      parsed = runbookEventSchema.safeParse(JSON.parse(line));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      unreadable += 1;
      continue;
    }
    if (queuedIds.has(parsed.data.id)) continue;
    queuedIds.add(parsed.data.id);
    queue.push(parsed.data);
  }
  if (queue.length > 0) {
    logger.info('events from the spool will be published', { spoolFile, pending: queue.length });
  }
  if (unreadable > 0 || (text.length > 0 && !text.endsWith('\n'))) {
    // A crash can leave half a line; appending after it would spoil the next event too.
    logger.warn('dropped unreadable lines of the event spool', { spoolFile, unreadable });
    void serial(rewriteSpool).catch((err: unknown) =>
      logger.warn('cannot rewrite the event spool', { spoolFile, error: errorText(err) }),
    );
  }

  // --- the background loop ---------------------------------------------------------------------

  let wake: (() => void) | undefined;
  let napIsIdle = false;
  let kicked = false;
  /** Waits `ms` (or until work arrives, when idle); flush() and close() cut any wait short. */
  const nap = (ms?: number) =>
    new Promise<void>((resolve) => {
      if (kicked) {
        kicked = false;
        resolve();
        return;
      }
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      timer?.unref();
      napIsIdle = ms === undefined;
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  const kick = () => {
    kicked = true;
    const w = wake;
    if (w) {
      kicked = false;
      w();
    }
  };

  let client: { brokers: string; kafka: Kafka; producer: Producer; connected: boolean } | undefined;
  const dropClient = async () => {
    const c = client;
    client = undefined;
    if (c?.connected) await c.producer.disconnect().catch(() => undefined);
  };
  const producerFor = async (brokers: string[]) => {
    const key = brokers.join(',');
    if (client && client.brokers !== key) await dropClient();
    if (!client) {
      const kafka = new Kafka({
        clientId,
        brokers,
        connectionTimeout: 3000,
        requestTimeout: 5000,
        // Our own backoff decides when to try again; kafkajs would block the loop retrying.
        retry: { retries: 0 },
        logLevel: logLevel.WARN,
        logCreator:
          () =>
          ({ namespace, log }) =>
            logger.debug(`kafkajs ${namespace}: ${log.message}`),
      });
      const producer = kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: true,
        maxInFlightRequests: 1,
        retry: { retries: 0 },
      });
      client = { brokers: key, kafka, producer, connected: false };
    }
    if (!client.connected) {
      await client.producer.connect();
      client.connected = true;
    }
    return client;
  };

  /** For a broker with auto-creation switched off: the topic, replicated as far as it can be. */
  const createTopic = async (kafka: Kafka) => {
    const admin = kafka.admin({ retry: { retries: 0 } });
    await admin.connect();
    try {
      const { brokers } = await admin.describeCluster();
      await admin.createTopics({
        waitForLeaders: false,
        topics: [{ topic, replicationFactor: Math.max(1, Math.min(3, brokers.length)) }],
      });
    } finally {
      await admin.disconnect();
    }
  };

  const toMessage =
    options.toMessage ??
    ((event: RunbookEvent): Message => ({
      key: event.clusterId,
      value: JSON.stringify(toCloudEvent(event, options.source ?? eventSource(event.clusterId))),
      headers: { 'content-type': contentType },
    }));

  let down = false;
  let noBrokersLogged = false;
  let topicFailures = 0;

  const run = async () => {
    let delay = retry.initialMs;
    const backOff = async () => {
      await nap(delay);
      delay = Math.min(delay * 2, retry.maxMs);
    };
    while (!closed) {
      if (queue.length === 0) {
        await nap();
        continue;
      }
      let brokers: string[] = [];
      try {
        brokers = [...new Set((await options.brokers()).map((b) => b.trim()).filter(Boolean))];
      } catch (err) {
        logger.debug('cannot tell the Kafka brokers', { error: errorText(err) });
      }
      if (brokers.length === 0) {
        if (!noBrokersLogged) {
          logger.info('events wait until the Kafka brokers are known', { pending: queue.length });
          noBrokersLogged = true;
        }
        await backOff();
        continue;
      }
      noBrokersLogged = false;

      const batch = queue.slice(0, batchSize);
      try {
        const { producer } = await producerFor(brokers);
        await producer.send({
          topic,
          acks: -1,
          timeout: 5000,
          messages: batch.map(toMessage),
        });
      } catch (err) {
        const types = kafkaErrorTypes(err);
        const c = client;
        await dropClient();
        if (types.some((t) => topicNotReady.has(t)) && topicFailures < topicSettleAttempts) {
          topicFailures += 1;
          logger.debug('the events topic is not ready yet', { types });
          if (types.includes('UNKNOWN_TOPIC_OR_PARTITION') && c) {
            await createTopic(c.kafka).catch((e: unknown) =>
              logger.debug('cannot create the events topic', { error: errorText(e) }),
            );
          }
          await nap(retry.initialMs);
          continue;
        }
        if (!down) {
          down = true;
          logger.warn('Kafka is unreachable; events are kept in the spool and retried', {
            brokers,
            pending: queue.length,
            error: errorText(err),
          });
        } else {
          logger.debug('Kafka is still unreachable', { brokers, error: errorText(err) });
        }
        await backOff();
        continue;
      }

      delay = retry.initialMs;
      topicFailures = 0;
      queue.splice(0, batch.length);
      for (const event of batch) {
        queuedIds.delete(event.id);
        sentIds.add(event.id);
      }
      for (const id of sentIds) {
        if (sentIds.size <= rememberedSentIds) break;
        sentIds.delete(id);
      }
      if (down) {
        down = false;
        logger.info('Kafka is reachable again; publishing the spooled events', {
          brokers,
          pending: queue.length,
        });
      }
      logger.debug('events published', { count: batch.length, lastId: batch.at(-1)?.id });
      await serial(rewriteSpool).catch((err: unknown) =>
        // The events are in Kafka; a stale spool only means duplicates after a crash.
        logger.warn('cannot rewrite the event spool', { spoolFile, error: errorText(err) }),
      );
    }
  };
  const loop = run().catch((err: unknown) =>
    logger.error('the event publisher stopped', { error: errorText(err) }),
  );

  return {
    async enqueue(event) {
      // Retryable on purpose: the activity is retried on the next orchestrator.
      if (closed) throw new Error('the event publisher is closed');
      const parsed = runbookEventSchema.safeParse(event);
      if (!parsed.success) {
        throw new ClusterGuardError(
          'InvalidInput',
          `invalid event: ${describeZodError(parsed.error)}`,
        );
      }
      const valid = parsed.data;
      if (queuedIds.has(valid.id) || sentIds.has(valid.id)) return;
      queuedIds.add(valid.id);
      try {
        await serial(async () => {
          await appendLine(JSON.stringify(valid));
          queue.push(valid);
        });
      } catch (err) {
        queuedIds.delete(valid.id);
        throw err;
      }
      if (napIsIdle) wake?.();
    },

    async flush(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      if (queue.length > 0 && !closed) kick();
      while (queue.length > 0 && !closed && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(50, deadline - Date.now())));
      }
      // The queue empties as soon as Kafka acknowledged; the spool is rewritten just after.
      // Flushed means both, so a caller that then reads (or copies) the spool sees it current.
      await fileOps;
      return queue.length;
    },

    pending: () => queue.length,

    async close() {
      if (closed) return;
      closed = true;
      kick();
      await loop;
      await dropClient();
      await fileOps;
    },
  };
}
