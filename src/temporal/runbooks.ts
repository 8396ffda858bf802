import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
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
