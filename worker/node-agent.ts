import path from 'node:path';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { createDataActivities } from '../activities/data-activities.js';
import {
  createNodeHealthActivities,
  createWebappActivities,
} from '../activities/guardian-activities.js';
import { nodeBundles } from '../src/bundles/view.js';
import { createMembershipActivities } from '../activities/membership-activities.js';
import { createMiddlewareActivities } from '../activities/middleware-activities.js';
import { activityInterceptors } from '../activities/interceptor.js';
import { createNodeActivities } from '../activities/node-activities.js';
import { loadAppConfig, resolveAgentToken, type AppConfig } from '../src/config/app-config.js';
import { ClusterStore } from '../src/config/cluster-store.js';
import { NodeLayout } from '../src/config/layout.js';
import { nodeTaskQueue } from '../src/contracts/addresses.js';
import type { Client } from '@temporalio/client';
import { dataRoutes } from '../src/agent/data-routes.js';
import { createBundleActivities } from '../activities/bundle-activities.js';
import { createBundleViewActivities } from '../activities/bundle-view-activities.js';
import { setupAgentBundles } from '../src/bundles/agent.js';
import { createAgentApp, startAgentServer, type RunningAgentServer } from '../src/agent/server.js';
import { loadAgentTls } from '../src/agent/tls.js';
import { createLogger, setProcessLogFields, type Logger } from '../src/logger.js';
import { setupObservability } from '../src/observability/process.js';
import { registerAgentMetrics } from '../src/observability/agent-metrics.js';
import { probeMiddlewareVersions } from '../src/middleware/versions.js';
import { clusterguardVersion, isMain, onShutdownSignal } from '../src/process.js';
import { connectClient, connectWorker, dataConverterFor } from '../src/temporal/connection.js';
import { askGuardianIfNotReady } from './guardian-hook.js';
import { startRunbook } from '../src/client/index.js';
import { Supervision } from '../src/agent/supervision.js';
import { startAgentSupervisor } from './agent-supervisor.js';

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
  interceptors?: WorkerOptions['interceptors'],
): Promise<RunningNodeAgent> {
  const address = config.node.address;
  const layout = new NodeLayout(config.node.root);
  await layout.ensureAll();
  const clusterStore = new ClusterStore({
    file: layout.clusterFile,
    dateFormat: config.node.clusterFileDateFormat,
  });
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

  const supervision = Supervision.forConfFolder(layout.confFolder, logger);
  const connection = await connectWorker(config.temporal);
  const supervisor = startAgentSupervisor({ config, layout, clusterStore, supervision, logger });
  const dataConverter = await dataConverterFor(config.codec);
  const taskQueue = nodeTaskQueue(address);
  const worker = await createWorker({
    connection,
    ...(dataConverter ? { dataConverter } : {}),
    namespace: config.temporal.namespace,
    taskQueue,
    // Failure conversion and heartbeats of long activities, in one place (activities/interceptor.ts),
    // then what the process adds (metrics).
    interceptors: {
      ...interceptors,
      activity: [...activityInterceptors(address), ...(interceptors?.activity ?? [])],
    },
    activities: {
      ...createMiddlewareActivities({ address, layout, config, logger, supervision }),
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
          // The application runtime holds no data of its own: its bundle set is `bundles`.
          enabled: config.middleware.enabled.filter((m) => m !== 'felix'),
          controllerDataFolders: config.middleware.controller.dataFolders,
          // The bundle set lives in ZooKeeper; a node keeps one when it runs the framework or
          // bundles were rolled out to it (docs/design.md, "The application's bundles in a backup").
          bundles: async () =>
            config.middleware.enabled.includes('zookeeper') &&
            (config.middleware.enabled.includes('felix') ||
              // An unreadable installed.json is reported by the bundle steps, not by a backup.
              Object.keys(
                (await bundles.activityDeps.state.read().catch(() => ({ bundles: {} }))).bundles,
              ).length > 0),
        },
        probeVersions: (signal) => probeMiddlewareVersions(binDir, signal),
        // Backup copies are fetched from the member that wrote them, like the configuration.
        peer: { token, agentPort: config.agent.port, ...(agentTls ? { agentTls } : {}) },
      }),
      ...createBundleActivities(bundles.activityDeps),
      ...createBundleViewActivities(bundles.viewActivityDeps),
      ...createWebappActivities({ address, webapps: config.webapps, logger }),
      ...createNodeHealthActivities({
        address,
        ...(supervisor ? { supervisor: () => supervisor.health() } : {}),
        ...(config.middleware.enabled.includes('felix')
          ? { listBundles: () => nodeBundles(bundles.viewActivityDeps) }
          : {}),
      }),
    },
    // Node work is mostly waiting on processes and disks; a few at a time is plenty and keeps
    // one slow middleware from starving the others.
    maxConcurrentActivityTaskExecutions: 8,
  });

  async function createWorker(options: WorkerOptions): Promise<Worker> {
    try {
      return await Worker.create(options);
    } catch (err) {
      await supervisor?.stop();
      throw err;
    }
  }

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
      ...(supervisor ? { supervisor: supervisor.health() } : {}),
    }),
    routes: [
      bundles.routes,
      dataRoutes({
        clusterId: config.clusterId,
        start: async (runbook, input) => {
          const handle = await startRunbook(await clientFor(), runbook, input as never, {
            taskQueue: config.temporal.taskQueue,
          });
          return { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
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
    await supervisor?.stop();
    await connection.close();
    throw err;
  }

  const done = worker.run().finally(async () => {
    await supervisor?.stop();
    await http.close();
    await bundles.close();
    await connection.close();
    if (client) await (await client.catch(() => undefined))?.connection.close();
  });
  logger.info('node agent ready', { address, taskQueue, http: http.url, root: layout.root });
  // The old guard service (docs/design.md): a restarted member that is not ready asks the guardian; never fails the agent.
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
  let logger: Logger;
  let config: AppConfig;
  try {
    logger = createLogger('node-agent');
    config = await loadAppConfig();
  } catch (err) {
    console.error(`node-agent: ${(err as Error).message}`);
    process.exit(2);
  }
  // Every line and every series of an agent names its node.
  setProcessLogFields({ node: config.node.address });
  const observability = await setupObservability(
    config,
    config.node.address,
    { node: config.node.address },
    logger,
    'node-agent',
  );
  registerAgentMetrics(observability.metrics, config, logger);
  let agent: RunningNodeAgent;
  try {
    agent = await startNodeAgent(config, logger, observability.interceptors);
  } catch (err) {
    logger.error((err as Error).message);
    process.exit(2);
  }
  onShutdownSignal(async () => {
    logger.info('shutting down', { address: agent.address });
    await agent.stop();
    await observability.close();
  });
  await agent.done;
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
