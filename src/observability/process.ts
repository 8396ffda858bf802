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
import { setupTracing } from './tracing.js';

export interface ProcessObservability {
  metrics: Metrics;
  /** For Worker.create: times every activity attempt (and traces it, with tracing on). */
  interceptors: NonNullable<WorkerOptions['interceptors']>;
  /** For an orchestrator's Worker.create: where the workflow spans go (none without tracing). */
  sinks: NonNullable<WorkerOptions['sinks']>;
  /** For an orchestrator's workflow bundle (loadWorkflowBundle). */
  workflowInterceptorModules: string[];
  server?: MetricsServer;
  close(): Promise<void>;
}

/**
 * A worker process's logs, metrics and traces, set up before its first connection: the SDK's
 * runtime (our log lines, its Prometheus exporter on a loopback port of its own), with
 * `metrics.port` one endpoint serving both on `metrics.host` (default `defaultHost`), and with
 * `tracing` the spans of `service` (src/observability/tracing.ts).
 */
export async function setupObservability(
  config: AppConfig,
  defaultHost: string,
  labels: Record<string, string>,
  logger: Logger,
  service: string,
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
  const tracing = setupTracing(config.tracing, service);
  if (tracing) {
    logger.info('tracing on', {
      to: config.tracing.otlpEndpoint ?? 'stderr',
      service: config.tracing.serviceName ?? service,
    });
  }
  return {
    metrics,
    interceptors: {
      activity: [activityMetricsInterceptor(metrics), ...(tracing?.activityInterceptors ?? [])],
    },
    sinks: tracing?.sinks ?? {},
    workflowInterceptorModules: tracing?.workflowInterceptorModules ?? [],
    ...(server ? { server } : {}),
    close: async () => {
      await server?.close();
      await tracing?.shutdown();
    },
  };
}
