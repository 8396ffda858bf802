import type { Client, WorkflowHandle } from '@temporalio/client';
import {
  guardianWorkflowId,
  setMembershipSchema,
  type ClusterGuardianInput,
  type GuardianState,
  type SetMembershipArg,
} from '../contracts/guardian.js';
import {
  guardianStateQuery,
  pauseSignal,
  reconcileSignal,
  resumeSignal,
  setMembershipUpdate,
} from '../contracts/messages.js';
import { clusterIdSchema } from '../contracts/ping.js';
import { checked } from '../contracts/validation.js';

/** The guardian of a cluster (`clusterGuardian`, `cg/<cluster>/guardian`): its messages. */

export type GuardianHandle = WorkflowHandle<(input: ClusterGuardianInput) => Promise<never>>;

export function guardianHandle(client: Client, clusterId: string): GuardianHandle {
  return client.workflow.getHandle(
    guardianWorkflowId(checked(clusterIdSchema, clusterId, 'cluster id')),
  );
}

/** The query `state`: desired, actual, last check, running child, history. */
export async function guardianState(client: Client, clusterId: string): Promise<GuardianState> {
  return guardianHandle(client, clusterId).query(guardianStateQuery);
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
  checked(setMembershipSchema, arg, 'setMembership');
  return guardianHandle(client, clusterId).executeUpdate(setMembershipUpdate, { args: [arg] });
}

export async function pauseGuardian(
  client: Client,
  clusterId: string,
  reason?: string,
): Promise<void> {
  await guardianHandle(client, clusterId).signal(
    pauseSignal,
    ...(reason === undefined ? [] : [reason]),
  );
}

export async function resumeGuardian(client: Client, clusterId: string): Promise<void> {
  await guardianHandle(client, clusterId).signal(resumeSignal);
}

/** Check now; a failed change is tried again. With `node`: rejoin that restarted node. */
export async function requestReconcile(
  client: Client,
  clusterId: string,
  arg: { node?: string; reason?: string } = {},
): Promise<void> {
  await guardianHandle(client, clusterId).signal(reconcileSignal, arg);
}

/** Ends the guardian (terminate): a running membership runbook goes on by itself. */
export async function stopGuardian(
  client: Client,
  clusterId: string,
  reason: string,
): Promise<void> {
  await guardianHandle(client, clusterId).terminate(reason);
}
