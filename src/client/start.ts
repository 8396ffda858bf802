import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import type { ZodType } from 'zod';
import { orchestratorTaskQueue } from '../contracts/addresses.js';
import { symbolicNameSchema } from '../contracts/bundles.js';
import {
  runbooks,
  type IdContext,
  type RunbookInput,
  type RunbookName,
  type RunbookParams,
  type RunbookResult,
} from '../contracts/catalog.js';
import { clusterIdKey, nodesKey, runbookKey } from '../contracts/search-attributes.js';
import { checked } from '../contracts/validation.js';
import { ClusterBusyError } from './errors.js';
import { startMetadata } from './start-metadata.js';

export interface StartOptions {
  /** The orchestrator's task queue; default `clusterguard`. */
  taskQueue?: string;
  /** Only runbooks that run side by side (pingCluster): an id of the caller's choosing. */
  workflowId?: string;
  /** rolloutBundle: the bundle's symbolic name, as `POST /v1/bundles` answered. */
  symbolicName?: string;
}

export type RunbookHandle<N extends RunbookName> = WorkflowHandleWithFirstExecutionRunId<
  (input: RunbookInput<N>) => Promise<RunbookResult<N>>
>;

/** What a start returns: enough to address the run later, and its typed handle. */
export interface Started<N extends RunbookName = RunbookName> {
  workflowId: string;
  runId: string;
  handle: RunbookHandle<N>;
}

/**
 * Turns Temporal's refusal to start a second run under a runbook's id into ClusterBusy naming
 * the run that holds it, so the operator knows what to wait for or abort.
 */
async function busy(
  client: Client,
  err: WorkflowExecutionAlreadyStartedError,
  what: { runbook: string; lane: string; clusterId: string; workflowId: string; hint?: string },
): Promise<never> {
  let running = `a ${what.lane} runbook`;
  try {
    const d = await client.workflow.getHandle(what.workflowId).describe();
    running = `${d.type} (run ${d.runId}, started ${d.startTime.toISOString()})`;
  } catch {
    // the refusal stands without the details
  }
  throw new ClusterBusyError(
    `cannot start ${what.runbook} on cluster ${what.clusterId}: ${running} is still running as ` +
      `${what.workflowId}; ` +
      (what.hint ??
        `a cluster runs one ${what.lane} runbook at a time. Wait for it, or look at its ` +
          'progress (query `progress`) and finish or abort it first.'),
    { cause: err },
  );
}

/**
 * Starts any runbook of the catalog: the input is checked with its schema before anything is
 * sent (InvalidInput names each field), the workflow id follows the runbook's lane (so Temporal
 * itself refuses a second membership or data runbook, guardian or rollout: ClusterBusy), and
 * the search attributes `ClusterId`, `Runbook` and `Nodes` are set at start. Answers the run's
 * typed handle (`result()` is the runbook's result type).
 */
export async function startRunbook<N extends RunbookName>(
  client: Client,
  name: N,
  input: RunbookInput<N>,
  options: StartOptions = {},
): Promise<RunbookHandle<N>> {
  const spec = runbooks[name] as unknown as {
    lane: string;
    input: () => ZodType;
    workflowId: (p: unknown, ctx: IdContext) => string;
    nodes: (p: unknown) => string[] | undefined;
    busyHint?: string;
  };
  const params = checked(spec.input(), input, `${name} input`) as { clusterId: string };
  const ctx: IdContext = {
    unique: spec.lane === 'ping' ? randomUUID().slice(0, 8) : Date.now().toString(36),
  };
  if (name === 'rolloutBundle') {
    ctx.symbolicName = checked(symbolicNameSchema, options.symbolicName, 'symbolicName');
  }
  const workflowId =
    spec.lane === 'ping' || spec.lane === 'bundle'
      ? (options.workflowId ?? spec.workflowId(params, ctx))
      : spec.workflowId(params, ctx);
  const nodes = spec.nodes(params);
  try {
    const handle = await client.workflow.start(name, {
      // As given: the runbook applies the defaults itself, so they are recorded where it runs.
      args: [input],
      taskQueue: options.taskQueue ?? orchestratorTaskQueue,
      workflowId,
      ...startMetadata(name, params, nodes, input),
      typedSearchAttributes: [
        { key: clusterIdKey, value: params.clusterId },
        { key: runbookKey, value: name },
        ...(nodes ? [{ key: nodesKey, value: nodes }] : []),
      ],
    });
    return handle;
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return busy(client, err, {
      runbook: name,
      lane: spec.lane,
      clusterId: params.clusterId,
      workflowId,
      ...(spec.busyHint ? { hint: spec.busyHint } : {}),
    });
  }
}

type Starter<N extends RunbookName> = (
  client: Client,
  input: RunbookInput<N>,
  options?: Omit<StartOptions, 'symbolicName'>,
) => Promise<Started<N>>;

function started<N extends RunbookName>(handle: RunbookHandle<N>): Started<N> {
  return { workflowId: handle.workflowId, runId: handle.firstExecutionRunId, handle };
}

const starter =
  <N extends RunbookName>(name: N): Starter<N> =>
  async (client, input, options = {}) =>
    started(await startRunbook(client, name, input, options));

/** `pingCluster` under `cg/<cluster>/ping/<random>` (or `workflowId`). */
export const pingCluster = starter('pingCluster');
/** Membership runbooks run as `cg/<cluster>/membership`; a second one is ClusterBusy. */
export const bootstrapCluster = starter('bootstrapCluster');
export const joinNode = starter('joinNode');
export const rejoinNode = starter('rejoinNode');
export const decommissionNodes = starter('decommissionNodes');
/** Data runbooks run as `cg/<cluster>/data`; a second one is ClusterBusy. */
export const backupCluster = starter('backupCluster');
export const verifyBackup = starter('verifyBackup');
export const restoreCluster = starter('restoreCluster');
export const exportData = starter('exportData');
export const importData = starter('importData');
/** The cluster's guardian as `cg/<cluster>/guardian`; one that runs already is ClusterBusy. */
export const startGuardian = starter('clusterGuardian');

/**
 * `rolloutBundle` as `cg/<cluster>/bundle/<symbolicName>` (a dry run gets an id of its own, so
 * it never collides with a running rollout); a rollout of the same bundle running is ClusterBusy.
 */
export function rolloutBundle(
  client: Client,
  input: RunbookInput<'rolloutBundle'>,
  options: StartOptions & { symbolicName: string },
): Promise<Started<'rolloutBundle'>> {
  return startRunbook(client, 'rolloutBundle', input, options).then(started);
}

/**
 * The input as the runbook's schema reads it, or InvalidInput naming each field: what
 * `startRunbook` checks first, for a caller that wants to refuse before it connects.
 */
export function checkRunbookInput<N extends RunbookName>(
  name: N,
  input: unknown,
): RunbookParams<N> {
  return checked(runbooks[name].input(), input, `${name} input`) as RunbookParams<N>;
}
