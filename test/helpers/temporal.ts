import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  type Worker,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import { appConfigSchema } from '../../src/config/app-config.js';
import { createLogger } from '../../src/logger.js';
import type { Tracing } from '../../src/observability/tracing.js';
import {
  createOrchestratorActivities,
  createOrchestratorWorker,
} from '../../worker/orchestrator.js';
import { loadWorkflowBundle } from '../../worker/workflow-bundle.js';

let runtimeInstalled = false;

/** The dev server that test/run.ts started for this run. */
export function testServer(): { address: string; namespace: string } {
  const address = process.env.CG_TEST_TEMPORAL_ADDRESS;
  if (!address) {
    throw new Error(
      'CG_TEST_TEMPORAL_ADDRESS is not set: run workflow tests through `npm test` (test/run.ts)',
    );
  }
  return { address, namespace: process.env.CG_TEST_TEMPORAL_NAMESPACE ?? 'default' };
}

export interface TestOrchestrator {
  client: Client;
  taskQueue: string;
  worker: Worker;
  close(): Promise<void>;
}

const bundles = new Map<string, Promise<WorkflowBundleOption>>();

/**
 * A real orchestrator worker, in this process, on a task queue of its own so that test files
 * never pick up each other's workflows. The workflow bundle is built once per file.
 */
export async function startTestOrchestrator(
  /** `server`: another dev server than the run's (e.g. one with its own dynamic config). */
  options: {
    workflowsPath?: string;
    server?: { address: string; namespace: string };
    /** The worker's and the client's, e.g. an encrypting codec. */
    dataConverter?: DataConverter;
    /** A fixed task queue (the README's `clusterguard`) instead of a private one. */
    taskQueue?: string;
    /** The worker's and the client's spans (src/observability/tracing.ts). */
    tracing?: Tracing;
    /** The cluster record (`clusters.recordFile`); default a fresh file removed on close. */
    clusterRecordFile?: string;
  } = {},
): Promise<TestOrchestrator> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const { address, namespace } = options.server ?? testServer();
  const failureConverterPath = options.dataConverter?.failureConverterPath;
  const workflowInterceptorModules = options.tracing?.workflowInterceptorModules;
  const key = `${options.workflowsPath ?? ''}|${failureConverterPath ?? ''}|${workflowInterceptorModules?.join() ?? ''}`;
  let bundle = bundles.get(key);
  if (!bundle) {
    bundle = options.workflowsPath
      ? bundleWorkflowCode({
          workflowsPath: options.workflowsPath,
          logger: new DefaultLogger('WARN'),
        })
      : loadWorkflowBundle({ failureConverterPath, workflowInterceptorModules });
    bundles.set(key, bundle);
  }
  const nativeConnection = await NativeConnection.connect({ address });
  const taskQueue = options.taskQueue ?? `cg-test-${randomUUID().slice(0, 8)}`;
  // Runbooks publish events; without a Kafka for the tests, publishEvent only logs.
  const kafkaBrokers = process.env.CG_TEST_KAFKA_BROKERS;
  const spoolFile = path.join(os.tmpdir(), `${taskQueue}-events.jsonl`);
  const recordFile =
    options.clusterRecordFile ?? path.join(os.tmpdir(), `${taskQueue}-clusters.json`);
  const events = createOrchestratorActivities(
    appConfigSchema.parse({
      events: kafkaBrokers ? { brokers: kafkaBrokers, spoolFile } : { enabled: false },
      clusters: { recordFile },
    }),
    createLogger('test-orchestrator', 'warn'),
  );
  const worker = await createOrchestratorWorker({
    connection: nativeConnection,
    namespace,
    taskQueue,
    workflowBundle: await bundle,
    activities: events.activities,
    ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
    ...(options.tracing
      ? {
          interceptors: { activity: options.tracing.activityInterceptors },
          sinks: options.tracing.sinks,
        }
      : {}),
  });
  const running = worker.run();
  const connection = await Connection.connect({ address });
  const client = new Client({
    connection,
    namespace,
    ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
    ...(options.tracing ? { interceptors: options.tracing.clientInterceptors } : {}),
  });
  return {
    client,
    taskQueue,
    worker,
    async close() {
      worker.shutdown();
      await running;
      await events.close();
      await rm(spoolFile, { force: true });
      if (!options.clusterRecordFile) await rm(recordFile, { force: true });
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** The failure a run ended with (its cause's message and type); throws when it did not fail. */
export async function failureOf(
  run: Promise<unknown>,
): Promise<{ message: string; type?: string }> {
  try {
    await run;
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const cause = err.cause as { message: string; type?: string } | undefined;
      return { message: cause?.message ?? err.message, type: cause?.type };
    }
    throw err;
  }
  throw new Error('the runbook did not fail');
}
