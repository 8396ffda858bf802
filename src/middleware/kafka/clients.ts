import { execa } from 'execa';
import { Kafka, logLevel, type Admin, type ITopicMetadata, type LogEntry } from 'kafkajs';
import type { KafkaNodeManifest } from './config.js';
import type { KafkaQuorum } from './quorum.js';
import { parseQuorumStatus } from './quorum.js';
import type { KafkaServer } from './server.js';

/** Kafka's Java tools and kafkajs clients, aimed at this node or the cluster. */
export function createKafkaClients(k: KafkaServer) {
  const { deps, address, logger, java, libs, toolLog4j, who, fail, pause, writeToolLog4j } = k;

  async function tool(
    mainClass: string,
    args: string[],
    timeoutMs = 60_000,
  ): Promise<{ ok: boolean; output: string; stdout: string }> {
    await writeToolLog4j();
    const r = await execa(
      java,
      [
        '-Xmx128m',
        '-XX:+UseSerialGC',
        '-XX:TieredStopAtLevel=1',
        `-Dlog4j.configuration=file:${toolLog4j}`,
        '-cp',
        `${libs}/*`,
        mainClass,
        ...args,
      ],
      { reject: false, timeout: timeoutMs, cancelSignal: deps.signal, all: true },
    );
    if ((r as { code?: string }).code === 'ENOENT')
      throw fail('MissingBinary', `${who}: cannot run ${java}: no such command; install Java 17`);
    const output = r.timedOut
      ? `timed out after ${Math.round(timeoutMs / 1000)} s\n${r.all ?? ''}`
      : (r.all ?? '');
    return { ok: r.exitCode === 0, output, stdout: r.stdout ?? '' };
  }

  /** The line of a tool's output that says what went wrong. */
  const reason = (output: string) => {
    const lines = output
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('at ') && !/^\.\.\. \d+ more/.test(l));
    const caused = [...lines].reverse().find((l) => l.startsWith('Caused by:'));
    return (caused ?? lines.find((l) => /Exception|Error/.test(l)) ?? lines[0] ?? 'no output')
      .replace(/^Caused by:\s*/, '')
      .slice(0, 500);
  };

  const controllersOf = (nodes: readonly string[], m: KafkaNodeManifest) =>
    nodes.map((n) => `${n}:${m.controllerPort}`).join(',');

  async function describeQuorumVia(controllers: string): Promise<KafkaQuorum> {
    const r = await tool(
      'org.apache.kafka.tools.MetadataQuorumCommand',
      ['--bootstrap-controller', controllers, 'describe', '--status'],
      30_000,
    );
    if (!r.ok)
      throw fail(
        'MiddlewareFailure',
        `${who}: cannot describe the kafka controller quorum via ${controllers}: ${reason(r.output)}. Check that a majority of the controllers is running`,
      );
    return parseQuorumStatus(r.stdout);
  }

  function client(brokers: string[], quiet = false): Kafka {
    return new Kafka({
      clientId: `clusterguard-${address}`,
      brokers,
      connectionTimeout: 3000,
      requestTimeout: 15_000,
      retry: quiet ? { retries: 0 } : { retries: 5, initialRetryTime: 300 },
      logLevel: quiet ? logLevel.NOTHING : logLevel.WARN,
      logCreator:
        () =>
        ({ namespace, label, log }: LogEntry) =>
          logger.debug(`kafkajs ${label} ${namespace}: ${log.message}`),
    });
  }

  const brokersOf = (nodes: readonly string[], m: KafkaNodeManifest) => {
    const ordered = nodes.includes(address)
      ? [address, ...nodes.filter((n) => n !== address)]
      : nodes;
    return ordered.map((n) => `${n}:${m.brokerPort}`);
  };

  async function withAdmin<T>(brokers: string[], fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = client(brokers).admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Brokers the cluster reports (only registered, unfenced ones), as seen by this broker. */
  async function ownView(m: KafkaNodeManifest) {
    const admin = client([`${address}:${m.brokerPort}`], true).admin();
    await admin.connect();
    try {
      return await admin.describeCluster();
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  // Metadata for no named topic is metadata for all of them; naming topics would fail on one
  // that a broker has not heard of yet (UNKNOWN_TOPIC_OR_PARTITION right after a create).
  async function allTopics(admin: Admin): Promise<ITopicMetadata[]> {
    return (await admin.fetchTopicMetadata({ topics: [] })).topics;
  }

  /**
   * kafkajs's own `waitForLeaders` gives up on UNKNOWN_TOPIC_OR_PARTITION, which a KRaft broker
   * answers until the new topic reaches its metadata cache: poll until every partition leads.
   */
  async function waitForLeaders(admin: Admin, names: string[], deadline: number): Promise<void> {
    let last = '';
    for (;;) {
      try {
        const topics = await allTopics(admin);
        const ready = names.filter((n) => {
          const t = topics.find((x) => x.name === n);
          return t && t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0);
        });
        if (ready.length === names.length) return;
        last = `waiting for ${names.filter((n) => !ready.includes(n)).join(', ')}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline)
        throw fail(
          'MiddlewareFailure',
          `${who}: topics ${names.join(', ')} were created but have no leaders (${last}); check the brokers' logs`,
        );
      await pause(300);
    }
  }

  return {
    tool,
    reason,
    controllersOf,
    describeQuorumVia,
    client,
    brokersOf,
    withAdmin,
    ownView,
    allTopics,
    waitForLeaders,
  };
}

export type KafkaClients = ReturnType<typeof createKafkaClients>;
