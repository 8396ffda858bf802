import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ClusterGuardError } from '../../contracts/errors.js';
import { sha256OfFile } from '../../bundles/store.js';
import {
  operationOptions,
  runningPid,
  startProcess,
  stopProcess,
  withOperations,
  type AdapterDeps,
  type MiddlewareAdapter,
  type MiddlewareOperation,
  type OperationOptions,
  type ProcessSpec,
  type ServerStatus,
} from '../kit/index.js';
import { felixManagement, type FelixManagement } from './client.js';

/**
 * Apache Felix as the node's application runtime (docs/bundles.md): one framework per node,
 * started detached by the agent like ZooKeeper and Kafka (pid file, log file, readiness through
 * clusterguard's management bundle), its bundle cache kept across restarts so that what was
 * rolled out comes back after a crash.
 */
export interface FelixOptions {
  managementPort: number;
  heapMb: number;
}

export interface FelixAdapter extends MiddlewareAdapter {
  /** The management interface of this node's framework (not started by this call). */
  readonly management: FelixManagement;
  /** The framework's log, for messages and tests. */
  readonly logFile: string;
}

const defaultOperationOptions: Partial<Record<MiddlewareOperation, OperationOptions>> = {
  startServer: {
    timeoutMs: 60_000,
    successFilter: 'clusterguard management listening on',
    // The management bundle failing to start leaves a framework nobody can drive.
    failFilter: 'ERROR: Bundle io\\.clusterguard\\.felix\\.agent',
  },
  stopServer: { timeoutMs: 15_000 },
  checkServer: { timeoutMs: 5_000 },
};

/**
 * One start at a time per framework in this process: concurrent activities that each find it
 * down must not launch two JVMs on one bundle cache.
 */
const starting = new Map<string, Promise<unknown>>();

async function oneAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
  const prior = starting.get(key) ?? Promise.resolve();
  const mine = prior.catch(() => undefined).then(work);
  starting.set(key, mine);
  try {
    return await mine;
  } finally {
    if (starting.get(key) === mine) starting.delete(key);
  }
}

/** The framework launcher; every other jar of the folder is a bundle the node starts with. */
const mainJar = /^org\.apache\.felix\.main-(\d+\.\d+\.\d+)\.jar$/;
const managementJar = 'cg-felix-agent.jar';

export function createFelixAdapter(deps: AdapterDeps<FelixOptions>): FelixAdapter {
  const { address, layout, logger } = deps;
  const options: FelixOptions = { managementPort: 7701, heapMb: 128, ...deps.options };
  const opts = (op: MiddlewareOperation) =>
    operationOptions(defaultOperationOptions, deps.operationOptions, op);
  const who = `the Felix framework on ${address}`;
  const bundleDir = path.join(deps.binDir, 'felix', 'bundle');
  const managementDir = path.join(deps.binDir, 'cg-felix-agent');
  const configFolder = path.join(layout.nodeConfigRoot, 'felix', 'conf');
  const configFile = path.join(configFolder, 'config.properties');
  const secretFile = path.join(configFolder, 'management-secret');
  const home = path.join(layout.nodeDataRoot, 'felix');
  const systemFolder = path.join(home, 'system');

  const management = felixManagement({
    host: address,
    port: options.managementPort,
    name: who,
    secret: async () => (await readFile(secretFile, 'utf8')).trim(),
  });

  const spec = (launcher: string): ProcessSpec => ({
    name: `felix on ${address}`,
    command: deps.java ?? 'java',
    args: [
      `-Xmx${options.heapMb}m`,
      '-XX:+ExitOnOutOfMemoryError',
      `-Dfelix.config.properties=file:${configFile}`,
      '-jar',
      launcher,
    ],
    cwd: home,
    pidFile: path.join(home, 'felix.pid'),
    logFile: path.join(home, 'log', 'felix.log'),
    // Unique to this node's root: another node's framework on this machine is never this one.
    marker: configFile,
  });
  const pidSpec = spec('');

  async function launcher(): Promise<{ jar: string; bundles: string[] }> {
    let files: string[];
    try {
      files = await readdir(bundleDir);
    } catch {
      throw new ClusterGuardError(
        'MissingBinary',
        `${who}: no Felix jars at ${bundleDir}; install them there (development: npm run setup)`,
      );
    }
    const jar = files.find((f) => mainJar.test(f));
    const management = path.join(managementDir, managementJar);
    const haveManagement = await stat(management).then(
      () => true,
      () => false,
    );
    if (!jar || !haveManagement) {
      throw new ClusterGuardError(
        'MissingBinary',
        `${who}: ${jar ? management : `org.apache.felix.main-<version>.jar in ${bundleDir}`} is missing; ` +
          'install it there (development: npm run setup builds the management bundle)',
      );
    }
    const bundles = files
      .filter((f) => f.endsWith('.jar') && f !== jar)
      .map((f) => path.join(bundleDir, f));
    return { jar: path.join(bundleDir, jar), bundles: [...bundles, management] };
  }

  /**
   * The bundles every framework starts with, copied under the node's root: their locations stay
   * the same when the tools cache moves, and a changed jar is updated by Felix's auto-deploy.
   * An unchanged jar is not copied, so its time stamp does not trigger an update.
   */
  async function syncSystemBundles(bundles: string[]): Promise<void> {
    await mkdir(systemFolder, { recursive: true });
    for (const source of bundles) {
      const target = path.join(systemFolder, path.basename(source));
      const have = await sha256OfFile(target).catch(() => undefined);
      if (have && have.sha256 === (await sha256OfFile(source)).sha256) continue;
      await copyFile(source, `${target}.part`);
      await rename(`${target}.part`, target);
    }
  }

  /** A random secret per node, readable by the agent's user only, never on a command line. */
  async function ensureSecret(): Promise<void> {
    const have = await readFile(secretFile, 'utf8').catch(() => '');
    if (have.trim().length >= 32) return;
    await mkdir(configFolder, { recursive: true });
    await writeFile(secretFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  }

  function configProperties(): string {
    const lines: Record<string, string> = {
      'org.osgi.framework.storage': path.join(home, 'felix-cache'),
      // What the agent rolled out survives a restart of the framework.
      'org.osgi.framework.storage.clean': 'none',
      'felix.auto.deploy.dir': systemFolder,
      // No `uninstall`: it would remove every bundle not in that folder, the rolled-out ones too.
      'felix.auto.deploy.action': 'install,update,start',
      'felix.log.level': '1',
      // Detached, with no terminal: the Gogo shell must not read standard input.
      'gosh.args': '--nointeractive',
      'cg.management.host': address,
      'cg.management.port': String(options.managementPort),
      'cg.management.secretFile': secretFile,
    };
    // Properties syntax: backslashes would be escapes.
    return `${Object.entries(lines)
      .map(([k, v]) => `${k}=${v.replace(/\\/g, '\\\\')}`)
      .join('\n')}\n`;
  }

  async function status(): Promise<ServerStatus> {
    const pid = await runningPid(pidSpec);
    if (!pid) return { running: false, healthy: false, detail: `${who} is not running` };
    try {
      const listing = await management.list(AbortSignal.timeout(opts('checkServer').timeoutMs));
      const active = listing.bundles.filter((b) => b.state === 'ACTIVE').length;
      return {
        running: true,
        healthy: true,
        pid,
        detail: `Felix framework pid ${pid}: ${active}/${listing.bundles.length} bundles ACTIVE`,
      };
    } catch (err) {
      return { running: true, healthy: false, pid, detail: (err as Error).message };
    }
  }

  async function start(): Promise<ServerStatus> {
    const { jar, bundles } = await launcher();
    await ensureSecret();
    // A running framework read its configuration and system bundles when it started.
    if (!(await runningPid(pidSpec))) {
      await syncSystemBundles(bundles);
      await mkdir(path.join(home, 'log'), { recursive: true });
      await writeFile(configFile, configProperties());
    }
    const o = opts('startServer');
    const started = Date.now();
    const { pid, alreadyRunning } = await startProcess(spec(jar), {
      timeoutMs: o.timeoutMs,
      ...(o.successFilter ? { successFilter: o.successFilter } : {}),
      ...(o.failFilter ? { failFilter: o.failFilter } : {}),
      // The system bundle turns ACTIVE once every bundle of the start level has been started:
      // before that, what was rolled out may still be coming up.
      ready: async () =>
        (await management.list(AbortSignal.timeout(2000))).bundles.find((b) => b.id === 0)
          ?.state === 'ACTIVE',
      ...(deps.signal ? { signal: deps.signal } : {}),
      onWait: (ms) => deps.onProgress?.(`waiting for ${who} (${Math.round(ms / 1000)} s)`),
    });
    if (!alreadyRunning) {
      logger.info('felix started', { address, pid, ms: Date.now() - started });
    }
    return status();
  }

  return withOperations({
    name: 'felix' as const,
    management,
    logFile: pidSpec.logFile,

    startServer: () => oneAtATime(configFile, start),

    async stopServer(stopOptions?: { force?: boolean }): Promise<void> {
      await stopProcess(pidSpec, {
        graceMs: opts('stopServer').timeoutMs,
        ...(stopOptions?.force ? { force: true } : {}),
      });
    },

    checkServer: status,
    processRunning: async () => (await runningPid(pidSpec)) !== undefined,
  });
}
