import path from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createDataActivities } from '../activities/data-activities.js';
import { createMembershipActivities } from '../activities/membership-activities.js';
import { createMiddlewareActivities } from '../activities/middleware-activities.js';
import { createNodeActivities } from '../activities/node-activities.js';
import { loadAppConfig, resolveAgentToken, type AppConfig } from '../src/config/app-config.js';
import { ClusterStore } from '../src/config/cluster-store.js';
import { NodeLayout } from '../src/config/layout.js';
import { nodeTaskQueue } from '../src/contracts/addresses.js';
import { createAgentApp, startAgentServer, type RunningAgentServer } from '../src/agent/server.js';
import { createLogger, type Logger } from '../src/logger.js';
import { probeMiddlewareVersions } from '../src/middleware/versions.js';
import { clusterguardVersion, isMain, onShutdownSignal } from '../src/process.js';
import { connectWorker } from '../src/temporal/connection.js';

export interface RunningNodeAgent {
  address: string;
  taskQueue: string;
  http: RunningAgentServer;
  /** Resolves when the worker has stopped. */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * A node agent: the activity worker on `cg-node-<address>` and the HTTP API on the node's
 * address. A corrupt cluster.json does not stop it: it reports the problem in /healthz and in
 * every ping, and leaves the file untouched for the operator.
 */
export async function startNodeAgent(
  config: AppConfig,
  logger: Logger = createLogger('node-agent'),
): Promise<RunningNodeAgent> {
  const address = config.node.address;
  const layout = new NodeLayout(config.node.root);
  await layout.ensureAll();
  const clusterStore = new ClusterStore({ file: layout.clusterFile });
  let clusterFileError: string | undefined;
  try {
    await clusterStore.load();
  } catch (err) {
    clusterFileError = (err as Error).message;
    logger.error('cluster.json cannot be used; the agent runs without it until it is repaired', {
      error: clusterFileError,
    });
  }
  const token = await resolveAgentToken(config);
  const binDir = path.resolve(config.middleware.binDir);

  const connection = await connectWorker(config.temporal);
  const taskQueue = nodeTaskQueue(address);
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue,
    activities: {
      ...createMiddlewareActivities({ address, layout, config, logger }),
      ...createNodeActivities({
        address,
        layout,
        clusterStore,
        agentVersion: clusterguardVersion,
        logger,
        probeMiddleware: (signal) => probeMiddlewareVersions(binDir, signal),
      }),
      ...createMembershipActivities({
        address,
        layout,
        clusterStore,
        token,
        agentPort: config.agent.port,
        logger,
      }),
      ...createDataActivities({
        address,
        layout,
        logger,
        sources: {
          enabled: config.middleware.enabled,
          controllerDataFolders: config.middleware.controller.dataFolders,
        },
        probeVersions: (signal) => probeMiddlewareVersions(binDir, signal),
      }),
    },
    // Node work is mostly waiting on processes and disks; a few at a time is plenty and keeps
    // one slow middleware from starving the others.
    maxConcurrentActivityTaskExecutions: 8,
  });

  const app = createAgentApp({
    address,
    layout,
    token,
    logger,
    agentVersion: clusterguardVersion,
    maxBodyBytes: config.agent.maxBodyBytes,
    health: () => ({
      taskQueue,
      worker: worker.getState(),
      clusterFile: clusterFileError ? { error: clusterFileError } : { ok: true },
    }),
  });
  let http: RunningAgentServer;
  try {
    http = await startAgentServer(app, config.agent.host ?? address, config.agent.port);
  } catch (err) {
    await connection.close();
    throw err;
  }

  const done = worker.run().finally(async () => {
    await http.close();
    await connection.close();
  });
  logger.info('node agent ready', { address, taskQueue, http: http.url, root: layout.root });
  return {
    address,
    taskQueue,
    http,
    done,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const logger = createLogger('node-agent');
  let agent: RunningNodeAgent;
  try {
    agent = await startNodeAgent(await loadAppConfig(), logger);
  } catch (err) {
    logger.error((err as Error).message);
    process.exit(2);
  }
  onShutdownSignal(async () => {
    logger.info('shutting down', { address: agent.address });
    await agent.stop();
  });
  await agent.done;
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
