import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { orchestratorTaskQueue } from '../contracts/addresses.js';
import { standaloneAddress, type ClusterFile } from '../contracts/cluster-file.js';
import { ClusterGuardError } from '../contracts/errors.js';
import {
  clusterGuardianInputSchema,
  guardianWorkflowId,
  setMembershipSchema,
  type ClusterGuardianInput,
  type GuardianState,
  type SetMembershipArg,
} from '../contracts/guardian.js';
import { clusterIdKey, nodesKey, runbookKey } from '../contracts/search-attributes.js';
import { describeZodError } from '../contracts/validation.js';

/** The wire names of the guardian's messages (workflows/definitions.ts). */
export const guardianMessages = {
  setMembership: 'setMembership',
  state: 'state',
  progress: 'progress',
  pause: 'pause',
  resume: 'resume',
  reconcile: 'reconcile',
} as const;

type GuardianWorkflow = (input: ClusterGuardianInput) => Promise<never>;
export type GuardianHandle = WorkflowHandle<GuardianWorkflow>;

/**
 * Starts the cluster's guardian as `cg/<clusterId>/guardian`. A guardian that already runs is
 * not replaced: ClusterBusy says so (change its desired membership with setGuardianMembership).
 */
export async function startGuardian(
  client: Client,
  input: ClusterGuardianInput,
  options: { taskQueue?: string } = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<GuardianWorkflow>> {
  const parsed = clusterGuardianInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidInput',
      `invalid clusterGuardian input: ${describeZodError(parsed.error)}`,
    );
  }
  const { clusterId } = parsed.data;
  const workflowId = guardianWorkflowId(clusterId);
  try {
    return await client.workflow.start<GuardianWorkflow>('clusterGuardian', {
      args: [input],
      taskQueue: options.taskQueue ?? orchestratorTaskQueue,
      workflowId,
      typedSearchAttributes: [
        { key: clusterIdKey, value: clusterId },
        { key: runbookKey, value: 'clusterGuardian' },
        { key: nodesKey, value: parsed.data.desired ?? [parsed.data.master] },
      ],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    throw new ClusterGuardError(
      'ClusterBusy',
      `the guardian of cluster ${clusterId} already runs as ${workflowId}: change its desired ` +
        'membership with setMembership, or stop it first',
      { cause: err },
    );
  }
}

export function guardianHandle(client: Client, clusterId: string): GuardianHandle {
  return client.workflow.getHandle<GuardianWorkflow>(guardianWorkflowId(clusterId));
}

/** The query `state`: desired, actual, last check, running child, history. */
export async function guardianState(client: Client, clusterId: string): Promise<GuardianState> {
  return guardianHandle(client, clusterId).query<GuardianState>(guardianMessages.state);
}

/**
 * The update `setMembership`, checked here first so that a typo is reported at the prompt; the
 * guardian's validator checks it again. Resolves with the guardian's answer (what it will do).
 */
export async function setGuardianMembership(
  client: Client,
  clusterId: string,
  arg: SetMembershipArg,
): Promise<string> {
  const parsed = setMembershipSchema.safeParse(arg);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidInput',
      `invalid setMembership: ${describeZodError(parsed.error)}`,
    );
  }
  return guardianHandle(client, clusterId).executeUpdate<string, [SetMembershipArg]>(
    guardianMessages.setMembership,
    { args: [arg] },
  );
}

export async function pauseGuardian(
  client: Client,
  clusterId: string,
  reason?: string,
): Promise<void> {
  await guardianHandle(client, clusterId).signal(
    guardianMessages.pause,
    ...(reason === undefined ? [] : [reason]),
  );
}

export async function resumeGuardian(client: Client, clusterId: string): Promise<void> {
  await guardianHandle(client, clusterId).signal(guardianMessages.resume);
}

/** Check now; a failed change is tried again. With `node`: rejoin that restarted node. */
export async function requestReconcile(
  client: Client,
  clusterId: string,
  arg: { node?: string; reason?: string } = {},
): Promise<void> {
  await guardianHandle(client, clusterId).signal(guardianMessages.reconcile, arg);
}

/** Ends the guardian (terminate): a running membership runbook goes on by itself. */
export async function stopGuardian(
  client: Client,
  clusterId: string,
  reason: string,
): Promise<void> {
  await guardianHandle(client, clusterId).terminate(reason);
}

/** Seed 001 §3: a member whose cluster.json says its configuration is not in force yet. */
export function restartedNotReady(file: ClusterFile): boolean {
  const { nodes, clusterConfigReady, nodeConfigReady } = file.cluster;
  return (
    nodes.length > 1 &&
    !nodes.includes(standaloneAddress) &&
    !(clusterConfigReady && nodeConfigReady)
  );
}

export interface ReconcileHookDeps {
  clusterId: string;
  address: string;
  loadClusterFile: () => Promise<ClusterFile>;
  connect: () => Promise<Client>;
  logger: {
    info(message: string, fields?: Record<string, unknown>): void;
    warn(message: string, fields?: Record<string, unknown>): void;
  };
}

/**
 * The node agent's start-up hook (seed 001 §3, "a restarted node"): a member that starts on a
 * cluster.json that is not ready asks the guardian to reconcile instead of acting alone. Never
 * throws: a guardian that is not running, or a Temporal that does not answer, is logged only.
 */
export async function askGuardianIfNotReady(
  deps: ReconcileHookDeps,
): Promise<'asked' | 'ready' | 'no-guardian' | 'failed'> {
  let client: Client | undefined;
  try {
    const file = await deps.loadClusterFile();
    if (!restartedNotReady(file)) return 'ready';
    const reason =
      `the agent of ${deps.address} started on a cluster.json that is not ready ` +
      `(clusterConfigReady ${file.cluster.clusterConfigReady}, nodeConfigReady ${file.cluster.nodeConfigReady})`;
    client = await deps.connect();
    try {
      await requestReconcile(client, deps.clusterId, { node: deps.address, reason });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      deps.logger.warn(
        `${reason}, and no guardian runs as ${guardianWorkflowId(deps.clusterId)}: start one ` +
          '(clusterguard guardian start) or rejoin this node with rejoinNode',
      );
      return 'no-guardian';
    }
    deps.logger.info(`${reason}: asked ${guardianWorkflowId(deps.clusterId)} to reconcile`);
    return 'asked';
  } catch (err) {
    deps.logger.warn('could not ask the guardian to reconcile', {
      error: (err as Error).message,
    });
    return 'failed';
  } finally {
    await client?.connection.close().catch(() => undefined);
  }
}
