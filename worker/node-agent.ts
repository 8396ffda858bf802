import path from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createDataActivities } from '../activities/data-activities.js';
import { createWebappActivities } from '../activities/guardian-activities.js';
import { createMembershipActivities } from '../activities/membership-activities.js';
import { createMiddlewareActivities } from '../activities/middleware-activities.js';
import { createNodeActivities } from '../activities/node-activities.js';
import { loadAppConfig, resolveAgentToken, type AppConfig } from '../src/config/app-config.js';
import { ClusterStore } from '../src/config/cluster-store.js';
import { NodeLayout } from '../src/config/layout.js';
import { nodeTaskQueue } from '../src/contracts/addresses.js';
import type { Client } from '@temporalio/client';
import { dataRoutes } from '../src/agent/data-routes.js';
import { setupAgentBundles } from '../src/bundles/agent.js';
import { createAgentApp, startAgentServer, type RunningAgentServer } from '../src/agent/server.js';
import { loadAgentTls } from '../src/agent/tls.js';
import { createLogger, type Logger } from '../src/logger.js';
import { probeMiddlewareVersions } from '../src/middleware/versions.js';
import { clusterguardVersion, isMain, onShutdownSignal } from '../src/process.js';
import { connectClient, connectWorker, dataConverterFor } from '../src/temporal/connection.js';
import { startDataRunbook } from '../src/temporal/data-runbooks.js';
import { askGuardianIfNotReady } from '../src/temporal/guardian.js';

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
  const agentTls = await loadAgentTls(config.agent.tls);
  const binDir = path.resolve(config.middleware.binDir);
  const bundles = setupAgentBundles({
    config,
    layout,
    clusterStore,
    token,
    ...(agentTls ? { agentTls } : {}),
    logger,
  });

  const connection = await connectWorker(config.temporal);
  const dataConverter = await dataConverterFor(config.codec);
  const taskQueue = nodeTaskQueue(address);
  const worker = await Worker.create({
    connection,
    ...(dataConverter ? { dataConverter } : {}),
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
        ...(agentTls ? { agentTls } : {}),
        logger,
      }),
      ...createDataActivities({
        address,
        layout,
        logger,
        sources: {
          // The application runtime holds no data of its own: bundles are rolled out again.
          enabled: config.middleware.enabled.filter((m) => m !== 'felix'),
          controllerDataFolders: config.middleware.controller.dataFolders,
        },
        probeVersions: (signal) => probeMiddlewareVersions(binDir, signal),
      }),
      ...bundles.activities,
      ...createWebappActivities({ address, webapps: config.webapps, logger }),
    },
    // Node work is mostly waiting on processes and disks; a few at a time is plenty and keeps
    // one slow middleware from starving the others.
    maxConcurrentActivityTaskExecutions: 8,
  });

  // A client only for the runbooks the agent's HTTP API starts; connected on first use.
  let client: Promise<Client> | undefined;
  const clientFor = () => {
    client ??= connectClient(config.temporal, config.codec).catch((err: unknown) => {
      client = undefined;
      throw err;
    });
    return client;
  };
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
    routes: [
      bundles.routes,
      dataRoutes({
        clusterId: config.clusterId,
        start: async (runbook, input) => {
          const handle = await startDataRunbook(await clientFor(), runbook, input as never, {
            taskQueue: config.temporal.taskQueue,
          });
          const { firstExecutionRunId } = handle as { firstExecutionRunId?: string };
          return { workflowId: handle.workflowId, runId: firstExecutionRunId ?? '' };
        },
        ...(config.temporal.webUiUrl
          ? { webUi: { url: config.temporal.webUiUrl, namespace: config.temporal.namespace } }
          : {}),
      }),
    ],
  });
  let http: RunningAgentServer;
  try {
    http = await startAgentServer(app, config.agent.host ?? address, config.agent.port, agentTls);
  } catch (err) {
    await connection.close();
    throw err;
  }

  const done = worker.run().finally(async () => {
    await http.close();
    await bundles.close();
    await connection.close();
    if (client) await (await client.catch(() => undefined))?.connection.close();
  });
  logger.info('node agent ready', { address, taskQueue, http: http.url, root: layout.root });
  // Seed 001 §3: a restarted member that is not ready asks the guardian; never fails the agent.
  void askGuardianIfNotReady({
    clusterId: config.clusterId,
    address,
    loadClusterFile: () => clusterStore.load(),
    connect: () => connectClient(config.temporal, config.codec),
    logger,
  });
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
