import type { WorkerOptions } from '@temporalio/worker';
import type { AppConfig } from '../config/app-config.js';
import type { Logger } from '../logger.js';
import { freePort } from '../process.js';
import {
  activityMetricsInterceptor,
  createMetrics,
  serveMetrics,
  type Metrics,
  type MetricsServer,
} from './metrics.js';
import { installRuntime } from './runtime.js';

export interface ProcessObservability {
  metrics: Metrics;
  /** For Worker.create: times every activity attempt. */
  interceptors: NonNullable<WorkerOptions['interceptors']>;
  server?: MetricsServer;
  close(): Promise<void>;
}

/**
 * A worker process's logs and metrics, set up before its first connection: the SDK's runtime
 * (our log lines, its Prometheus exporter on a loopback port of its own) and, with
 * `metrics.port`, one endpoint serving both on `metrics.host` (default `defaultHost`).
 */
export async function setupObservability(
  config: AppConfig,
  defaultHost: string,
  labels: Record<string, string>,
  logger: Logger,
): Promise<ProcessObservability> {
  const port = config.metrics.port;
  const sdkMetricsAddress = port ? `127.0.0.1:${await freePort()}` : undefined;
  installRuntime(sdkMetricsAddress ? { sdkMetricsAddress } : {});
  const metrics = createMetrics(labels);
  const server = port
    ? await serveMetrics({
        host: config.metrics.host ?? defaultHost,
        port,
        metrics,
        ...(sdkMetricsAddress ? { sdkMetricsAddress } : {}),
      })
    : undefined;
  if (server) logger.info('metrics served', { url: server.url });
  return {
    metrics,
    interceptors: { activity: [activityMetricsInterceptor(metrics)] },
    ...(server ? { server } : {}),
    close: async () => server?.close(),
  };
}
