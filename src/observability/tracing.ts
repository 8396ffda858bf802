/**
 * OpenTelemetry traces of the runbooks (docs/operations.md "Traces"): the client's start of a
 * runbook, the workflow's run, each activity's start in the workflow and its run on the
 * orchestrator or the node agent, one trace from end to end. The SDK's interceptors
 * (@temporalio/interceptors-opentelemetry) make the spans and carry the context in Temporal's
 * headers; this module registers the process's tracer provider and says where spans go:
 * OTLP over HTTP (`tracing.otlpEndpoint`), JSON lines on stderr (`tracing.console`), or nowhere
 * (the default: no provider, no interceptors).
 */
import { createRequire } from 'node:module';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  makeWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { ActivityInterceptorsFactory, WorkerOptions } from '@temporalio/worker';
import type { AppConfig } from '../config/app-config.js';
import { writeLogLine } from '../logger.js';

const require = createRequire(import.meta.url);

/** The span a line of `tracing.console` shows. */
export function spanLine(span: ReadableSpan): Record<string, unknown> {
  const ctx = span.spanContext();
  const [s, ns] = span.duration;
  return {
    span: span.name,
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
    durationMs: Math.round((s * 1e3 + ns / 1e6) * 10) / 10,
    ...(span.status.code === SpanStatusCode.ERROR ? { error: span.status.message ?? 'error' } : {}),
    attributes: span.attributes,
  };
}

/** `tracing.console`: every finished span as one of our JSON log lines (logger `trace`). */
class JsonLinesSpanExporter implements SpanExporter {
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    for (const span of spans) writeLogLine('info', 'trace', 'span', spanLine(span));
    done({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface Tracing {
  /** For Worker.create: the activity spans (and the workflow spans' sink, on an orchestrator). */
  activityInterceptors: ActivityInterceptorsFactory[];
  sinks: NonNullable<WorkerOptions['sinks']>;
  /** Into the workflow bundle (loadWorkflowBundle): the workflow and activity-start spans. */
  workflowInterceptorModules: string[];
  /** For a Client: the span of starting, signalling, querying a runbook. */
  clientInterceptors: { workflow: OpenTelemetryWorkflowClientInterceptor[] };
  /** Exports what is pending. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

let active: Tracing | undefined;

/** The process's tracing, once `setupTracing` has turned it on. */
export function activeTracing(): Tracing | undefined {
  return active;
}

/**
 * Turns tracing on for this process when `tracing` asks for it (or a `processor` is given, as a
 * test does): a tracer provider named `service`, registered globally with the W3C propagator
 * and an async-context manager, so the interceptors find it. Once per process.
 */
export function setupTracing(
  tracing: AppConfig['tracing'],
  service: string,
  processor?: SpanProcessor,
): Tracing | undefined {
  if (active) return active;
  const spanProcessor =
    processor ??
    (tracing.otlpEndpoint
      ? new BatchSpanProcessor(new OTLPTraceExporter({ url: tracing.otlpEndpoint }))
      : tracing.console
        ? new SimpleSpanProcessor(new JsonLinesSpanExporter())
        : undefined);
  if (!spanProcessor) return undefined;
  const resource = new Resource({ 'service.name': tracing.serviceName ?? service });
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register({ contextManager: new AsyncLocalStorageContextManager() });
  active = {
    activityInterceptors: [
      (ctx) => ({
        inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
        outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
      }),
    ],
    sinks: { exporter: makeWorkflowExporter(spanProcessor, resource) },
    workflowInterceptorModules: [
      require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors'),
    ],
    clientInterceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
  return active;
}
