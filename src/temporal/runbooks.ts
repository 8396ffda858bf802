import { randomUUID } from 'node:crypto';
import { type Client, type WorkflowHandle } from '@temporalio/client';
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
import type { Progress } from '../contracts/progress.js';
import {
  pingClusterInputSchema,
  type PingClusterInput,
  type PingClusterResult,
} from '../contracts/ping.js';
import { clusterIdKey, nodesKey, runbookKey } from '../contracts/search-attributes.js';
import { describeZodError } from '../contracts/validation.js';
import { orchestratorTaskQueue } from '../contracts/addresses.js';
import { refuseWhileRunning } from './busy.js';

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
    add?: string[];
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
        {
          key: nodesKey,
          value: [
            ...(params.nodes ?? []),
            ...(params.node ? [params.node] : []),
            ...(params.add ?? []),
          ],
        },
      ],
    });
  } catch (err) {
    return refuseWhileRunning(client, err, {
      runbook,
      clusterId: params.clusterId,
      workflowId,
      kind: 'membership',
      type: 'InvalidInput',
    });
  }
}

/** Steps whose time is spent inside the middleware (servers stopping, starting, joining). */
const middlewareStep =
  /^(stop|create|join|rejoin|restart|health|decommission|unregister):[^:]+(:|$)/;

function spanMs(p: Progress): number {
  const starts = p.steps.flatMap((s) => (s.startedAt ? [Date.parse(s.startedAt)] : []));
  const ends = p.steps.flatMap((s) => (s.finishedAt ? [Date.parse(s.finishedAt)] : []));
  return starts.length && ends.length ? Math.max(...ends) - Math.min(...starts) : 0;
}

/** Intervals of the middleware steps (a child join's own step is counted from its steps). */
function middlewareIntervals(p: Progress): [number, number][] {
  return p.steps.flatMap((s): [number, number][] =>
    s.startedAt && s.finishedAt && middlewareStep.test(s.id) && !/^join:[^:]+$/.test(s.id)
      ? [[Date.parse(s.startedAt), Date.parse(s.finishedAt)]]
      : [],
  );
}

/** Total length of the union of intervals: time during which any of them was under way. */
function unionMs(intervals: [number, number][]): number {
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of [...intervals].sort((x, y) => x[0] - y[0])) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

/**
 * Where a membership runbook's time went: the whole span, and the time during which some
 * middleware operation (stop, create, join, restart …) was under way on some node, its own or
 * its child joins'; the rest is orchestration: reading and writing cluster.json, packing and
 * downloading archives, scheduling.
 */
export async function membershipTiming(
  client: Client,
  workflowId: string,
): Promise<{ totalMs: number; middlewareMs: number }> {
  const parent = await client.workflow.getHandle(workflowId).query<Progress>('progress');
  const children = await Promise.all(
    parent.steps
      .filter((s) => /^join:[^:]+$/.test(s.id) && s.node)
      .map((s) =>
        client.workflow
          .getHandle(`${workflowId}/join/${s.node}`)
          .query<Progress>('progress')
          .then(middlewareIntervals, () => []),
      ),
  );
  const intervals = [...middlewareIntervals(parent), ...children.flat()];
  return { totalMs: spanMs(parent), middlewareMs: unionMs(intervals) };
}
