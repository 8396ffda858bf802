/**
 * The service API: typed functions for other TypeScript services (and the `clusterguard` CLI)
 * to start clusterguard's runbooks, signal, update and query them, and manage backup schedules.
 * Every input is checked with the runbook's own zod schema before anything is sent; a bad one
 * throws `ClusterGuardError` of type `InvalidInput` naming each field. Wire names and JSON
 * shapes for clients in other languages: docs/api.md.
 */
import {
  Client,
  Connection,
  type ClientOptions,
  WorkflowFailedError,
  type TLSConfig,
  type WorkflowExecutionStatusName,
  type WorkflowHandle,
} from '@temporalio/client';
import { z } from 'zod';
import { nodeAddressSchema, orchestratorTaskQueue } from './contracts/addresses.js';
import type {
  BackupClusterInput,
  ExportDataInput,
  ImportDataInput,
  RestoreClusterInput,
  VerifyBackupInput,
} from './contracts/data-runbooks.js';
import { tlsFor } from './temporal/connection.js';
import { ClusterGuardError } from './contracts/errors.js';
import type {
  BootstrapClusterInput,
  DecommissionNodesInput,
  JoinNodeInput,
  RejoinNodeInput,
} from './contracts/membership-runbooks.js';
import { clusterIdSchema, type PingClusterInput } from './contracts/ping.js';
import type { Progress } from './contracts/progress.js';
import { describeZodError } from './contracts/validation.js';
import type { dataRunbooks } from './temporal/data-runbooks.js';
import { startDataRunbook, type DataRunbookName } from './temporal/data-runbooks.js';
import type { membershipRunbooks } from './temporal/runbooks.js';
import {
  startMembershipRunbook,
  startPingCluster,
  type MembershipRunbookName,
} from './temporal/runbooks.js';

export { ClusterGuardError, type ErrorType } from './contracts/errors.js';
export type { Progress, ProgressStep, StepStatus } from './contracts/progress.js';
export {
  backupClusterInputSchema,
  exportDataInputSchema,
  importDataInputSchema,
  restoreClusterInputSchema,
  verifyBackupInputSchema,
  type BackupClusterInput,
  type BackupClusterResult,
  type ExportDataInput,
  type ImportDataInput,
  type RestoreClusterInput,
  type VerifyBackupInput,
} from './contracts/data-runbooks.js';
export {
  bootstrapClusterInputSchema,
  decommissionNodesInputSchema,
  joinNodeInputSchema,
  rejoinNodeInputSchema,
  type BootstrapClusterInput,
  type DecommissionNodesInput,
  type JoinNodeInput,
  type MembershipRunbookResult,
  type RejoinNodeInput,
} from './contracts/membership-runbooks.js';
export {
  pingClusterInputSchema,
  type PingClusterInput,
  type PingClusterResult,
} from './contracts/ping.js';
export type { ScheduledBackupInput, ScheduledBackupResult } from './contracts/schedules.js';
export {
  createBackupSchedule,
  deleteBackupSchedule,
  describeBackupSchedule,
  listBackupSchedules,
  pauseBackupSchedule,
  triggerBackupSchedule,
  unpauseBackupSchedule,
  type BackupScheduleInfo,
  type CreateBackupScheduleOptions,
} from './temporal/schedules.js';
export { orchestratorTaskQueue };

// --- connecting ------------------------------------------------------------------------------

export const connectOptionsSchema = z
  .object({
    /** `host:port` of the Temporal frontend. */
    address: z.string().min(1).default('127.0.0.1:7233'),
    namespace: z.string().min(1).default('default'),
    /** TLS: `true` for the system's CAs, or files; any file given turns TLS on. */
    tls: z
      .union([
        z.boolean(),
        z
          .object({
            cert: z.string().min(1).optional(),
            key: z.string().min(1).optional(),
            ca: z.string().min(1).optional(),
            /** PEM text instead of a file (a connection profile's `*_data`). */
            certData: z.string().min(1).optional(),
            keyData: z.string().min(1).optional(),
            caData: z.string().min(1).optional(),
            serverName: z.string().min(1).optional(),
          })
          .strict()
          .refine(
            (t) => !(t.cert ?? t.certData) === !(t.key ?? t.keyData),
            'give both cert and key, or neither',
          )
          .refine(
            (t) => !(t.cert && t.certData) && !(t.key && t.keyData) && !(t.ca && t.caData),
            'give a file or data for each of cert, key and ca, not both',
          ),
      ])
      .optional(),
    /** Temporal Cloud or a proxy's API key; implies TLS unless `tls: false`. */
    apiKey: z.string().min(1).optional(),
    /** gRPC headers sent with every call (a connection profile's `grpc_meta`). */
    grpcMeta: z.record(z.string(), z.string()).optional(),
    connectTimeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();
export type ConnectOptions = z.input<typeof connectOptionsSchema>;

/** The SDK's TLS settings, read by the same code as the processes' (`temporal.tls`). */
function tlsConfig(o: z.output<typeof connectOptionsSchema>): Promise<TLSConfig | boolean> {
  const t = o.tls;
  return tlsFor({
    ...(o.apiKey ? { apiKey: o.apiKey } : {}),
    ...(t === undefined
      ? {}
      : {
          tls:
            typeof t === 'boolean'
              ? t
              : {
                  ...(t.cert ? { certFile: t.cert } : {}),
                  ...(t.key ? { keyFile: t.key } : {}),
                  ...(t.ca ? { caFile: t.ca } : {}),
                  ...(t.certData ? { certData: t.certData } : {}),
                  ...(t.keyData ? { keyData: t.keyData } : {}),
                  ...(t.caData ? { caData: t.caData } : {}),
                  ...(t.serverName ? { serverName: t.serverName } : {}),
                },
        }),
  });
}

/**
 * A Temporal client; close it with `client.connection.close()`. `dataConverter` must match the
 * orchestrator's when it encrypts payloads.
 */
export async function connect(
  options: ConnectOptions = {},
  extra: Pick<ClientOptions, 'dataConverter'> = {},
): Promise<Client> {
  const parsed = connectOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `invalid connection options: ${describeZodError(parsed.error)}`,
    );
  }
  const o = parsed.data;
  const connection = await Connection.connect({
    address: o.address,
    tls: await tlsConfig(o),
    ...(o.apiKey ? { apiKey: o.apiKey } : {}),
    ...(o.grpcMeta && Object.keys(o.grpcMeta).length > 0 ? { metadata: o.grpcMeta } : {}),
    connectTimeout: o.connectTimeoutMs,
  });
  return new Client({ connection, namespace: o.namespace, ...extra });
}

// --- starting runbooks -------------------------------------------------------------------------

export interface StartOptions {
  /** The orchestrator's task queue; default `clusterguard`. */
  taskQueue?: string;
}

/** What a start returns: enough to address the run later. */
export interface Started {
  workflowId: string;
  runId: string;
  handle: WorkflowHandle;
}

function started(handle: WorkflowHandle): Started {
  // Every start returns a handle with the run id, though the starters declare the plain type.
  const runId = (handle as { firstExecutionRunId?: string }).firstExecutionRunId ?? '';
  return { workflowId: handle.workflowId, runId, handle };
}

/** `pingCluster` under `cg/<cluster>/ping/<random>` (or `workflowId`). */
export async function pingCluster(
  client: Client,
  input: PingClusterInput,
  options: StartOptions & { workflowId?: string } = {},
): Promise<Started> {
  return started(await startPingCluster(client, input, options));
}

type Starter<I> = (client: Client, input: I, options?: StartOptions) => Promise<Started>;

function membershipStarter<N extends MembershipRunbookName>(
  runbook: N,
): Starter<z.input<(typeof membershipRunbooks)[N]>> {
  return async (client, input, options = {}) =>
    started(await startMembershipRunbook(client, runbook, input, options));
}

function dataStarter<N extends DataRunbookName>(
  runbook: N,
): Starter<z.input<(typeof dataRunbooks)[N]>> {
  return async (client, input, options = {}) =>
    started(await startDataRunbook(client, runbook, input, options));
}

/** Membership runbooks run as `cg/<cluster>/membership`; a second one is refused. */
export const bootstrapCluster: Starter<BootstrapClusterInput> =
  membershipStarter('bootstrapCluster');
export const joinNode: Starter<JoinNodeInput> = membershipStarter('joinNode');
export const rejoinNode: Starter<RejoinNodeInput> = membershipStarter('rejoinNode');
export const decommissionNodes: Starter<DecommissionNodesInput> =
  membershipStarter('decommissionNodes');

/** Data runbooks run as `cg/<cluster>/data`; a second one is refused (`ClusterBusy`). */
export const backupCluster: Starter<BackupClusterInput> = dataStarter('backupCluster');
export const verifyBackup: Starter<VerifyBackupInput> = dataStarter('verifyBackup');
export const restoreCluster: Starter<RestoreClusterInput> = dataStarter('restoreCluster');
export const exportData: Starter<ExportDataInput> = dataStarter('exportData');
export const importData: Starter<ImportDataInput> = dataStarter('importData');

// --- signals, updates, queries ---------------------------------------------------------------

const workflowIdSchema = z.string().min(1, 'expected a workflow id, e.g. cg/dev/membership');
export const retryStepArgSchema = z.object({ step: z.string().min(1).optional() }).strict();
export const skipNodeArgSchema = z
  .object({ node: nodeAddressSchema, reason: z.string().trim().min(1, 'give a reason') })
  .strict();
export const abortArgSchema = z
  .object({ reason: z.string().trim().min(1, 'give a reason') })
  .strict();

function check<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidInput',
      `invalid ${what}: ${describeZodError(parsed.error)}`,
    );
  }
  return parsed.data;
}

function handleOf(client: Client, workflowId: string, runId?: string): WorkflowHandle {
  return client.workflow.getHandle(check(workflowIdSchema, workflowId, 'workflow id'), runId);
}

/** Signal `pause`: the runbook holds before its next step (steps under way finish). */
export async function pauseRunbook(
  client: Client,
  workflowId: string,
  reason?: string,
): Promise<void> {
  await handleOf(client, workflowId).signal('pause', ...(reason ? [reason] : []));
}

/** Signal `resume`. */
export async function resumeRunbook(client: Client, workflowId: string): Promise<void> {
  await handleOf(client, workflowId).signal('resume');
}

/**
 * Update `retryStep`: the parked step (or `step`) runs again. Rejected, with the runbook's
 * reason, when nothing is parked (`WorkflowUpdateFailedError`).
 */
export async function retryStep(
  client: Client,
  workflowId: string,
  arg: z.input<typeof retryStepArgSchema> = {},
): Promise<string> {
  const a = check(retryStepArgSchema, arg, 'retryStep argument');
  return handleOf(client, workflowId).executeUpdate<string, [typeof a]>('retryStep', {
    args: [a],
  });
}

/** Update `skipNode`: the node's parked steps are skipped, when the runbook finds that safe. */
export async function skipNode(
  client: Client,
  workflowId: string,
  arg: z.input<typeof skipNodeArgSchema>,
): Promise<string> {
  const a = check(skipNodeArgSchema, arg, 'skipNode argument');
  return handleOf(client, workflowId).executeUpdate<string, [typeof a]>('skipNode', {
    args: [a],
  });
}

/** Update `abort`: only while a step is parked or the runbook is paused; it then fails. */
export async function abortRunbook(
  client: Client,
  workflowId: string,
  arg: z.input<typeof abortArgSchema>,
): Promise<string> {
  const a = check(abortArgSchema, arg, 'abort argument');
  return handleOf(client, workflowId).executeUpdate<string, [typeof a]>('abort', { args: [a] });
}

/** Query `progress`. */
export async function getProgress(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<Progress> {
  return handleOf(client, workflowId, runId).query<Progress>('progress');
}

export interface RunbookOutcome {
  workflowId: string;
  runId: string;
  type: string;
  status: WorkflowExecutionStatusName;
  startTime: string;
  closeTime?: string;
  /** The result, when completed. */
  result?: unknown;
  /** The innermost failure message and type, when failed. */
  failure?: { message: string; type?: string };
}

function innermost(err: unknown): { message: string; type?: string } {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  const type = (e as { type?: unknown }).type;
  return {
    message: e instanceof Error ? e.message : String(e),
    ...(typeof type === 'string' ? { type } : {}),
  };
}

/** How a run stands now; the result or failure once it has ended. */
export async function runbookOutcome(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<RunbookOutcome> {
  const handle = handleOf(client, workflowId, runId);
  const d = await handle.describe();
  const outcome: RunbookOutcome = {
    workflowId: d.workflowId,
    runId: d.runId,
    type: d.type,
    status: d.status.name,
    startTime: d.startTime.toISOString(),
    ...(d.closeTime ? { closeTime: d.closeTime.toISOString() } : {}),
  };
  if (d.status.name === 'RUNNING') return outcome;
  try {
    outcome.result = await client.workflow.getHandle(d.workflowId, d.runId).result();
  } catch (err) {
    outcome.failure = innermost(err instanceof WorkflowFailedError ? (err.cause ?? err) : err);
  }
  return outcome;
}

/**
 * Follows a run: calls `onProgress` with each new `progress` answer (every `intervalMs`) until
 * the run ends, then answers its outcome. A query that fails (no orchestrator polling right
 * now) is skipped; the run is followed on.
 */
export async function followRunbook(
  client: Client,
  workflowId: string,
  onProgress: (p: Progress) => void,
  options: { intervalMs?: number; signal?: AbortSignal } = {},
): Promise<RunbookOutcome> {
  const handle = handleOf(client, workflowId);
  const { runId } = await handle.describe();
  const run = client.workflow.getHandle(workflowId, runId);
  let ended = false;
  const done = run.result().then(
    () => undefined,
    () => undefined,
  );
  void done.then(() => (ended = true));
  let last = '';
  const poll = async () => {
    try {
      const p = await run.query<Progress>('progress');
      const key = JSON.stringify({ ...p, updatedAt: undefined });
      if (key !== last) {
        last = key;
        onProgress(p);
      }
    } catch {
      // not answered now (worker restarting): the next poll asks again
    }
  };
  while (!ended && !options.signal?.aborted) {
    await poll();
    await Promise.race([done, new Promise((r) => setTimeout(r, options.intervalMs ?? 1000))]);
  }
  await poll();
  return runbookOutcome(client, workflowId, runId);
}

export interface RunbookListEntry {
  workflowId: string;
  runId: string;
  type: string;
  status: WorkflowExecutionStatusName;
  startTime: string;
  closeTime?: string;
}

export const listRunbooksSchema = z
  .object({
    clusterId: clusterIdSchema,
    /** Only this workflow type, e.g. `backupCluster`. */
    runbook: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]*$/, 'expected a workflow type, e.g. backupCluster')
      .optional(),
    /** Only runs still running. */
    running: z.boolean().default(false),
    limit: z.number().int().min(1).max(10_000).default(50),
  })
  .strict();

/**
 * The runbooks of a cluster, newest first, by the search attributes every runbook sets
 * (`ClusterId`, `Runbook`). Visibility is eventually consistent: a run started a moment ago
 * may be missing for a second.
 */
export async function listRunbooks(
  client: Client,
  options: z.input<typeof listRunbooksSchema>,
): Promise<RunbookListEntry[]> {
  const o = check(listRunbooksSchema, options, 'list options');
  const query = [
    `ClusterId="${o.clusterId}"`,
    ...(o.runbook ? [`Runbook="${o.runbook}"`] : []),
    ...(o.running ? [`ExecutionStatus="Running"`] : []),
  ].join(' AND ');
  const rows: RunbookListEntry[] = [];
  for await (const w of client.workflow.list({ query, pageSize: Math.min(o.limit, 1000) })) {
    rows.push({
      workflowId: w.workflowId,
      runId: w.runId,
      type: w.type,
      status: w.status.name,
      startTime: w.startTime.toISOString(),
      ...(w.closeTime ? { closeTime: w.closeTime.toISOString() } : {}),
    });
    if (rows.length >= o.limit) break;
  }
  return rows;
}
