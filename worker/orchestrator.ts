import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DefaultLogger,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type NativeConnection,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import { loadAppConfig, type AppConfig } from '../src/config/app-config.js';
import { createLogger } from '../src/logger.js';
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
}

/** The worker that runs every runbook (workflows) on the `clusterguard` task queue. */
export async function createOrchestratorWorker(options: OrchestratorOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle,
  });
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
  const worker = await createOrchestratorWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowBundle: await loadWorkflowBundle(),
  });
  onShutdownSignal(() => {
    logger.info('shutting down');
    worker.shutdown();
    return Promise.resolve();
  });
  logger.info('orchestrator ready', {
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
  });
  await worker.run();
  await connection.close();
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
