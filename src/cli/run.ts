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
  type Progress,
  type RunbookInput,
  type RunbookName,
  type RunbookOutcome,
  type StartOptions,
} from '../client/index.js';
import type { Client } from '@temporalio/client';
import { CliExit, cli, defined, exitCodes, extraInput, print, type Globals } from './common.js';
import { outcomeLine, ProgressBars, progressTable } from './render.js';
import { resolveConnection, type ResolvedConnection } from './settings.js';

/** Connecting, running a command's call, and turning what happened into an exit code. */

export function innermostMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

export async function withClient<T>(
  cmd: Command,
  fn: (client: Client, conn: ResolvedConnection) => Promise<T>,
): Promise<T> {
  const conn = resolveConnection(cmd.optsWithGlobals<Globals>());
  let client: Client;
  try {
    const dataConverter = await dataConverterFor(conn.codec);
    client = await connect(conn.connect, dataConverter ? { dataConverter } : {});
  } catch (err) {
    if (err instanceof ClusterGuardError) throw err;
    const from = conn.profile ? `, profile "${conn.profile.name}" of ${conn.profile.file}` : '';
    throw new CliExit(
      exitCodes.cannotConnect,
      `cannot connect to Temporal at ${conn.connect.address} (namespace ` +
        `${conn.connect.namespace ?? 'default'}${from}): ${innermostMessage(err)}. Check ` +
        `--address or TEMPORAL_ADDRESS${conn.profile ? ', the profile' : ''}, TLS and API key ` +
        'settings, and that the server runs.',
    );
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
  return {
    code: exitCodes.internal,
    type: 'Error',
    message: err instanceof Error ? (err.stack ?? message) : message,
  };
}

export function outcomeCode(o: RunbookOutcome): number {
  return o.status === 'COMPLETED' ? exitCodes.ok : exitCodes.runbookFailed;
}

/** Follows a run with live bars on stderr (or NDJSON on stdout); the outcome decides the code. */
export async function watchRun(
  client: Client,
  workflowId: string,
  intervalMs: number,
): Promise<number> {
  const bars = cli.json ? undefined : new ProgressBars(process.stderr);
  // Ctrl-C leaves the runbook running; only the terminal (cursor, bars) is put right.
  const interrupted = () => {
    bars?.stop();
    console.error(`stopped watching; ${workflowId} goes on (clusterguard status ${workflowId})`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  let last: Progress | undefined;
  let outcome: RunbookOutcome;
  try {
    outcome = await followRunbook(
      client,
      workflowId,
      (p) => {
        last = p;
        if (bars) bars.update(p);
        else console.log(JSON.stringify({ progress: p }));
      },
      { intervalMs },
    );
  } finally {
    process.off('SIGINT', interrupted);
    bars?.stop();
  }
  if (cli.json) console.log(JSON.stringify({ outcome }));
  else {
    if (last) console.log(progressTable(last));
    console.log(outcomeLine(outcome));
  }
  return outcomeCode(outcome);
}

interface StartFlags {
  input?: string;
  wait?: boolean;
  watch?: boolean;
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
  return withClient(cmd, async (client, conn) => {
    const s = await startRunbook(client, runbook, input, { ...options, taskQueue: conn.taskQueue });
    if (flags.watch) return watchRun(client, s.workflowId, 1000);
    if (flags.wait) {
      const outcome = await followRunbook(client, s.workflowId, () => undefined);
      print(outcome, () =>
        [
          outcomeLine(outcome),
          ...(outcome.result === undefined ? [] : [JSON.stringify(outcome.result, null, 2)]),
        ].join('\n'),
      );
      return outcomeCode(outcome);
    }
    const runId = s.firstExecutionRunId;
    print({ runbook, workflowId: s.workflowId, runId, taskQueue: conn.taskQueue }, () =>
      [
        `started ${runbook} as ${s.workflowId} (run ${runId})`,
        `follow it: clusterguard watch ${s.workflowId}`,
      ].join('\n'),
    );
    return exitCodes.ok;
  });
}
