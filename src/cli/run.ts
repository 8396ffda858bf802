import { CommanderError, type Command } from 'commander';
import {
  ClusterGuardError,
  NamespaceNotFoundError,
  QueryNotRegisteredError,
  ScheduleNotFoundError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  checkRunbookInput,
  connect,
  dataConverterFor,
  failureKind,
  followRunbook,
  startRunbook,
  workflowUiUrl,
  type Progress,
  type RunbookInput,
  type RunbookName,
  type RunbookOutcome,
  type StartOptions,
} from '../client/index.js';
import type { Client } from '@temporalio/client';
import { CliExit, cli, defined, exitCodes, extraInput, format, paint, print } from './common.js';
import { cannotConnect } from './probe.js';
import { operatorWait, outcomeLine, ProgressBars, progressLines, progressTable } from './render.js';
import type { ResolvedConnection } from './settings.js';

/** Connecting, running a command's call, and turning what happened into an exit code. */

export function innermostMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

/** The gRPC status code of an error or of one of its causes. */
function grpcCode(err: unknown): number | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** Time the server gets to answer once it has been reached (the probe took the rest). */
const answerMs = 10_000;

/** Words for a failed connect after a good probe: the server speaks HTTP/2, so is it Temporal? */
function connectCause(err: unknown): string {
  const message = innermostMessage(err);
  const code = grpcCode(err);
  if (code === 12 || /unimplemented|HTTP status code|content-type|grpc-status/i.test(message)) {
    return `it answers HTTP/2 but is not a Temporal frontend (${message})`;
  }
  return message;
}

/** Connects (the frontend was probed: src/cli/lazy.ts), runs `fn`, closes. */
export async function withClient<T>(
  conn: ResolvedConnection,
  fn: (client: Client, conn: ResolvedConnection) => Promise<T>,
): Promise<T> {
  let client: Client;
  try {
    const dataConverter = await dataConverterFor(conn.codec);
    client = await connect(
      { ...conn.connect, connectTimeoutMs: answerMs },
      dataConverter ? { dataConverter } : {},
    );
    // The SDK lets a frontend without GetSystemInfo pass (very old servers); every server this
    // CLI supports answers it, so an HTTP/2 server that does not is no Temporal frontend.
    await client.workflowService.getSystemInfo({}).catch(async (err: unknown) => {
      await client.connection.close().catch(() => undefined);
      throw err;
    });
  } catch (err) {
    if (err instanceof ClusterGuardError) throw err;
    throw cannotConnect(conn, connectCause(err));
  }
  try {
    return await fn(client, conn);
  } finally {
    await client.connection.close().catch(() => undefined);
  }
}

const codeOfKind: Partial<Record<string, number>> = {
  InvalidInput: exitCodes.usage,
  InvalidConfig: exitCodes.usage,
  ClusterBusy: exitCodes.refused,
  NotFound: exitCodes.notFound,
  UpdateRejected: exitCodes.refused,
  Unavailable: exitCodes.cannotConnect,
  InvalidArgument: exitCodes.usage,
  FailedPrecondition: exitCodes.refused,
};

/** The exit code, error type and message an error ends the CLI with. */
export function classify(err: unknown): { code: number; type: string; message: string } {
  const message = innermostMessage(err);
  if (err instanceof CliExit) return { code: err.code, type: err.type ?? 'Error', message };
  if (err instanceof CommanderError) return { code: exitCodes.usage, type: 'Usage', message };
  if (err instanceof ClusterGuardError) {
    const code = codeOfKind[err.type] ?? exitCodes.runbookFailed;
    return { code, type: err.type, message: err.message };
  }
  const kind = failureKind(err);
  if (
    err instanceof WorkflowNotFoundError ||
    err instanceof ScheduleNotFoundError ||
    err instanceof NamespaceNotFoundError ||
    err instanceof QueryNotRegisteredError
  ) {
    return { code: exitCodes.notFound, type: err.name, message: err.message };
  }
  if (err instanceof WorkflowUpdateFailedError || kind !== 'Error') {
    return { code: codeOfKind[kind] ?? exitCodes.internal, type: kind, message };
  }
  // A gRPC status the CLI has no word for: the server's message, not a stack trace.
  if (grpcCode(err) !== undefined) {
    return { code: exitCodes.internal, type: 'ServerError', message };
  }
  return {
    code: exitCodes.internal,
    type: 'Error',
    message: err instanceof Error ? (err.stack ?? message) : message,
  };
}

export function outcomeCode(o: RunbookOutcome): number {
  return o.status === 'COMPLETED' ? exitCodes.ok : exitCodes.runbookFailed;
}

export interface WaitOptions {
  intervalMs: number;
  /** Give up after this long (exit 7); the runbook goes on. */
  timeoutMs?: number;
  /** Live bars (watch) rather than a line per change (--wait). */
  bars: boolean;
}

/**
 * Follows a run until it ends, parks (waits for an operator's update: exit 6) or `timeoutMs`
 * passes (exit 7). Progress goes to stderr while waiting: bars, or a line per change; with
 * `-o json|yaml|jsonl` one JSON line per change on stdout. The outcome decides the code.
 */
export async function waitRun(
  client: Client,
  workflowId: string,
  options: WaitOptions,
): Promise<number> {
  const bars = !cli.json && options.bars ? new ProgressBars(process.stderr) : undefined;
  const stop = new AbortController();
  // Ctrl-C leaves the runbook running; only the terminal (cursor, bars) is put right.
  const interrupted = () => {
    bars?.stop();
    console.error(`stopped watching; ${workflowId} goes on (clusterguard status ${workflowId})`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  const timer = options.timeoutMs
    ? setTimeout(() => stop.abort('timeout'), options.timeoutMs)
    : undefined;
  let last: Progress | undefined;
  let shown = new Set<string>();
  let outcome: RunbookOutcome;
  try {
    outcome = await followRunbook(
      client,
      workflowId,
      (p) => {
        last = p;
        if (bars) bars.update(p);
        else if (cli.json && options.bars) console.log(JSON.stringify({ progress: p }));
        else shown = progressLines(p, shown, (line) => console.error(line));
        if (operatorWait(p)) stop.abort('waiting');
      },
      { intervalMs: options.intervalMs, signal: stop.signal },
    );
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', interrupted);
    bars?.stop();
  }
  const running = outcome.status === 'RUNNING';
  const waiting = running && last ? operatorWait(last) : undefined;
  const p = last;
  if (cli.json && options.bars) console.log(JSON.stringify({ outcome, waiting }));
  else {
    // --wait: one document, the outcome (and its result); watch: the last table and the outcome.
    print({ ...outcome, ...(waiting ? { waiting } : {}) }, () =>
      [
        ...(p && (options.bars || running) ? [progressTable(p)] : []),
        outcomeLine(outcome),
        ...(outcome.result === undefined || options.bars
          ? []
          : [JSON.stringify(outcome.result, null, 2)]),
      ].join('\n'),
    );
  }
  if (!running) return outcomeCode(outcome);
  if (waiting) {
    if (!cli.json) console.error(paint('yellow', `waiting for an operator: ${waiting}`));
    return exitCodes.waiting;
  }
  if (!cli.json) {
    console.error(`--timeout passed; ${workflowId} goes on (clusterguard watch ${workflowId})`);
  }
  return exitCodes.timedOut;
}

interface StartFlags {
  input?: string;
  wait?: boolean;
  watch?: boolean;
  timeout?: number;
}

/** Checks the input (nothing is sent when it is bad), starts, and reports, waits or watches. */
export async function startCommand<N extends RunbookName>(
  cmd: Command,
  runbook: N,
  fields: Record<string, unknown>,
  options: Omit<StartOptions, 'taskQueue'> = {},
): Promise<number> {
  const flags = cmd.opts<StartFlags>();
  const input = { ...extraInput(flags.input), ...defined(fields) } as RunbookInput<N>;
  checkRunbookInput(runbook, input);
  return (await import('./lazy.js')).withClient(cmd, async (client, conn) => {
    const s = await startRunbook(client, runbook, input, { ...options, taskQueue: conn.taskQueue });
    const runId = s.firstExecutionRunId;
    const namespace = conn.connect.namespace ?? 'default';
    const url = workflowUiUrl(conn.uiUrl, namespace, s.workflowId, runId);
    const started = { runbook, workflowId: s.workflowId, runId, taskQueue: conn.taskQueue, url };
    const following = flags.watch || flags.wait;
    // Before waiting, where to look; on stderr when the wait's own data goes to stdout.
    const text = [
      `started ${runbook} as ${s.workflowId} (run ${runId})`,
      `Web UI: ${paint('blue', url)}`,
      ...(following ? [] : [`follow it: clusterguard watch ${s.workflowId}`]),
    ].join('\n');
    if (!following) print(started, () => text);
    else if (cli.json) console.error(format({ started }, () => text).replace(/\n/g, ' '));
    else console.error(text);
    if (!following) return exitCodes.ok;
    return waitRun(client, s.workflowId, {
      intervalMs: 1000,
      bars: flags.watch === true,
      ...(flags.timeout ? { timeoutMs: flags.timeout * 1000 } : {}),
    });
  });
}
