import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import type { LogLevel as SdkLogLevel } from '@temporalio/common';
import { envLogLevel, writeLogLine, type LogLevel } from '../logger.js';

const toSdkLevel: Record<LogLevel, SdkLogLevel> = {
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
};
const fromSdkLevel: Record<SdkLogLevel, LogLevel> = {
  TRACE: 'debug',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Metadata the SDK attaches, renamed to our fields; the task token is noise in a log. */
function sdkFields(meta: Record<string, unknown> = {}): Record<string, unknown> {
  const { workflowRunId, activityType, sdkComponent, ...rest } = meta;
  delete rest.taskToken;
  return {
    ...rest,
    ...(workflowRunId !== undefined ? { runId: workflowRunId } : {}),
    ...(activityType !== undefined ? { activity: activityType } : {}),
    ...(sdkComponent !== undefined ? { component: sdkComponent } : {}),
  };
}

/** Writes an SDK log entry as one of our JSON lines (workflow and activity context included). */
export function writeSdkEntry(entry: LogEntry): void {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n));
  writeLogLine(
    fromSdkLevel[entry.level],
    'temporal-sdk',
    entry.message,
    sdkFields(entry.meta),
    time,
  );
}

export interface RuntimeOptions {
  /** `host:port` where the SDK serves its own Prometheus metrics (src/observability/metrics.ts). */
  sdkMetricsAddress?: string;
  /** The level when `CG_LOG_LEVEL` is unset (default info; `npm start` takes warn). */
  defaultLevel?: LogLevel;
}

/**
 * Installs the SDK's runtime once per process, before any connection: its logger writes our
 * JSON lines at `CG_LOG_LEVEL` (the SDK core's own lines are forwarded too), and its metrics are
 * served in Prometheus text when asked for.
 */
export function installRuntime(options: RuntimeOptions = {}): void {
  const level =
    toSdkLevel[process.env.CG_LOG_LEVEL ? envLogLevel() : (options.defaultLevel ?? 'info')];
  Runtime.install({
    logger: new DefaultLogger(level, writeSdkEntry),
    telemetryOptions: {
      logging: { filter: { core: level, other: 'ERROR' }, forward: {} },
      ...(options.sdkMetricsAddress
        ? { metrics: { prometheus: { bindAddress: options.sdkMetricsAddress } } }
        : {}),
    },
  });
}
