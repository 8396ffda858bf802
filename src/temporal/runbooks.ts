import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import {
  bootstrapClusterInputSchema,
  decommissionNodesInputSchema,
  joinNodeInputSchema,
  membershipWorkflowId,
  rejoinNodeInputSchema,
  type MembershipRunbookResult,
} from '../contracts/membership-runbooks.js';
import type { z } from 'zod';
import { ClusterGuardError } from '../contracts/errors.js';
import {
  pingClusterInputSchema,
  type PingClusterInput,
  type PingClusterResult,
} from '../contracts/ping.js';
import { clusterIdKey, nodesKey, runbookKey } from '../contracts/search-attributes.js';
import { describeZodError } from '../contracts/validation.js';
import { orchestratorTaskQueue } from '../contracts/addresses.js';

export interface StartOptions {
  taskQueue?: string;
  workflowId?: string;
}

/** Checks the input before anything is sent, so a typo is reported at the prompt. */
function validated<S extends z.ZodType>(schema: S, input: unknown, runbook: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidInput',
      `invalid ${runbook} input: ${describeZodError(parsed.error)}`,
    );
  }
  return parsed.data;
}

export async function startPingCluster(
  client: Client,
  input: PingClusterInput,
  options: StartOptions = {},
): Promise<WorkflowHandle<(input: PingClusterInput) => Promise<PingClusterResult>>> {
  const params = validated(pingClusterInputSchema, input, 'pingCluster');
  return client.workflow.start('pingCluster', {
    args: [input],
    taskQueue: options.taskQueue ?? orchestratorTaskQueue,
    workflowId: options.workflowId ?? `cg/${params.clusterId}/ping/${randomUUID().slice(0, 8)}`,
    typedSearchAttributes: [
      { key: clusterIdKey, value: params.clusterId },
      { key: runbookKey, value: 'pingCluster' },
      { key: nodesKey, value: params.nodes },
    ],
  });
}

/** The Web UI page of one workflow execution. */
export function workflowUiUrl(
  uiBase: string,
  namespace: string,
  workflowId: string,
  runId?: string,
): string {
  const base = `${uiBase}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}

export const membershipRunbooks = {
  bootstrapCluster: bootstrapClusterInputSchema,
  joinNode: joinNodeInputSchema,
  rejoinNode: rejoinNodeInputSchema,
  decommissionNodes: decommissionNodesInputSchema,
} as const;
export type MembershipRunbookName = keyof typeof membershipRunbooks;

/**
 * Starts a membership runbook under the cluster's one membership workflow id, so that Temporal
 * itself refuses a second one while the first runs; the refusal names the running runbook.
 */
export async function startMembershipRunbook<N extends MembershipRunbookName>(
  client: Client,
  runbook: N,
  input: z.input<(typeof membershipRunbooks)[N]>,
  options: Omit<StartOptions, 'workflowId'> = {},
): Promise<WorkflowHandle<(input: unknown) => Promise<MembershipRunbookResult>>> {
  const params = validated(membershipRunbooks[runbook], input, runbook) as {
    clusterId: string;
    nodes?: string[];
    node?: string;
  };
  const workflowId = membershipWorkflowId(params.clusterId);
  try {
    return await client.workflow.start(runbook, {
      args: [input],
      taskQueue: options.taskQueue ?? orchestratorTaskQueue,
      workflowId,
      typedSearchAttributes: [
        { key: clusterIdKey, value: params.clusterId },
        { key: runbookKey, value: runbook },
        { key: nodesKey, value: params.nodes ?? (params.node ? [params.node] : []) },
      ],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    let running = 'a membership runbook';
    try {
      const d = await client.workflow.getHandle(workflowId).describe();
      running = `${d.type} (run ${d.runId}, started ${d.startTime.toISOString()})`;
    } catch {
      // the refusal stands without the details
    }
    throw new ClusterGuardError(
      'InvalidInput',
      `cannot start ${runbook} on cluster ${params.clusterId}: ${running} is still running as ` +
        `${workflowId}, and a cluster runs one membership runbook at a time. Wait for it, or ` +
        'look at its progress (query `progress`) and finish or abort it first.',
      { cause: err },
    );
  }
}
