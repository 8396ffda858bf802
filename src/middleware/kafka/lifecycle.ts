import net from 'node:net';
import {
  runningPid,
  startProcess,
  stopProcess,
  type MiddlewareOperation,
  type ServerStatus,
} from '../kit/index.js';
import type { KafkaNodeManifest } from './config.js';
import type { KafkaServer } from './server.js';
import type { KafkaClients } from './clients.js';

/** The server started, checked and stopped; storage formatted for its cluster. */
export function createKafkaLifecycle(k: KafkaServer & KafkaClients) {
  const {
    deps,
    address,
    logger,
    confFolder,
    dataFolder,
    runtimeServer,
    who,
    spec,
    fail,
    opts,
    progress,
    readManifest,
    readMeta,
    writeRuntimeConfig,
    checkBinaries,
    tool,
    reason,
    ownView,
  } = k;

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

  return {
    status,
    isListening,
    format,
    start,
    stop,
  };
}

export type KafkaLifecycle = ReturnType<typeof createKafkaLifecycle>;
