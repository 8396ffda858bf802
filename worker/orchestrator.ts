import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  Worker,
  type NativeConnection,
  type WorkerOptions,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import {
  createEventActivities,
  createKnownBrokers,
  type EventActivities,
  type PublishEventInput,
} from '../activities/event-activities.js';
import { activityInterceptors } from '../activities/interceptor.js';
import {
  createAdmissionActivities,
  type AdmissionActivities,
} from '../activities/admission-activities.js';
import {
  createClusterRecordActivities,
  type ClusterRecordActivities,
} from '../activities/cluster-record-activities.js';
import { ClusterRegistry } from '../src/config/cluster-registry.js';
import {
  createGuardianActivities,
  type GuardianActivities,
} from '../activities/guardian-activities.js';
import { loadAppConfig, type AppConfig } from '../src/config/app-config.js';
import { createEventPublisher } from '../src/events/publisher.js';
import { createLogger, type Logger } from '../src/logger.js';
import { isMain, onShutdownSignal } from '../src/process.js';
import { startAgentServer, type RunningAgentServer } from '../src/agent/server.js';
import { loadAgentTls } from '../src/agent/tls.js';
import { createCodecApp } from '../src/temporal/codec-server.js';
import { loadWorkflowBundle } from './workflow-bundle.js';
import { connectClient, connectWorker, dataConverterFor } from '../src/temporal/connection.js';
import { setupObservability } from '../src/observability/process.js';
import { registerOrchestratorMetrics } from '../src/observability/orchestrator-metrics.js';
import type { Client } from '@temporalio/client';

export interface OrchestratorOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  workflowBundle: WorkflowBundleOption;
  /** Payload encryption; every process of a deployment must use the same (see codec.ts). */
  dataConverter?: WorkerOptions['dataConverter'];
  /** Cluster-level activities that run beside the workflows (see createOrchestratorActivities). */
  activities?: WorkerOptions['activities'];
  interceptors?: WorkerOptions['interceptors'];
  /** The workflow spans' sink, with tracing on (src/observability/tracing.ts). */
  sinks?: WorkerOptions['sinks'];
}

/** The worker that runs every runbook (workflows) on the `clusterguard` task queue. */
export async function createOrchestratorWorker(options: OrchestratorOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle,
    ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
    ...(options.activities ? { activities: options.activities } : {}),
    ...(options.sinks ? { sinks: options.sinks } : {}),
    // Failure conversion and heartbeats of our activities, plus what the caller adds (metrics).
    interceptors: {
      ...options.interceptors,
      activity: [
        ...(options.activities ? activityInterceptors() : []),
        ...(options.interceptors?.activity ?? []),
      ],
    },
  });
}

export interface OrchestratorActivities {
  /** Events, admission, the cluster record, the guardian's controller poll (cluster-level calls). */
  activities: EventActivities & GuardianActivities & AdmissionActivities & ClusterRecordActivities;
  /** Publishes what it can within 5 s; the rest stays in the spool for the next start. */
  close(): Promise<void>;
  /** Events not yet acknowledged by Kafka (a metric). */
  spoolDepth(): number;
}

/**
 * The orchestrator's own activities. With events disabled, `publishEvent` is still there and
 * only logs, so that a runbook never fails for the lack of it.
 */
export function createOrchestratorActivities(
  config: AppConfig,
  logger: Logger,
): OrchestratorActivities {
  const records = createClusterRecordActivities({
    registry: new ClusterRegistry(config.clusters.recordFile),
    logger,
  });
  if (!config.events.enabled) {
    return {
      activities: {
        ...createGuardianActivities({ logger }),
        ...createAdmissionActivities(config.admission),
        ...records,
        publishEvent(input: PublishEventInput) {
          logger.debug('events are disabled; event not published', {
            id: input.id,
            type: input.type,
          });
          return Promise.resolve();
        },
      },
      close: () => Promise.resolve(),
      spoolDepth: () => 0,
    };
  }
  const known = createKnownBrokers(config.events.kafkaPort, config.events.brokers);
  const publisher = createEventPublisher({
    brokers: () => known.brokers(),
    spoolFile: path.resolve(config.events.spoolFile),
    logger,
  });
  return {
    activities: {
      ...createGuardianActivities({ logger }),
      ...createAdmissionActivities(config.admission),
      ...records,
      ...createEventActivities({
        publisher,
        kafkaPort: config.events.kafkaPort,
        brokers: config.events.brokers,
        known,
      }),
    },
    spoolDepth: () => publisher.pending(),
    async close() {
      const left = await publisher.flush(5000);
      if (left > 0) logger.warn('events left in the spool for the next start', { pending: left });
      await publisher.close();
    },
  };
}

/** The Web UI's codec endpoint, when `codec.endpoint` is configured. */
async function startCodecEndpoint(
  config: AppConfig,
  dataConverter: Awaited<ReturnType<typeof dataConverterFor>>,
  logger: Logger,
): Promise<RunningAgentServer | undefined> {
  const endpoint = config.codec?.endpoint;
  const codec = dataConverter?.payloadCodecs?.[0];
  if (!endpoint) return undefined;
  if (!codec)
    throw new Error('codec.endpoint is set but no key ring is (codec.keyFile or codec.keys)');
  const token = (await readFile(endpoint.tokenFile, 'utf8')).trim();
  const app = createCodecApp({ codec, token, allowOrigins: endpoint.allowOrigins, logger });
  const tls = endpoint.tls
    ? await loadAgentTls({ ...endpoint.tls, requireClientCert: false })
    : undefined;
  const server = await startAgentServer(app, endpoint.host, endpoint.port, tls);
  logger.info('codec endpoint ready', { url: server.url, origins: endpoint.allowOrigins });
  return server;
}

async function main(): Promise<void> {
  let logger: Logger;
  let config: AppConfig;
  try {
    logger = createLogger('orchestrator');
    config = await loadAppConfig();
  } catch (err) {
    console.error(`orchestrator: ${(err as Error).message}`);
    process.exit(2);
  }
  const observability = await setupObservability(config, '127.0.0.1', {}, logger, 'orchestrator');
  const connection = await connectWorker(config.temporal);
  const dataConverter = await dataConverterFor(config.codec);
  const orchestratorActivities = createOrchestratorActivities(config, logger);
  const worker = await createOrchestratorWorker({
    connection,
    ...(dataConverter ? { dataConverter } : {}),
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowBundle: await loadWorkflowBundle({
      failureConverterPath: dataConverter?.failureConverterPath,
      workflowInterceptorModules: observability.workflowInterceptorModules,
    }),
    activities: orchestratorActivities.activities,
    interceptors: observability.interceptors,
    sinks: observability.sinks,
  });
  // The runbooks' metrics read Temporal's visibility: a client of its own, made on first scrape.
  let metricsClient: Promise<Client> | undefined;
  registerOrchestratorMetrics(observability.metrics, {
    client: () => (metricsClient ??= connectClient(config.temporal, config.codec)),
    spoolDepth: () => orchestratorActivities.spoolDepth(),
    logger,
  });
  const codecEndpoint = await startCodecEndpoint(config, dataConverter, logger);
  const running = worker.run();
  let stopping: Promise<void> | undefined;
  // The spool's last events are worth a few seconds before the process exits.
  const stop = () =>
    (stopping ??= (async () => {
      await running.catch(() => undefined);
      await orchestratorActivities.close();
      await codecEndpoint?.close();
      await observability.close();
      if (metricsClient) await (await metricsClient.catch(() => undefined))?.connection.close();
      await connection.close();
    })());
  onShutdownSignal(() => {
    logger.info('shutting down');
    worker.shutdown();
    return stop();
  });
  logger.info('orchestrator ready', {
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
  });
  try {
    await running;
  } finally {
    await stop();
  }
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
