import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { orchestratorTaskQueue } from '../contracts/addresses.js';
import {
  bundleWorkflowId,
  rolloutBundleInputSchema,
  symbolicNameSchema,
  type BundlesView,
  type RolloutBundleInput,
  type RolloutBundleResult,
} from '../contracts/bundles.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { clusterIdKey, nodesKey, runbookKey } from '../contracts/search-attributes.js';
import { describeZodError } from '../contracts/validation.js';

export type RolloutBundleHandle = WorkflowHandleWithFirstExecutionRunId<
  (input: RolloutBundleInput) => Promise<RolloutBundleResult>
>;

/**
 * Starts `rolloutBundle` on its workflow id `cg/<clusterId>/bundle/<symbolicName>` (the
 * symbolic name is what `POST /v1/bundles` answered), with the search attributes set at start.
 * A dry run gets an id of its own, so it never collides with a running rollout.
 */
export async function startRolloutBundle(
  client: Client,
  input: RolloutBundleInput,
  options: { symbolicName: string; taskQueue?: string; workflowId?: string },
): Promise<RolloutBundleHandle> {
  const parsed = rolloutBundleInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidInput',
      `invalid rolloutBundle input: ${describeZodError(parsed.error)}`,
    );
  }
  const name = symbolicNameSchema.safeParse(options.symbolicName);
  if (!name.success) {
    throw new ClusterGuardError('InvalidInput', `symbolicName: ${describeZodError(name.error)}`);
  }
  const params = parsed.data;
  const id = bundleWorkflowId(params.clusterId, name.data);
  return client.workflow.start('rolloutBundle', {
    args: [input],
    taskQueue: options.taskQueue ?? orchestratorTaskQueue,
    workflowId:
      options.workflowId ?? (params.dryRun ? `${id}/dry-run/${Date.now().toString(36)}` : id),
    typedSearchAttributes: [
      { key: clusterIdKey, value: params.clusterId },
      { key: runbookKey, value: 'rolloutBundle' },
      ...(params.nodes ? [{ key: nodesKey, value: params.nodes }] : []),
    ],
  });
}

/** The `bundles` query of a running or finished rollout. */
export async function queryRollout(
  client: Client,
  clusterId: string,
  symbolicName: string,
): Promise<BundlesView> {
  return client.workflow
    .getHandle(bundleWorkflowId(clusterId, symbolicName))
    .query<BundlesView>('bundles');
}
