import http from 'node:http';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../logger.js';

/**
 * clusterguard's own Prometheus metrics (`clusterguard_…`) of one process, beside Node's
 * defaults. The SDK's runtime metrics come from its own exporter and are served on the same
 * endpoint (serveMetrics), so each process has one address to scrape.
 */
export function createMetrics(defaultLabels: Record<string, string> = {}) {
  const registry = new Registry();
  registry.setDefaultLabels(defaultLabels);
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    /** Each activity attempt — a runbook step on a node, or one of the orchestrator's own. */
    stepDuration: new Histogram({
      name: 'clusterguard_step_duration_seconds',
      help: 'Duration of activity attempts (runbook steps), by activity type and outcome',
      labelNames: ['activity', 'outcome'],
      buckets: [0.05, 0.25, 1, 5, 15, 60, 300, 1800],
      registers: [registry],
    }),
    steps: new Counter({
      name: 'clusterguard_steps_total',
      help: 'Activity attempts (runbook steps) finished, by activity type and outcome',
      labelNames: ['activity', 'outcome'],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** A gauge whose value is computed at each scrape (errors leave it empty and are logged). */
export function scrapedGauge(
  metrics: Metrics,
  name: string,
  help: string,
  labelNames: string[],
  collect: (set: (labels: Record<string, string>, value: number) => void) => Promise<void>,
  logger: Logger,
): Gauge {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [metrics.registry],
    async collect() {
      this.reset();
      try {
        await collect((labels, value) => this.set(labels, value));
      } catch (err) {
        logger.debug('a metric could not be collected', {
          metric: name,
          error: (err as Error).message,
        });
      }
    },
  });
}

/** Times every activity attempt into clusterguard_step_duration_seconds. */
export function activityMetricsInterceptor(metrics: Metrics): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const activity = ctx.info.activityType;
        const stop = metrics.stepDuration.startTimer({ activity });
        let outcome = 'failed';
        try {
          const result = await next(input);
          outcome = 'completed';
          return result;
        } finally {
          stop({ outcome });
          metrics.steps.inc({ activity, outcome });
        }
      },
    },
  });
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * `GET /metrics` on `host:port`: this process's metrics, then the SDK's (fetched from its
 * exporter at `sdkMetricsAddress`, which listens on 127.0.0.1 only).
 */
export async function serveMetrics(options: {
  host: string;
  port: number;
  metrics: Metrics;
  sdkMetricsAddress?: string;
}): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || !req.url?.startsWith('/metrics')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
      return;
    }
    void (async () => {
      const ours = await options.metrics.registry.metrics();
      const sdk = options.sdkMetricsAddress
        ? await fetch(`http://${options.sdkMetricsAddress}/metrics`, {
            signal: AbortSignal.timeout(3000),
          }).then(
            (r) => r.text(),
            () => '',
          )
        : '';
      res.writeHead(200, { 'content-type': options.metrics.registry.contentType });
      res.end(`${ours}\n${sdk}`);
    })().catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    url: `http://${options.host}:${options.port}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
