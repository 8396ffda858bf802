/**
 * Kafka in KRaft mode (seed 001 §2, §3, §5, §7): every member is a combined broker + controller
 * bound to its own address.
 *
 * Controller quorum: dynamic (KIP-853, `controller.quorum.bootstrap.servers`), not static
 * `controller.quorum.voters`. With static voters, removing a controller means rewriting every
 * member's configuration and restarting all of them while the quorum is shrinking; with a dynamic
 * quorum the voter set lives in the metadata log and changes online (`add-controller`,
 * `remove-controller`), so a decommission never restarts the survivors and a survivor's stale
 * bootstrap list is harmless. The master formats its storage `--standalone` (a one-voter
 * quorum); every other member formats `--no-initial-controllers`, starts as an observer and adds
 * itself as a voter when it joins. A node already formatted for this cluster as the same node id
 * keeps its whole data folder on join and rejoin (see `join`); any other node's folder is wiped
 * and formatted anew. A node whose identity was lost comes back with a new directory id and first
 * removes its stale voter entry (same node id, old directory id), which needs a majority of the
 * other voters.
 *
 * log.dirs: the master generates every member's configuration, but each member has its own data
 * root, so the generated files name the data and log folders by tokens (`@KAFKA_DATA_FOLDER@`,
 * `@KAFKA_LOG_FOLDER@`). A node resolves them against its own layout each time it starts the
 * server, writing the effective files to `node-config/kafka/runtime/` (the files Kafka and its
 * tools read); `node-config/kafka/conf/` stays a byte-for-byte copy of what the master generated.
 *
 * Data operations (export/import/backup/restore) are cluster-wide: they talk to the cluster over
 * the Kafka protocol, so one node (the master) runs them for the whole cluster. Every topic but
 * the internal `__*` ones is written to `<op>-data/kafka/<topic>.jsonl` (one message a line:
 * partition, offset, timestamp, base64 key and value, headers) with `topics.json` listing
 * partitions, replication and topic-level configs. Import appends to existing topics; restore
 * deletes and recreates the topics it holds and leaves other topics alone. Timestamps are kept,
 * so messages older than a topic's retention are deleted by Kafka soon after they are written.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import {
  Kafka,
  Partitioners,
  logLevel,
  type Admin,
  type IHeaders,
  type ITopicMetadata,
  type LogEntry,
  type Message,
} from 'kafkajs';
import { z } from 'zod';
import { isNodeAddress } from '../contracts/addresses.js';
import { ClusterGuardError } from '../contracts/errors.js';
import type { DataOperation } from '../config/layout.js';
import {
  listData,
  operationOptions,
  replaceFolder,
  runningPid,
  startProcess,
  stopProcess,
  waitInSync,
  wipeFolder,
  withOperations,
  writeFiles,
  type AdapterDeps,
  type ClusterView,
  type DataResult,
  type InSyncReport,
  type MiddlewareAdapter,
  type MiddlewareOperation,
  type OperationOptions,
  type ProcessSpec,
  type ServerStatus,
} from './kit/index.js';

export interface KafkaTopic {
  name: string;
  /** Default 3. */
  partitions?: number;
}

export interface KafkaOptions {
  brokerPort: number;
  controllerPort: number;
  /** JVM heap of the server. Node-local: read from the agent's own options at start. */
  heapMb: number;
  /** Seed 001 §5: topics to initialise, created with the cluster's replication factor. */
  topics: KafkaTopic[];
  /**
   * Upper bound of the replication factor of configured and internal topics; the factor used is
   * min(this, members). Default 3.
   */
  replicationFactor: number;
  /** Extra server.properties; they override generated keys. */
  serverProperties?: Record<string, string>;
}

export const defaultKafkaOptions: KafkaOptions = {
  brokerPort: 9092,
  controllerPort: 9093,
  heapMb: 256,
  topics: [],
  replicationFactor: 3,
};

const defaultPartitions = 3;

// Lines of Kafka 3.9's own log (the KafkaRaftServer logger reaches the supervised stdout):
//   [..] INFO [KafkaRaftServer nodeId=1] Kafka Server started (kafka.server.KafkaRaftServer)
//   [..] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)               (bad config, no meta.properties)
//   [..] ERROR Exiting Kafka due to fatal exception during startup. (kafka.Kafka$)
//   [..] ERROR [BrokerServer id=1] Fatal error during broker startup. Prepare to shutdown (kafka.server.BrokerServer)
const startFilters = {
  successFilter: String.raw`\[KafkaRaftServer nodeId=\d+\] Kafka Server started`,
  failFilter: String.raw`Exiting Kafka due to fatal exception|Fatal error during (?:broker|controller) startup`,
};

/** Seed 001 §6 operationOptions defaults; the membership operations start the server with theirs. */
export const kafkaOperationDefaults: Partial<Record<MiddlewareOperation, OperationOptions>> = {
  startServer: { timeoutMs: 90_000, ...startFilters },
  // Graceful stop budget: a broker whose controller quorum is gone waits minutes for a controlled
  // shutdown that cannot happen, so it is killed after this.
  stopServer: { timeoutMs: 30_000 },
  checkServer: { timeoutMs: 10_000 },
  createCluster: { timeoutMs: 180_000, ...startFilters },
  joinCluster: { timeoutMs: 300_000, ...startFilters },
  rejoinCluster: { timeoutMs: 300_000, ...startFilters },
  decommissionCluster: { timeoutMs: 1_800_000 },
  exportData: { timeoutMs: 1_800_000 },
  importData: { timeoutMs: 1_800_000 },
  backupData: { timeoutMs: 1_800_000 },
  restoreData: { timeoutMs: 1_800_000 },
  // One wait of a membership runbook's in-sync step; the step asks again and shows what lags.
  checkInSync: { timeoutMs: 30_000 },
};

// ---------------------------------------------------------------------------------------------
// Cluster id

/**
 * Kafka's Uuid text form: 16 bytes in unpadded base64url. Kafka never hands out ids that start
 * with '-' (they read as command-line options) nor the reserved all-zero / ...0001 ids.
 */
export function isKafkaClusterId(id: string): boolean {
  if (!/^[A-Za-z0-9_-]{21}[AQgw]$/.test(id) || id.startsWith('-')) return false;
  const bytes = Buffer.from(id, 'base64url');
  if (bytes.length !== 16) return false;
  const zero = bytes.every((b) => b === 0);
  const one = bytes.subarray(0, 15).every((b) => b === 0) && bytes[15] === 1;
  return !zero && !one;
}

/** A new cluster id, as `kafka-storage random-uuid` would make. */
export function newKafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (isKafkaClusterId(id)) return id;
  }
}

// ---------------------------------------------------------------------------------------------
// Configuration generation (pure)

const dataToken = '@KAFKA_DATA_FOLDER@';
const logToken = '@KAFKA_LOG_FOLDER@';

export const kafkaConfigFiles = {
  server: 'server.properties',
  log4j: 'log4j.properties',
  /** What the adapter itself needs from the master: cluster id, master, ports, topics. */
  manifest: 'clusterguard-kafka.json',
} as const;

const manifestSchema = z.object({
  clusterId: z.string(),
  nodeId: z.number().int().nonnegative(),
  address: z.string(),
  master: z.string(),
  nodes: z.array(z.string()).min(1),
  memberIds: z.record(z.string(), z.number().int().nonnegative()),
  brokerPort: z.number().int().positive(),
  controllerPort: z.number().int().positive(),
  replicationFactor: z.number().int().positive(),
  topics: z.array(z.object({ name: z.string(), partitions: z.number().int().positive() })),
});
export type KafkaNodeManifest = z.infer<typeof manifestSchema>;

/** Replication of configured and internal topics for a cluster of `members`. */
export function kafkaReplicationFactor(members: number, options?: Partial<KafkaOptions>): number {
  return Math.max(1, Math.min(options?.replicationFactor ?? 3, members));
}

function propertiesText(entries: Record<string, string>): string {
  const escape = (s: string, key: boolean) =>
    s
      .replace(/\\/g, '\\\\')
      .replace(/\n/g, '\\n')
      .replace(/^\s/, (c) => `\\${c}`)
      .replace(key ? /[=:\s]/g : /(?!)/g, (c) => `\\${c}`);
  return Object.entries(entries)
    .map(([k, v]) => `${escape(k, true)}=${escape(v, false)}`)
    .join('\n');
}

const topicNamePattern = /^[a-zA-Z0-9._-]{1,249}$/;

/**
 * The configuration files of `address` (relative path → text) for this membership. Pure: the
 * master calls it for every member. `log.dirs` and the log4j file name are tokens that the
 * target node resolves against its own layout when it starts the server.
 */
export function generateKafkaConfig(
  cluster: ClusterView,
  address: string,
  options: Partial<KafkaOptions> = {},
): Record<string, string> {
  const o: KafkaOptions = { ...defaultKafkaOptions, ...options };
  const invalid = (message: string) =>
    new ClusterGuardError('InvalidInput', `cannot generate the kafka configuration: ${message}`);
  if (!cluster.nodes.includes(address))
    throw invalid(`${address} is not a member of [${cluster.nodes.join(', ')}]`);
  for (const node of cluster.nodes)
    if (!isNodeAddress(node)) throw invalid(`"${node}" is not a node address`);
  const nodeId = cluster.memberIds[address];
  if (nodeId === undefined || !Number.isInteger(nodeId) || nodeId < 0)
    throw invalid(`member ${address} has no node id in memberIds`);
  if (!isKafkaClusterId(cluster.clusterUuid))
    throw invalid(
      `cluster id "${cluster.clusterUuid}" is not a Kafka uuid (22 base64url characters); make one with newKafkaClusterId()`,
    );
  for (const t of o.topics)
    if (!topicNamePattern.test(t.name) || t.name === '.' || t.name === '..')
      throw invalid(`"${t.name}" is not a valid topic name`);
  const master = cluster.nodes[0]!;
  const rf = kafkaReplicationFactor(cluster.nodes.length, o);
  // One broker down must not stop acks=all producers, yet an acknowledged write must be on two
  // brokers as soon as there are three.
  const minIsr = rf >= 3 ? 2 : 1;

  const server: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': String(nodeId),
    listeners: `PLAINTEXT://${address}:${o.brokerPort},CONTROLLER://${address}:${o.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${address}:${o.brokerPort}`,
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'controller.quorum.bootstrap.servers': cluster.nodes
      .map((n) => `${n}:${o.controllerPort}`)
      .join(','),
    'log.dirs': dataToken,
    'default.replication.factor': String(rf),
    'offsets.topic.replication.factor': String(rf),
    'transaction.state.log.replication.factor': String(rf),
    'transaction.state.log.min.isr': String(minIsr),
    'min.insync.replicas': String(minIsr),
    'unclean.leader.election.enable': 'false',
    ...o.serverProperties,
  };
  const header =
    `# Generated by clusterguard on the master (${master}) for ${address}, kafka node ${nodeId}.\n` +
    `# ${dataToken} and ${logToken} are resolved by the node itself before the server starts\n` +
    `# (the effective file is node-config/kafka/runtime/${kafkaConfigFiles.server}).\n`;

  const log4j = [
    '# Everything goes to a rolling file; warnings, errors and the start/stop lines of',
    '# KafkaRaftServer also go to stdout, which the node agent keeps and scans while starting.',
    'log4j.rootLogger=INFO, file, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.Threshold=WARN',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.appender.lifecycle=org.apache.log4j.ConsoleAppender',
    'log4j.appender.lifecycle.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.lifecycle.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.appender.file=org.apache.log4j.RollingFileAppender',
    `log4j.appender.file.File=${logToken}/server.log`,
    'log4j.appender.file.MaxFileSize=20MB',
    'log4j.appender.file.MaxBackupIndex=5',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.server.KafkaRaftServer=INFO, file, lifecycle',
    'log4j.additivity.kafka.server.KafkaRaftServer=false',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.org.apache.kafka.clients=WARN',
    '',
  ].join('\n');

  const manifest: KafkaNodeManifest = {
    clusterId: cluster.clusterUuid,
    nodeId,
    address,
    master,
    nodes: [...cluster.nodes],
    memberIds: Object.fromEntries(
      cluster.nodes.flatMap((n) => {
        const id = cluster.memberIds[n];
        return id === undefined ? [] : [[n, id] as const];
      }),
    ),
    brokerPort: o.brokerPort,
    controllerPort: o.controllerPort,
    replicationFactor: rf,
    topics: o.topics.map((t) => ({ name: t.name, partitions: t.partitions ?? defaultPartitions })),
  };

  return {
    [kafkaConfigFiles.server]: `${header}${propertiesText(server)}\n`,
    [kafkaConfigFiles.log4j]: log4j,
    [kafkaConfigFiles.manifest]: `${JSON.stringify(manifest, null, 2)}\n`,
  };
}

// ---------------------------------------------------------------------------------------------
// Replica placement (pure)

export interface ReplicaMove {
  topic: string;
  partition: number;
  from: number[];
  to: number[];
}

/**
 * New replica lists that take `remove` off every partition and raise partitions below
 * `targetReplicas` (capped at the live brokers), choosing the least-loaded live brokers. A
 * replaced broker's slot keeps its position, so the preferred leader moves only when it leaves.
 */
export function planReplicaMoves(
  topics: readonly ITopicMetadata[],
  liveBrokers: readonly number[],
  options: { remove?: readonly number[]; targetReplicas?: number },
): ReplicaMove[] {
  const remove = new Set(options.remove ?? []);
  const candidates = liveBrokers.filter((b) => !remove.has(b));
  const load = new Map<number, number>(candidates.map((b) => [b, 0]));
  for (const t of topics)
    for (const p of t.partitions)
      for (const r of p.replicas) if (load.has(r)) load.set(r, load.get(r)! + 1);
  const pick = (taken: Set<number>): number | undefined => {
    let best: number | undefined;
    for (const b of candidates)
      if (!taken.has(b) && (best === undefined || load.get(b)! < load.get(best)!)) best = b;
    if (best !== undefined) {
      load.set(best, load.get(best)! + 1);
      taken.add(best);
    }
    return best;
  };
  const moves: ReplicaMove[] = [];
  for (const t of [...topics].sort((a, b) => a.name.localeCompare(b.name))) {
    for (const p of [...t.partitions].sort((a, b) => a.partitionId - b.partitionId)) {
      const taken = new Set(p.replicas.filter((r) => !remove.has(r)));
      const to: number[] = [];
      for (const r of p.replicas) {
        if (!remove.has(r)) to.push(r);
        else {
          const replacement = pick(taken);
          if (replacement !== undefined) to.push(replacement);
        }
      }
      const want = Math.min(
        Math.max(p.replicas.length, options.targetReplicas ?? 0),
        candidates.length,
      );
      while (to.length < want) {
        const extra = pick(taken);
        if (extra === undefined) break;
        to.push(extra);
      }
      if (to.length !== p.replicas.length || to.some((r, i) => r !== p.replicas[i]))
        moves.push({ topic: t.name, partition: p.partitionId, from: [...p.replicas], to });
    }
  }
  return moves;
}

// ---------------------------------------------------------------------------------------------
// Quorum

export interface KafkaVoter {
  id: number;
  directoryId: string;
  /** Host of its controller endpoint. */
  host?: string;
}

export interface KafkaQuorum {
  leaderId: number;
  voters: KafkaVoter[];
  observers: KafkaVoter[];
}

const replicaStateSchema = z.array(
  z.object({
    id: z.number(),
    directoryId: z.string().optional(),
    endpoints: z.array(z.string()).optional(),
  }),
);

/** Parses `kafka-metadata-quorum describe --status` (3.9). */
export function parseQuorumStatus(text: string): KafkaQuorum {
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const replicas = (name: string): KafkaVoter[] => {
    const raw = field(name);
    if (raw === undefined) throw new Error(`no ${name} in quorum status`);
    return replicaStateSchema.parse(JSON.parse(raw)).map((r) => ({
      id: r.id,
      directoryId: r.directoryId ?? 'AAAAAAAAAAAAAAAAAAAAAA',
      host: r.endpoints?.[0] ? /:\/\/([^:]+):\d+$/.exec(r.endpoints[0])?.[1] : undefined,
    }));
  };
  const leaderId = Number(field('LeaderId'));
  if (!Number.isInteger(leaderId)) throw new Error('no LeaderId in quorum status');
  return { leaderId, voters: replicas('CurrentVoters'), observers: replicas('CurrentObservers') };
}

const quorumSize = (n: number) => Math.floor(n / 2) + 1;

// ---------------------------------------------------------------------------------------------
// Data files

const dataManifestSchema = z.object({
  format: z.literal('clusterguard-kafka-messages/1'),
  createdAt: z.string(),
  clusterId: z.string(),
  topics: z.array(
    z.object({
      name: z.string().regex(topicNamePattern),
      partitions: z.number().int().positive(),
      replicationFactor: z.number().int().positive(),
      configs: z.record(z.string(), z.string()),
      messages: z.number().int().nonnegative(),
      file: z.string(),
    }),
  ),
  warnings: z.array(z.string()),
});
type DataManifest = z.infer<typeof dataManifestSchema>;

const messageLineSchema = z.object({
  partition: z.number().int().nonnegative(),
  offset: z.string(),
  timestamp: z.string(),
  key: z.string().nullable(),
  value: z.string().nullable(),
  headers: z.array(z.tuple([z.string(), z.string()])),
});
type MessageLine = z.infer<typeof messageLineSchema>;

const dataManifestFile = 'topics.json';

/**
 * Reads a message dump (`<op>-data/kafka/`) the way a restore or import would, without a
 * broker: the manifest, then every line of every topic file parsed and counted against the
 * manifest. For a restore test; throws naming the first thing that would fail.
 */
export async function readKafkaDump(
  folder: string,
  signal?: AbortSignal,
): Promise<{ topics: number; messages: number }> {
  let data: DataManifest;
  try {
    data = dataManifestSchema.parse(
      JSON.parse(await readFile(path.join(folder, dataManifestFile), 'utf8')),
    );
  } catch (err) {
    throw new ClusterGuardError(
      'UnsafeArchive',
      `${folder}/${dataManifestFile} is missing or not a clusterguard kafka message dump (${(err as Error).message.split('\n')[0]})`,
    );
  }
  let messages = 0;
  for (const t of data.topics) {
    if (t.file.includes('/') || t.file.includes('..')) {
      throw new ClusterGuardError(
        'UnsafeArchive',
        `topic ${t.name}: file ${t.file} is not a plain name`,
      );
    }
    let read = 0;
    const lines = createInterface({
      input: createReadStream(path.join(folder, t.file)),
      crlfDelay: Infinity,
    });
    for await (const text of lines) {
      signal?.throwIfAborted();
      if (!text.trim()) continue;
      const parsed = messageLineSchema.safeParse(JSON.parse(text));
      if (!parsed.success) {
        throw new ClusterGuardError(
          'UnsafeArchive',
          `topic ${t.name}: line ${read + 1} of ${t.file} is not a message: ${parsed.error.issues[0]?.message ?? ''}`,
        );
      }
      read += 1;
    }
    if (read !== t.messages) {
      throw new ClusterGuardError(
        'UnsafeArchive',
        `topic ${t.name}: ${t.file} holds ${read} messages, its manifest says ${t.messages}`,
      );
    }
    messages += read;
  }
  return { topics: data.topics.length, messages };
}

function headerPairs(headers: IHeaders | undefined): [string, string][] {
  const pairs: [string, string][] = [];
  for (const [k, v] of Object.entries(headers ?? {})) {
    for (const item of Array.isArray(v) ? v : v === undefined ? [] : [v])
      pairs.push([k, Buffer.from(item).toString('base64')]);
  }
  return pairs;
}

function headersFrom(pairs: [string, string][]): IHeaders {
  const headers: Record<string, Buffer[]> = {};
  for (const [k, v] of pairs) (headers[k] ??= []).push(Buffer.from(v, 'base64'));
  return Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k, v.length === 1 ? v[0] : v]),
  );
}

// ---------------------------------------------------------------------------------------------
// The adapter

export interface KafkaAdapter extends MiddlewareAdapter {
  readonly name: 'kafka';
  generateConfig(cluster: ClusterView, address: string): Record<string, string>;
  createCluster(cluster: ClusterView): Promise<void>;
  joinCluster(cluster: ClusterView): Promise<void>;
  rejoinCluster(cluster: ClusterView): Promise<void>;
  decommissionCluster(cluster: ClusterView, leaving: string[]): Promise<void>;
  exportData(): Promise<DataResult>;
  importData(): Promise<DataResult>;
  backupData(): Promise<DataResult>;
  restoreData(): Promise<DataResult>;
  /** The controller quorum as the cluster reports it (one `kafka-metadata-quorum` run). */
  describeQuorum(): Promise<KafkaQuorum>;
}

type Failure = 'MiddlewareFailure' | 'InvalidConfig' | 'InvalidInput' | 'MissingBinary';

export function createKafkaAdapter(deps: AdapterDeps<KafkaOptions>): KafkaAdapter {
  const options: KafkaOptions = { ...defaultKafkaOptions, ...deps.options };
  const { address, layout, logger } = deps;
  const java = deps.java ?? 'java';
  const libs = path.join(deps.binDir, 'kafka', 'libs');
  const confFolder = layout.nodeConfigFolder('kafka');
  const runtimeFolder = path.join(path.dirname(confFolder), 'runtime');
  const dataFolder = layout.nodeDataFolder('kafka');
  const logFolder = layout.nodeLogFolder('kafka');
  const runtimeServer = path.join(runtimeFolder, kafkaConfigFiles.server);
  const runtimeLog4j = path.join(runtimeFolder, kafkaConfigFiles.log4j);
  const toolLog4j = path.join(runtimeFolder, 'tools-log4j.properties');
  const who = `kafka on ${address}`;

  const spec: ProcessSpec = {
    name: who,
    command: java,
    args: [
      `-Xmx${options.heapMb}m`,
      `-Xms${Math.min(options.heapMb, 64)}m`,
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-XX:InitiatingHeapOccupancyPercent=35',
      '-XX:+ExplicitGCInvokesConcurrent',
      // A broker out of memory is better dead (and restarted by a runbook) than half-alive.
      '-XX:+ExitOnOutOfMemoryError',
      '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${runtimeLog4j}`,
      '-cp',
      `${libs}/*`,
      'kafka.Kafka',
      runtimeServer,
    ],
    cwd: path.dirname(dataFolder),
    pidFile: path.join(path.dirname(dataFolder), 'kafka.pid'),
    logFile: path.join(logFolder, 'kafka.out'),
    marker: runtimeServer,
  };

  const fail = (type: Failure, message: string) => new ClusterGuardError(type, message);
  const opts = (op: MiddlewareOperation) =>
    operationOptions(kafkaOperationDefaults, deps.operationOptions, op);
  const progress = (detail: string) => {
    logger.debug(detail);
    deps.onProgress?.(detail);
  };
  const pause = (ms: number) => sleep(ms, undefined, { signal: deps.signal });

  /**
   * `fn` again while Kafka answers with an error it calls retriable (a leader that moved, a
   * topic not yet known to the broker asked): right after a reassignment or a topic's
   * re-creation, metadata is briefly stale. Bounded by the operation's deadline.
   */
  async function whileStale<T>(what: string, deadline: number, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const retriable =
          (err as { retriable?: boolean }).retriable === true ||
          (err as { cause?: { retriable?: boolean } }).cause?.retriable === true;
        if (!retriable || Date.now() > deadline) throw err;
        logger.warn(`kafka: ${what} met stale metadata; again`, {
          attempt,
          error: (err as Error).message,
        });
        await pause(Math.min(500 * attempt, 3000));
      }
    }
  }
  const deadlineFor = (op: MiddlewareOperation) => Date.now() + opts(op).timeoutMs;

  // --- files ------------------------------------------------------------------------------

  async function readManifest(): Promise<KafkaNodeManifest> {
    const file = path.join(confFolder, kafkaConfigFiles.manifest);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      throw fail(
        'InvalidConfig',
        `${who} has no configuration (${file} is missing): run createCluster on the master, or joinCluster after downloading the master's archive`,
      );
    }
    try {
      return manifestSchema.parse(JSON.parse(text));
    } catch (err) {
      throw fail(
        'InvalidConfig',
        `${who}: ${file} is not a clusterguard kafka manifest (${(err as Error).message.split('\n')[0]}); regenerate the configuration on the master`,
      );
    }
  }

  async function readMeta(): Promise<Record<string, string> | undefined> {
    try {
      const text = await readFile(path.join(dataFolder, 'meta.properties'), 'utf8');
      return Object.fromEntries(
        text
          .split('\n')
          .filter((l) => l.includes('=') && !l.startsWith('#'))
          .map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1).trim()]),
      );
    } catch {
      return undefined;
    }
  }

  async function writeRuntimeConfig(): Promise<void> {
    const resolve = (text: string) =>
      text.replaceAll(dataToken, dataFolder).replaceAll(logToken, logFolder);
    const files: Record<string, string> = {};
    for (const name of [kafkaConfigFiles.server, kafkaConfigFiles.log4j]) {
      const file = path.join(confFolder, name);
      try {
        files[name] = resolve(await readFile(file, 'utf8'));
      } catch {
        throw fail(
          'InvalidConfig',
          `${who}: ${file} is missing; regenerate the configuration on the master`,
        );
      }
    }
    await mkdir(runtimeFolder, { recursive: true });
    for (const [name, text] of Object.entries(files))
      await writeFile(path.join(runtimeFolder, name), text);
    await writeToolLog4j();
    await mkdir(logFolder, { recursive: true });
    await mkdir(dataFolder, { recursive: true });
  }

  /** The tools (format, quorum, unregister) print only errors, to stderr, for `reason`. */
  async function writeToolLog4j(): Promise<void> {
    await mkdir(runtimeFolder, { recursive: true });
    await writeFile(
      toolLog4j,
      [
        'log4j.rootLogger=ERROR, stderr',
        'log4j.appender.stderr=org.apache.log4j.ConsoleAppender',
        'log4j.appender.stderr.Target=System.err',
        'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.stderr.layout.ConversionPattern=%p %m (%c)%n',
        '',
      ].join('\n'),
    );
  }

  async function checkBinaries(): Promise<void> {
    const jars = await readdir(libs).catch(() => [] as string[]);
    if (!jars.some((j) => /^kafka_\d+\.\d+-\d+\.\d+\.\d+\.jar$/.test(j)))
      throw fail(
        'MissingBinary',
        `${who}: no Kafka jars in ${libs} (expected kafka_2.13-<version>.jar and its dependencies); install the Kafka libs there (development: npm run setup)`,
      );
  }

  // --- Java tools -------------------------------------------------------------------------

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

  // --- kafkajs ----------------------------------------------------------------------------

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

  // --- lifecycle --------------------------------------------------------------------------

  async function status(m?: KafkaNodeManifest): Promise<ServerStatus> {
    const pid = await runningPid(spec);
    if (!pid) return { running: false, healthy: false, detail: `${who} is not running` };
    let manifest = m;
    try {
      manifest ??= await readManifest();
    } catch (err) {
      return { running: true, healthy: false, pid, detail: (err as Error).message };
    }
    try {
      const view = await ownView(manifest);
      const ids = view.brokers.map((b) => b.nodeId).sort((a, b) => a - b);
      const registered = ids.includes(manifest.nodeId);
      return {
        running: true,
        healthy: registered,
        pid,
        detail: registered
          ? `${who}: broker ${manifest.nodeId} registered in cluster ${view.clusterId}; brokers [${ids.join(', ')}]`
          : `${who}: answers metadata but broker ${manifest.nodeId} is not registered (brokers [${ids.join(', ')}]); its controller quorum may have no leader`,
      };
    } catch (err) {
      return {
        running: true,
        healthy: false,
        pid,
        detail: `${who} (pid ${pid}) does not answer metadata requests on ${address}:${manifest.brokerPort}: ${(err as Error).message}`,
      };
    }
  }

  async function isListening(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = net.connect({ host, port });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(timeoutMs, () => done(false));
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
    });
  }

  async function format(m: KafkaNodeManifest, mode: 'standalone' | 'observer'): Promise<void> {
    if (mode === 'standalone' && m.nodes.length > 1) {
      // A second one-voter quorum next to a running one would split the cluster in two.
      for (const other of m.nodes.filter((n) => n !== address)) {
        if (await isListening(other, m.controllerPort))
          throw fail(
            'MiddlewareFailure',
            `${who} has no data but a kafka controller already answers on ${other}:${m.controllerPort}: ` +
              `formatting this master as a new quorum would split the cluster. Rejoin this node instead (joinCluster), ` +
              `or stop kafka on the other members before creating the cluster again`,
          );
      }
    }
    const r = await tool('kafka.tools.StorageTool', [
      'format',
      '--cluster-id',
      m.clusterId,
      '--config',
      runtimeServer,
      mode === 'standalone' ? '--standalone' : '--no-initial-controllers',
    ]);
    if (!r.ok)
      throw fail(
        'MiddlewareFailure',
        `${who} failed to start: formatting its storage (${dataFolder}) failed: ${reason(r.output)}. Check ${confFolder} and that the folder is writable`,
      );
    logger.info(`formatted kafka storage`, { address, clusterId: m.clusterId, mode });
  }

  async function start(
    op: MiddlewareOperation,
    formatMode?: 'standalone' | 'observer',
  ): Promise<ServerStatus> {
    const m = await readManifest();
    await checkBinaries();
    if (!(await runningPid(spec))) {
      await writeRuntimeConfig();
      const meta = await readMeta();
      if (!meta) {
        await format(m, formatMode ?? (m.master === address ? 'standalone' : 'observer'));
      } else if (meta['cluster.id'] !== m.clusterId || meta['node.id'] !== String(m.nodeId)) {
        throw fail(
          'InvalidConfig',
          `${who}: its data (${dataFolder}) belongs to kafka cluster ${meta['cluster.id']} as node ${meta['node.id']}, ` +
            `but its configuration is for cluster ${m.clusterId} as node ${m.nodeId}. The data is kept: ` +
            `to join this cluster run joinCluster (it wipes the data), or restore the matching configuration`,
        );
      }
    }
    const o = opts(op);
    const started = await startProcess(spec, {
      timeoutMs: o.timeoutMs,
      successFilter: o.successFilter,
      failFilter: o.failFilter,
      signal: deps.signal,
      onWait: (ms) => progress(`waiting for ${who} to start (${Math.round(ms / 1000)} s)`),
      ready: async () => (await ownView(m)).brokers.some((b) => b.nodeId === m.nodeId),
    });
    logger.info(started.alreadyRunning ? 'kafka already running' : 'kafka started', {
      address,
      pid: started.pid,
    });
    return status(m);
  }

  async function stop(force?: boolean): Promise<void> {
    const { wasRunning } = await stopProcess(spec, {
      graceMs: opts('stopServer').timeoutMs,
      force,
    });
    if (wasRunning) logger.info('kafka stopped', { address, force: !!force });
  }

  // --- quorum membership ------------------------------------------------------------------

  async function becomeVoter(m: KafkaNodeManifest, deadline: number): Promise<void> {
    const directoryId = (await readMeta())?.['directory.id'];
    if (!directoryId)
      throw fail('MiddlewareFailure', `${who}: no directory.id in ${dataFolder}/meta.properties`);
    const controllers = controllersOf(m.nodes, m);
    let last = '';
    for (;;) {
      deps.signal?.throwIfAborted();
      try {
        const q = await describeQuorumVia(controllers);
        const mine = q.voters.find((v) => v.id === m.nodeId);
        if (mine?.directoryId === directoryId) return;
        if (mine) {
          // Our own earlier incarnation (its data was wiped): it can never vote again, and a
          // node id may be a voter only once.
          progress(`${who}: removing its stale voter entry (directory ${mine.directoryId})`);
          await removeVoter(controllers, mine);
          continue;
        }
        const r = await tool(
          'org.apache.kafka.tools.MetadataQuorumCommand',
          [
            '--bootstrap-controller',
            controllers,
            '--command-config',
            runtimeServer,
            'add-controller',
          ],
          60_000,
        );
        if (r.ok) {
          logger.info('kafka controller added to the quorum', {
            address,
            nodeId: m.nodeId,
            directoryId,
          });
          return;
        }
        last = reason(r.output);
      } catch (err) {
        if (deps.signal?.aborted) throw err;
        last = (err as Error).message;
      }
      if (Date.now() > deadline)
        throw fail(
          'MiddlewareFailure',
          `${who} runs as an observer but could not become a controller voter: ${last}. ` +
            `Check the quorum (kafka-metadata-quorum --bootstrap-controller ${controllers} describe --status) and run joinCluster again`,
        );
      // Only one voter change at a time: parallel joins take turns.
      progress(`${who}: waiting to join the controller quorum (${last})`);
      await pause(2000);
    }
  }

  async function removeVoter(controllers: string, voter: KafkaVoter): Promise<void> {
    const r = await tool(
      'org.apache.kafka.tools.MetadataQuorumCommand',
      [
        '--bootstrap-controller',
        controllers,
        'remove-controller',
        '--controller-id',
        String(voter.id),
        '--controller-directory-id',
        voter.directoryId,
      ],
      60_000,
    );
    if (!r.ok)
      throw fail(
        'MiddlewareFailure',
        `${who}: removing kafka controller ${voter.id} (directory ${voter.directoryId}) from the quorum failed: ${reason(r.output)}`,
      );
    logger.info('kafka controller removed from the quorum', { voter: voter.id });
  }

  // --- replica movement -------------------------------------------------------------------

  async function applyMoves(
    admin: Admin,
    moves: ReplicaMove[],
    remove: ReadonlySet<number>,
    deadline: number,
    what: string,
  ): Promise<void> {
    if (moves.length > 0) {
      const byTopic = new Map<string, { partition: number; replicas: number[] }[]>();
      for (const mv of moves) {
        const list = byTopic.get(mv.topic) ?? [];
        list.push({ partition: mv.partition, replicas: mv.to });
        byTopic.set(mv.topic, list);
      }
      await admin.alterPartitionReassignments({
        topics: [...byTopic].map(([topic, partitionAssignment]) => ({
          topic,
          partitionAssignment,
        })),
        timeout: 30_000,
      });
      logger.info(`kafka reassignment submitted: ${what}`, { partitions: moves.length });
    }
    for (;;) {
      deps.signal?.throwIfAborted();
      const ongoing = await admin.listPartitionReassignments({ timeout: 15_000 });
      const running = ongoing.topics.flatMap((t) =>
        t.partitions.map((p) => `${t.topic}-${p.partitionIndex}`),
      );
      const lagging: string[] = [];
      for (const t of await allTopics(admin))
        for (const p of t.partitions)
          if (p.replicas.some((r) => remove.has(r)) || p.isr.length < p.replicas.length)
            lagging.push(
              `${t.name}-${p.partitionId} (replicas [${p.replicas.join(',')}], in sync [${p.isr.join(',')}])`,
            );
      if (running.length === 0 && lagging.length === 0) return;
      if (Date.now() > deadline)
        throw fail(
          'MiddlewareFailure',
          `${who}: ${what} did not finish in time: ${running.length} reassignments still running` +
            `${running.length ? ` (${running.slice(0, 5).join(', ')})` : ''}, ${lagging.length} partitions not fully in sync` +
            `${lagging.length ? ` (${lagging.slice(0, 5).join('; ')})` : ''}. Nothing is lost; the reassignment continues in Kafka. ` +
            `Check that every remaining broker is up, then run the operation again (it resumes)`,
        );
      progress(`${what}: ${running.length} partitions moving, ${lagging.length} not in sync`);
      await pause(1000);
    }
  }

  /** Creates missing configured topics and raises topics below the cluster's replication. */
  async function ensureTopics(m: KafkaNodeManifest, deadline: number): Promise<void> {
    await withAdmin(brokersOf(m.nodes, m), async (admin) => {
      const live = (await admin.describeCluster()).brokers.map((b) => b.nodeId);
      if (live.length < m.replicationFactor) {
        logger.info('kafka topics wait for more brokers', {
          live: live.length,
          need: m.replicationFactor,
        });
        return;
      }
      const existing = new Set(await admin.listTopics());
      const missing = m.topics.filter((t) => !existing.has(t.name));
      if (missing.length > 0) {
        await admin.createTopics({
          waitForLeaders: false,
          timeout: 30_000,
          topics: missing.map((t) => ({
            topic: t.name,
            numPartitions: t.partitions,
            replicationFactor: m.replicationFactor,
          })),
        });
        await waitForLeaders(
          admin,
          missing.map((t) => t.name),
          deadline,
        );
        logger.info('kafka topics created', {
          topics: missing.map((t) => t.name),
          replicationFactor: m.replicationFactor,
        });
      }
      const moves = planReplicaMoves(await allTopics(admin), live, {
        targetReplicas: m.replicationFactor,
      });
      if (moves.length > 0)
        await applyMoves(
          admin,
          moves,
          new Set(),
          deadline,
          `raising topics to ${m.replicationFactor} replicas`,
        );
    });
  }

  /**
   * Every partition of every topic (internal ones included) as the cluster reports it now: in
   * sync when each has a leader and all its replicas in its in-sync set, and no reassignment
   * runs. A membership change is not done before this holds.
   */
  async function inSyncNow(): Promise<InSyncReport> {
    const m = await readManifest();
    return withAdmin(brokersOf(m.nodes, m), async (admin) => {
      const topics = await allTopics(admin);
      const moving = (await admin.listPartitionReassignments({ timeout: 10_000 })).topics.flatMap(
        (t) => t.partitions.map((p) => `${t.topic}-${p.partitionIndex}`),
      );
      const leaderless: string[] = [];
      const lagging: string[] = [];
      let partitions = 0;
      for (const t of topics)
        for (const p of t.partitions) {
          partitions++;
          const name = `${t.name}-${p.partitionId}`;
          if (p.leader < 0) leaderless.push(name);
          else if (p.isr.length < p.replicas.length)
            lagging.push(`${name} (in sync [${p.isr.join(',')}] of [${p.replicas.join(',')}])`);
        }
      const some = (list: string[]) =>
        `${list.slice(0, 4).join(', ')}${list.length > 4 ? `, … ${list.length - 4} more` : ''}`;
      if (leaderless.length + lagging.length + moving.length === 0)
        return {
          inSync: true,
          detail: `kafka: all ${partitions} partitions of ${topics.length} topics have a leader and every replica in sync`,
        };
      return {
        inSync: false,
        detail:
          `kafka: ${partitions} partitions, ` +
          [
            leaderless.length ? `${leaderless.length} without a leader (${some(leaderless)})` : '',
            lagging.length ? `${lagging.length} with replicas out of sync (${some(lagging)})` : '',
            moving.length ? `${moving.length} being reassigned (${some(moving)})` : '',
          ]
            .filter(Boolean)
            .join(', '),
      };
    });
  }

  // --- membership operations --------------------------------------------------------------

  async function join(op: 'joinCluster' | 'rejoinCluster'): Promise<void> {
    const deadline = deadlineFor(op);
    const source = layout.clusterConfigFor(address, 'kafka');
    try {
      await readFile(path.join(source, kafkaConfigFiles.manifest));
    } catch {
      throw fail(
        'InvalidConfig',
        `${who} cannot ${op === 'joinCluster' ? 'join' : 'rejoin'}: no configuration at ${source}; download the master's archive (cluster-distribution/${address}.zip) first`,
      );
    }
    await stop();
    await replaceFolder(source, confFolder);
    const m = await readManifest();
    // A node that is still formatted for this cluster as the same node id keeps everything: its
    // partition logs, its KRaft identity (meta.properties, directory id) and its metadata log.
    // Its replicas may still be in a partition's in-sync set (after a whole-cluster stop the last
    // broker to stop stays its only member), and the controller would elect an emptied one
    // leader, from offset 0, and have every other replica truncate to match: acknowledged
    // messages gone. Kept logs are safe: a replica behind catches up from the leader, one that
    // diverged is truncated by the leader-epoch protocol. (The old guard service emptied the
    // messages here; see docs/design.md, "Data safety".) Only a node formatted for another
    // cluster or node id starts empty, and a new node id holds no replica that could lead.
    const meta = await readMeta();
    if (meta?.['cluster.id'] === m.clusterId && meta['node.id'] === String(m.nodeId)) {
      logger.info('kafka data kept: this node is formatted for this cluster as the same node', {
        address,
        nodeId: m.nodeId,
      });
    } else {
      if (meta)
        logger.info('kafka data wiped: formatted for another cluster or node id', { address });
      await wipeFolder(dataFolder);
    }
    await start(op, 'observer');
    await becomeVoter(m, deadline);
    await ensureTopics(m, deadline);
  }

  async function decommission(cluster: ClusterView, leavingInput: string[]): Promise<void> {
    const deadline = deadlineFor('decommissionCluster');
    const leaving = [...new Set(leavingInput)];
    if (leaving.length === 0) return;
    for (const l of leaving)
      if (!isNodeAddress(l)) throw fail('InvalidInput', `"${l}" is not a node address`);
    const m = await readManifest();
    const survivors = cluster.nodes.filter((n) => !leaving.includes(n));
    if (survivors.length === 0)
      throw new ClusterGuardError(
        'UnsafeMembershipChange',
        `cannot decommission kafka on ${leaving.join(', ')}: no member would remain. Nothing was changed`,
      );
    const controllers = controllersOf(survivors, m);

    await withAdmin(brokersOf(survivors, m), async (admin) => {
      const brokers = (await admin.describeCluster()).brokers;
      const quorum = await describeQuorumVia(controllers);
      const idOf = (addr: string): number | undefined =>
        brokers.find((b) => b.host === addr)?.nodeId ??
        quorum.voters.find((v) => v.host === addr)?.id ??
        cluster.memberIds[addr] ??
        m.memberIds[addr];
      const leavingIds = new Map<number, string>();
      for (const l of leaving) {
        const id = idOf(l);
        if (id !== undefined) leavingIds.set(id, l);
        else
          logger.warn('kafka: leaving node is unknown to the cluster; nothing to move', {
            node: l,
          });
      }
      const removeSet = new Set(leavingIds.keys());
      const liveIds = brokers.map((b) => b.nodeId);
      const remaining = liveIds.filter((id) => !removeSet.has(id));
      const names = (ids: number[]) =>
        ids.map((id) => brokers.find((b) => b.nodeId === id)?.host ?? `node ${id}`).join(', ');
      const leavingText =
        [...leavingIds].map(([id, a]) => `${a} (kafka node ${id})`).join(', ') ||
        leaving.join(', ');

      // Pre-checks first, so that a refusal changes nothing.
      const topics = await allTopics(admin);
      const blocking = topics
        .map((t) => ({
          name: t.name,
          rf: Math.max(0, ...t.partitions.map((p) => p.replicas.length)),
        }))
        .filter((t) => t.rf > remaining.length);
      // Brokers of surviving members that are not registered right now (restarting, or fenced
      // after a missed heartbeat) will be back: a shortfall they cause is worth a retry, and the
      // advice to add a node would be wrong.
      const survivorsDown = survivors.filter((n) => {
        const id = idOf(n);
        return id === undefined || !liveIds.includes(id);
      });
      if (blocking.length > 0 && survivorsDown.length > 0) {
        const enough = blocking.every((t) => t.rf <= remaining.length + survivorsDown.length);
        if (enough)
          throw fail(
            'MiddlewareFailure',
            `cannot decommission kafka on ${leavingText} yet: the broker(s) of surviving member(s) ` +
              `${survivorsDown.join(', ')} are not running right now, so only ${remaining.length} ` +
              `would serve topics that need more replicas. Nothing was changed. The step is retried; ` +
              `if it stays parked, start kafka on those nodes, then retry`,
          );
      }
      if (blocking.length > 0) {
        const list = blocking.map((t) => `"${t.name}" (replication factor ${t.rf})`).join(', ');
        throw new ClusterGuardError(
          'UnsafeMembershipChange',
          `cannot decommission kafka on ${leavingText}: only ${remaining.length} running broker(s) would remain ` +
            `[${names(remaining)}], fewer than the replicas of topic ${list}. Nothing was changed. ` +
            `Add a node first (join it, then decommission), or lower those topics' replication factor to at most ` +
            `${remaining.length} with a partition reassignment, then decommission again`,
        );
      }
      // A survivor that is down keeps its partitions under-replicated: the wait below could
      // never end.
      const down = new Map<number, string[]>();
      for (const t of topics)
        for (const p of t.partitions)
          for (const r of p.replicas)
            if (!liveIds.includes(r) && !removeSet.has(r))
              down.set(r, [...(down.get(r) ?? []), `${t.name}-${p.partitionId}`]);
      if (down.size > 0)
        throw fail(
          'MiddlewareFailure',
          `cannot decommission kafka on ${leavingText} now: broker(s) ${[...down.keys()].join(', ')} hold replicas ` +
            `(${[...down.values()].flat().slice(0, 5).join(', ')}${[...down.values()].flat().length > 5 ? ', …' : ''}) but are not running, so the cluster cannot get back ` +
            `in sync. Nothing was changed. Start kafka on those nodes (or decommission them too), then retry`,
        );
      const leavingVoters = quorum.voters.filter((v) => removeSet.has(v.id));
      let voters = [...quorum.voters];
      for (const v of leavingVoters) {
        const after = voters.filter((x) => x !== v);
        const liveAfter = after.filter((x) => liveIds.includes(x.id)).length;
        if (after.length === 0 || liveAfter < quorumSize(after.length))
          throw new ClusterGuardError(
            'UnsafeMembershipChange',
            `cannot decommission kafka on ${leavingText}: removing controller ${v.id} would leave ` +
              `${after.length} voter(s) of which only ${liveAfter} are running, no majority. Nothing was changed. ` +
              `Start the stopped members (or add a node) first, then decommission again`,
          );
        voters = after;
      }

      // Replicas move off the leaving brokers before anything stops.
      const moves = planReplicaMoves(topics, liveIds, { remove: [...removeSet] });
      await applyMoves(admin, moves, removeSet, deadline, `moving replicas off ${leavingText}`);

      for (const v of leavingVoters) {
        const current = await describeQuorumVia(controllers);
        const entry = current.voters.find((x) => x.id === v.id && x.directoryId === v.directoryId);
        if (entry) await removeVoter(controllers, entry);
      }

      // This node's broker is known to be down once stop() returns; the others' metadata learns
      // it a moment later, so it is not asked.
      if (leaving.includes(address)) await stop();
      const stillRunning = (await admin.describeCluster()).brokers.map((b) => b.nodeId);
      for (const [id, addr] of leavingIds) {
        if (addr !== address && stillRunning.includes(id)) {
          // An unregistered broker that keeps running can neither re-register nor shut down
          // cleanly (STALE_BROKER_EPOCH); it stays registered until it is stopped.
          logger.warn(
            `kafka broker ${id} on ${addr} holds no replicas and is no controller, but still runs: stop it and run decommissionCluster again to unregister it`,
          );
          continue;
        }
        const r = await tool('org.apache.kafka.tools.ClusterTool', [
          'unregister',
          '--bootstrap-server',
          brokersOf(survivors, m).join(','),
          '--id',
          String(id),
        ]);
        if (
          !r.ok &&
          !/not registered|BrokerIdNotRegistered|BROKER_ID_NOT_REGISTERED/i.test(r.output)
        )
          throw fail(
            'MiddlewareFailure',
            `${who}: replicas were moved off ${addr} and it left the quorum, but unregistering kafka broker ${id} failed: ${reason(r.output)}. Run decommissionCluster again`,
          );
        logger.info('kafka broker unregistered', { broker: id, node: addr });
      }
    });
  }

  // --- data operations --------------------------------------------------------------------

  async function dump(op: DataOperation): Promise<DataResult> {
    const deadline = deadlineFor(`${op}Data`);
    const folder = layout.workingFolder(op, 'kafka');
    await wipeFolder(folder);
    const m = await readManifest();
    const kafka = client(brokersOf(m.nodes, m));
    const admin = kafka.admin();
    await admin.connect();
    try {
      // Kafka's internal topics, and clusterguard's own event log: a restore must not rewind
      // the record of what was done to the cluster (the restore itself included).
      const topics = (await allTopics(admin))
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
          for (const o of await whileStale(`offsets of ${t.name}`, deadline, () =>
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
      logger.info(`kafka ${op} written`, {
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
      await whileStale('subscribing', deadline, () =>
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
        deps.signal?.throwIfAborted();
        if (ends.size === 0) break;
        // Compaction and transaction markers can hide a partition's last offsets: a partition
        // that stays silent long after the group started is read to its end.
        if (joined && Date.now() - lastActivity > 15_000) {
          for (const [topic, pending] of ends)
            for (const [partition, end] of pending)
              manifest.warnings.push(
                `${topic}-${partition}: no records after ${counts.get(topic) ?? 0} messages although its end offset was ${end} (compacted or transactional)`,
              );
          logger.warn(`kafka ${op}: some partitions ended early`, { warnings: manifest.warnings });
          break;
        }
        if (Date.now() > deadline)
          throw fail(
            'MiddlewareFailure',
            `${who}: reading topics for ${op} did not finish in time; still reading ${[...ends].map(([t, p]) => `${t} (${p.size} partitions)`).join(', ')}. ` +
              `Check that every partition has a leader and raise the ${op}Data timeout`,
          );
        progress(`${op}: reading ${[...ends.keys()].join(', ')}`);
        await pause(200);
      }
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
    }
  }

  async function load(op: DataOperation, replace: boolean): Promise<DataResult> {
    const deadline = deadlineFor(`${op}Data`);
    const folder = layout.workingFolder(op, 'kafka');
    let data: DataManifest;
    try {
      data = dataManifestSchema.parse(
        JSON.parse(await readFile(path.join(folder, dataManifestFile), 'utf8')),
      );
    } catch (err) {
      throw fail(
        'InvalidInput',
        `${who}: ${folder}/${dataManifestFile} is missing or not a clusterguard kafka message dump (${(err as Error).message.split('\n')[0]}); unpack the archive into ${folder} first`,
      );
    }
    const m = await readManifest();
    const kafka = client(brokersOf(m.nodes, m));
    await withAdmin(brokersOf(m.nodes, m), async (admin) => {
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
          deps.signal?.throwIfAborted();
          const rf = Math.min(t.replicationFactor, m.replicationFactor, live);
          const partitions = await readyTopic(admin, op, t, rf, replace, deadline);
          const total = async () =>
            (
              await whileStale(`offsets of ${t.name}`, deadline, () =>
                admin.fetchTopicOffsets(t.name),
              )
            ).reduce((n, o) => n + BigInt(o.high), 0n);
          const before = await total();
          const sent = await produceFile(producer, path.join(folder, t.file), t.name, partitions);
          if (sent !== t.messages)
            throw fail(
              'MiddlewareFailure',
              `${who}: ${op} of topic ${t.name} read ${sent} messages but the dump lists ${t.messages}; the dump in ${folder} is incomplete`,
            );
          const added = (await total()) - before;
          if (added !== BigInt(sent))
            logger.warn(`kafka ${op}: topic ${t.name} grew by ${added} messages for ${sent} sent`, {
              topic: t.name,
            });
          progress(`${op}: ${t.name} ← ${sent} messages`);
        }
      } finally {
        await producer.disconnect().catch(() => undefined);
      }
    });
    logger.info(`kafka ${op} done`, { folder, topics: data.topics.length });
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
      deps.signal?.throwIfAborted();
      try {
        const found = (await allTopics(admin)).find((x) => x.name === t.name);
        if (!gone) {
          if (!found) gone = true;
          else if (!deleteSent) {
            await admin.deleteTopics({ topics: [t.name], timeout: 30_000 });
            deleteSent = true;
            logger.info(`kafka ${op}: deleted topic before restoring it`, { topic: t.name });
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
        throw fail(
          'MiddlewareFailure',
          `${who}: topic ${t.name} could not be made ready for ${op} (${last}); check the brokers and run ${op}Data again`,
        );
      progress(`${op}: topic ${t.name}: ${last}`);
      await pause(300);
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

  // --- the adapter ------------------------------------------------------------------------

  return withOperations<Omit<KafkaAdapter, 'operations'>>({
    name: 'kafka',
    generateConfig: (cluster, node) => generateKafkaConfig(cluster, node, options),

    startServer: () => start('startServer'),
    stopServer: (o) => stop(o?.force),
    checkServer: () => status(),
    checkInSync: () =>
      waitInSync(inSyncNow, {
        timeoutMs: opts('checkInSync').timeoutMs,
        signal: deps.signal,
        onProgress: progress,
      }),

    async createCluster(cluster) {
      if (cluster.nodes[0] !== address)
        throw fail(
          'InvalidInput',
          `${who} is not the master of [${cluster.nodes.join(', ')}]: createCluster runs on the master (${cluster.nodes[0]}); other members join`,
        );
      for (const node of cluster.nodes)
        await writeFiles(
          layout.clusterConfigFor(node, 'kafka'),
          generateKafkaConfig(cluster, node, options),
        );
      const own = layout.clusterConfigFor(address, 'kafka');
      const current = async (folder: string) =>
        Promise.all(
          Object.values(kafkaConfigFiles).map((f) =>
            readFile(path.join(folder, f), 'utf8').catch(() => undefined),
          ),
        );
      const [next, now] = await Promise.all([current(own), current(confFolder)]);
      // A retried createCluster must not bounce a server that already runs this configuration.
      const unchanged = next.every((text, i) => text !== undefined && text === now[i]);
      if (!(unchanged && (await runningPid(spec)))) {
        await stop();
        await replaceFolder(own, confFolder);
      }
      // Seed 001 §3: the master keeps its data and starts with the new membership.
      const m = await readManifest();
      await start('createCluster');
      await ensureTopics(m, deadlineFor('createCluster'));
    },
    async prepareClusterConfig(cluster) {
      for (const node of cluster.nodes)
        await writeFiles(
          layout.clusterConfigFor(node, 'kafka'),
          generateKafkaConfig(cluster, node, options),
        );
    },

    async inspect() {
      const m = await readManifest();
      return withAdmin(brokersOf(m.nodes, m), async (admin) => {
        const [cluster, topics] = await Promise.all([admin.describeCluster(), allTopics(admin)]);
        return {
          maxReplicationFactor: Math.max(
            0,
            ...topics.flatMap((t) => t.partitions.map((p) => p.replicas.length)),
          ),
          liveMembers: cluster.brokers.map((b) => b.host),
        };
      });
    },

    joinCluster: () => join('joinCluster'),
    rejoinCluster: () => join('rejoinCluster'),
    decommissionCluster: decommission,

    exportData: () => dump('export'),
    importData: () => load('import', false),
    backupData: () => dump('backup'),
    restoreData: () => load('restore', true),

    async describeQuorum() {
      const m = await readManifest();
      return describeQuorumVia(controllersOf(m.nodes, m));
    },
  });
}
