import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterGuardError } from '../../contracts/errors.js';
import {
  operationOptions,
  type AdapterDeps,
  type MiddlewareOperation,
  type ProcessSpec,
} from '../kit/index.js';
import type { KafkaOptions } from './options.js';
import { defaultKafkaOptions, kafkaOperationDefaults } from './options.js';
import type { KafkaNodeManifest } from './config.js';
import { dataToken, logToken, kafkaConfigFiles, manifestSchema } from './config.js';

type Failure = 'MiddlewareFailure' | 'InvalidConfig' | 'InvalidInput' | 'MissingBinary';

/**
 * One node's Kafka: its files (generated, runtime, manifest), its process, and the helpers every
 * operation shares.
 */
export function createKafkaServer(deps: AdapterDeps<KafkaOptions>) {
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

  return {
    deps,
    options,
    address,
    layout,
    logger,
    java,
    libs,
    confFolder,
    runtimeFolder,
    dataFolder,
    logFolder,
    runtimeServer,
    runtimeLog4j,
    toolLog4j,
    who,
    spec,
    fail,
    opts,
    progress,
    pause,
    whileStale,
    deadlineFor,
    readManifest,
    readMeta,
    writeRuntimeConfig,
    writeToolLog4j,
    checkBinaries,
  };
}

export type KafkaServer = ReturnType<typeof createKafkaServer>;
