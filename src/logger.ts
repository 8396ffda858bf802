/**
 * One log format for every process: JSON lines on stderr, from our code and from the Temporal
 * SDK alike (src/observability/runtime.ts routes the SDK's logger here):
 *   {"time":"…","level":"info","logger":"node-agent","msg":"…","node":"10.0.0.1","workflowId":…}
 * Inside an activity every line carries the workflow id, run id and activity type; an agent's
 * lines carry its node. `CG_LOG_LEVEL` (debug, info, warn, error) governs all of it.
 */
import { Context } from '@temporalio/activity';
import { ClusterGuardError } from './contracts/errors.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const logLevels = Object.keys(order) as LogLevel[];

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Fields on every line of this process (e.g. `node` of an agent). */
const processFields: Record<string, unknown> = {};

export function setProcessLogFields(fields: Record<string, unknown>): void {
  Object.assign(processFields, fields);
}

/** The running activity's workflow and activity, when this line is logged inside one. */
function activityFields(): Record<string, unknown> {
  let info: Context['info'];
  try {
    info = Context.current().info;
  } catch {
    return {};
  }
  return {
    // Absent for a standalone activity (not started by a workflow).
    ...(info.workflowExecution
      ? { workflowId: info.workflowExecution.workflowId, runId: info.workflowExecution.runId }
      : {}),
    activity: info.activityType,
  };
}

function safeStringify(entry: Record<string, unknown>): string {
  try {
    return JSON.stringify(entry, (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v instanceof Error ? v.message : v,
    );
  } catch {
    return JSON.stringify({ time: entry.time, level: entry.level, msg: String(entry.msg) });
  }
}

/**
 * Writes one JSON line. The process's fields (an agent's `node`) are always its own: a call's
 * field of the same name that differs (a peer's address) goes under `about`.
 */
export function writeLogLine(
  level: LogLevel,
  logger: string,
  message: string,
  fields: Record<string, unknown> = {},
  time = new Date(),
): void {
  const about: Record<string, unknown> = {};
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k in processFields && processFields[k] !== v) about[k] = v;
    else own[k] = v;
  }
  const line = safeStringify({
    time: time.toISOString(),
    level,
    logger,
    msg: message,
    ...activityFields(),
    ...own,
    ...processFields,
    ...(Object.keys(about).length ? { about } : {}),
  });
  process.stderr.write(`${line}\n`);
}

export function createLogger(name: string, level: LogLevel = envLogLevel()): Logger {
  const write = (lvl: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < order[level]) return;
    writeLogLine(lvl, name, message, fields);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

/** True when a line of `lvl` is written at `threshold`. */
export function logLevelEnabled(lvl: LogLevel, threshold: LogLevel): boolean {
  return order[lvl] >= order[threshold];
}

/** `CG_LOG_LEVEL`, default info; anything else is a configuration error, not a silent info. */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const v = env.CG_LOG_LEVEL;
  if (v === undefined || v === '') return 'info';
  const lower = v.toLowerCase();
  if ((logLevels as string[]).includes(lower)) return lower as LogLevel;
  throw new ClusterGuardError(
    'InvalidConfig',
    `CG_LOG_LEVEL is "${v}", which is not a log level: use one of ${logLevels.join(', ')}`,
  );
}
