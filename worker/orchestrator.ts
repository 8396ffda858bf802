import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DefaultLogger,
  Runtime,
  Worker,
  bundleWorkflowCode,
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
import { loadAppConfig, type AppConfig } from '../src/config/app-config.js';
import { createEventPublisher } from '../src/events/publisher.js';
import { createLogger, type Logger } from '../src/logger.js';
import { isMain, onShutdownSignal, repoRoot } from '../src/process.js';
import { connectWorker } from '../src/temporal/connection.js';

/** Beside this file: `workflows/index.ts` from source, `dist/workflows/index.js` when built. */
export const workflowsPath = fileURLToPath(
  new URL(`../workflows/index${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);
/** Where a build step may leave a pre-built bundle (`workflowBundle: { codePath }`). */
export const prebuiltBundlePath = path.join(repoRoot, 'dist', 'workflow-bundle.js');

/** The workflow code: the pre-built bundle when present, else bundled now (a few seconds). */
export async function loadWorkflowBundle(): Promise<WorkflowBundleOption> {
  if (existsSync(prebuiltBundlePath) && !process.env.CG_REBUNDLE)
    return { codePath: prebuiltBundlePath };
  return bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
}

export interface OrchestratorOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  workflowBundle: WorkflowBundleOption;
  /** Cluster-level activities that run beside the workflows (see createOrchestratorActivities). */
  activities?: WorkerOptions['activities'];
}

/** The worker that runs every runbook (workflows) on the `clusterguard` task queue. */
export async function createOrchestratorWorker(options: OrchestratorOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle,
    ...(options.activities ? { activities: options.activities } : {}),
  });
}

export interface OrchestratorActivities {
  activities: EventActivities;
  /** Publishes what it can within 5 s; the rest stays in the spool for the next start. */
  close(): Promise<void>;
}

/**
 * The orchestrator's own activities. With events disabled, `publishEvent` is still there and
 * only logs, so that a runbook never fails for the lack of it.
 */
export function createOrchestratorActivities(
  config: AppConfig,
  logger: Logger,
): OrchestratorActivities {
  if (!config.events.enabled) {
    return {
      activities: {
        publishEvent(input: PublishEventInput) {
          logger.debug('events are disabled; event not published', {
            id: input.id,
            type: input.type,
          });
          return Promise.resolve();
        },
      },
      close: () => Promise.resolve(),
    };
  }
  const known = createKnownBrokers(config.events.kafkaPort, config.events.brokers);
  const publisher = createEventPublisher({
    brokers: () => known.brokers(),
    spoolFile: path.resolve(config.events.spoolFile),
    logger,
  });
  return {
    activities: createEventActivities({
      publisher,
      kafkaPort: config.events.kafkaPort,
      brokers: config.events.brokers,
      known,
    }),
    async close() {
      const left = await publisher.flush(5000);
      if (left > 0) logger.warn('events left in the spool for the next start', { pending: left });
      await publisher.close();
    },
  };
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const logger = createLogger('orchestrator');
  let config: AppConfig;
  try {
    config = await loadAppConfig();
  } catch (err) {
    logger.error((err as Error).message);
    process.exit(2);
  }
  const connection = await connectWorker(config.temporal);
  const orchestratorActivities = createOrchestratorActivities(config, logger);
  const worker = await createOrchestratorWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowBundle: await loadWorkflowBundle(),
    activities: orchestratorActivities.activities,
  });
  const running = worker.run();
  let stopping: Promise<void> | undefined;
  // The spool's last events are worth a few seconds before the process exits.
  const stop = () =>
    (stopping ??= (async () => {
      await running.catch(() => undefined);
      await orchestratorActivities.close();
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
