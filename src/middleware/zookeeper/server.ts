import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ClusterGuardError } from '../../contracts/errors.js';
import { operationOptions, runningPid, startProcess, stopProcess } from '../kit/index.js';
import type { AdapterDeps, MiddlewareOperation, ProcessSpec, ServerStatus } from '../kit/index.js';
import {
  checkedOptions,
  defaultOperationOptions,
  NODE_DATA_PLACEHOLDER,
  type ZooKeeperOptions,
} from './config.js';
import { fourLetterWord, parseEnsembleConfig, parseSrvr, servingModes, type Srvr } from './wire.js';

/**
 * Jars that ZooKeeper 3.9 needs at run time but declares `provided` in its pom, so a lib folder
 * assembled by Maven's runtime scope lacks them (its own binary distribution has them).
 */
const requiredJars: { pattern: RegExp; name: string }[] = [
  { pattern: /^zookeeper-\d+\.\d+\.\d+\.jar$/, name: 'zookeeper-<version>.jar' },
  { pattern: /^zookeeper-jute-.*\.jar$/, name: 'zookeeper-jute' },
  { pattern: /^metrics-core-4\..*\.jar$/, name: 'io.dropwizard.metrics:metrics-core 4.x' },
  { pattern: /^snappy-java-.*\.jar$/, name: 'org.xerial.snappy:snappy-java' },
];

/**
 * One node's ZooKeeper server: its process, its files, its four-letter-word probes, and what the
 * membership and data operations share (ensemble.ts, data.ts).
 */
export function createZooKeeperServer(deps: AdapterDeps<ZooKeeperOptions>) {
  const { address, layout, logger } = deps;
  const options = checkedOptions(deps.options);
  const opts = (op: MiddlewareOperation) =>
    operationOptions(defaultOperationOptions, deps.operationOptions, op);
  const who = `ZooKeeper on ${address}`;
  const libDir = path.join(deps.binDir, 'zookeeper', 'lib');
  const configFolder = layout.nodeConfigFolder('zookeeper');
  const zooCfg = path.join(configFolder, 'zoo.cfg');
  const dataFolder = layout.nodeDataFolder('zookeeper');

  const spec: ProcessSpec = {
    name: `zookeeper on ${address}`,
    command: deps.java ?? 'java',
    args: [
      `-Xmx${options.heapMb}m`,
      // Supervised: a server out of memory must exit and be restarted, not limp on.
      '-XX:+ExitOnOutOfMemoryError',
      // slf4j-simple writes no timestamps unless asked; other bindings ignore these.
      '-Dorg.slf4j.simpleLogger.showDateTime=true',
      "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
      '-cp',
      `${libDir}/*`,
      'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      zooCfg,
    ],
    cwd: path.join(layout.nodeDataRoot, 'zookeeper'),
    pidFile: path.join(layout.nodeDataRoot, 'zookeeper', 'zookeeper.pid'),
    logFile: path.join(layout.nodeLogFolder('zookeeper'), 'zookeeper.log'),
    // The config path is unique to this node's root, so another node's server on the same
    // machine is never taken for this one.
    marker: zooCfg,
  };

  const probe = async (host: string, word: 'ruok' | 'srvr') =>
    fourLetterWord(host, options.clientPort, word, opts('checkServer').timeoutMs);

  async function srvrOf(host: string): Promise<Srvr | undefined> {
    try {
      return parseSrvr(await probe(host, 'srvr'));
    } catch {
      return undefined;
    }
  }

  async function checkJars(): Promise<void> {
    let files: string[];
    try {
      files = await readdir(libDir);
    } catch {
      throw new ClusterGuardError(
        'MissingBinary',
        `${who}: no ZooKeeper jars at ${libDir}; install the ZooKeeper lib folder there (development: npm run setup)`,
      );
    }
    const missing = requiredJars.filter((j) => !files.some((f) => j.pattern.test(f)));
    if (missing.length > 0) {
      throw new ClusterGuardError(
        'MissingBinary',
        `${who}: ${libDir} lacks ${missing.map((m) => m.name).join(', ')}, which the ZooKeeper server loads at start ` +
          `(they are "provided" in ZooKeeper's pom, so copy-dependencies with runtime scope omits them); add them to that folder`,
      );
    }
  }

  async function hasConfig(): Promise<boolean> {
    try {
      return (await readFile(zooCfg, 'utf8')).length > 0;
    } catch {
      return false;
    }
  }

  /** Single-member configurations can have a Mode at once; an ensemble only with a quorum. */
  async function configuredVoters(): Promise<number> {
    const text = await readFile(zooCfg, 'utf8');
    const dynamic = /^dynamicConfigFile=(.+)$/m.exec(text)?.[1];
    const full = dynamic ? `${text}\n${await readFile(dynamic, 'utf8').catch(() => '')}` : text;
    return parseEnsembleConfig(full).members.filter((m) => m.role === 'participant').length;
  }

  /** myid lives in dataDir; a wiped or fresh data folder gets it back from node-config. */
  async function ensureMyid(): Promise<void> {
    const myid = (await readFile(path.join(configFolder, 'myid'), 'utf8').catch(() => '')).trim();
    if (!/^\d+$/.test(myid)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `${who}: ${configFolder}/myid is missing or not a number; apply the node's configuration again (createCluster or joinCluster)`,
      );
    }
    await layout.ensure(dataFolder);
    const current = await readFile(path.join(dataFolder, 'myid'), 'utf8').catch(() => '');
    if (current.trim() !== myid) await writeFile(path.join(dataFolder, 'myid'), `${myid}\n`);
  }

  async function launch(op: MiddlewareOperation, requireQuorum: boolean): Promise<void> {
    await checkJars();
    if (!(await hasConfig())) {
      throw new ClusterGuardError(
        'InvalidInput',
        `${who}: no configuration at ${zooCfg}; run createCluster on the master or joinCluster on this node first`,
      );
    }
    const cfgText = await readFile(zooCfg, 'utf8');
    if (/^dataDir=.*\{\{/m.test(cfgText)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `${who}: ${zooCfg} still contains ${NODE_DATA_PLACEHOLDER}; it was copied instead of applied — apply it with createCluster/joinCluster`,
      );
    }
    await ensureMyid();
    const o = opts(op);
    const ready = async () => {
      if ((await probe(address, 'ruok')) !== 'imok') return false;
      if (!requireQuorum) return true;
      const mode = (await srvrOf(address))?.mode;
      return mode !== undefined && servingModes.has(mode);
    };
    try {
      const { pid, alreadyRunning } = await startProcess(spec, {
        timeoutMs: o.timeoutMs,
        successFilter: o.successFilter,
        failFilter: o.failFilter,
        ready,
        signal: deps.signal,
        onWait: (ms) => deps.onProgress?.(`${op}: waiting for ${who} (${Math.round(ms / 1000)} s)`),
      });
      logger.info(`${who} ${alreadyRunning ? 'was already running' : 'started'}`, { op, pid });
    } catch (err) {
      if (err instanceof ClusterGuardError) {
        const waitedForQuorum =
          requireQuorum && /its log showed success but it does not answer/.test(err.message);
        const next = waitedForQuorum
          ? 'Next: it ran but never joined a quorum — start ZooKeeper on a majority of the members ' +
            '(the master first) and check that their peer and election ports are reachable, then retry.'
          : 'Next: fix what the log above names (configuration, ports in use, jars, Java), then retry.';
        throw new ClusterGuardError(err.type, `${who} (${op}): ${err.message}\n${next}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  async function checkServer(): Promise<ServerStatus> {
    const pid = await runningPid(spec);
    if (!pid) return { running: false, healthy: false, detail: `${who} is not running` };
    let ruok: string;
    try {
      ruok = await probe(address, 'ruok');
    } catch (err) {
      return {
        running: true,
        healthy: false,
        pid,
        detail: `${who} runs (pid ${pid}) but does not answer on ${address}:${options.clientPort}: ${(err as Error).message}`,
      };
    }
    const srvr = await srvrOf(address);
    const mode = srvr?.mode;
    const healthy = ruok === 'imok' && mode !== undefined && servingModes.has(mode);
    const detail = healthy
      ? `${mode}, ZooKeeper ${srvr?.version ?? '?'}, zxid ${srvr?.zxid ?? '?'}`
      : srvr?.notServing
        ? `${who} runs (pid ${pid}) but is not serving: no quorum yet (start a majority of the members)`
        : `${who} runs (pid ${pid}) but answered ruok "${ruok}"${mode ? `, mode ${mode}` : ''}`;
    return { running: true, healthy, pid, detail };
  }

  async function stopServer(stopOptions?: { force?: boolean }): Promise<void> {
    const { wasRunning } = await stopProcess(spec, {
      graceMs: opts('stopServer').timeoutMs,
      force: stopOptions?.force,
    });
    if (wasRunning) logger.info(`${who} stopped`, { force: stopOptions?.force ?? false });
  }

  return {
    deps,
    address,
    layout,
    logger,
    options,
    opts,
    who,
    dataFolder,
    srvrOf,
    hasConfig,
    configuredVoters,
    launch,
    checkServer,
    processRunning: async () => (await runningPid(spec)) !== undefined,
    stopServer,
  };
}

export type ZooKeeperServer = ReturnType<typeof createZooKeeperServer>;
