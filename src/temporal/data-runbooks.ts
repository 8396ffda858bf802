import { type Client, type WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import {
  backupClusterInputSchema,
  dataWorkflowId,
  exportDataInputSchema,
  importDataInputSchema,
  restoreClusterInputSchema,
  verifyBackupInputSchema,
} from '../contracts/data-runbooks.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { clusterIdKey, nodesKey, runbookKey } from '../contracts/search-attributes.js';
import { describeZodError } from '../contracts/validation.js';
import { orchestratorTaskQueue } from '../contracts/addresses.js';
import { refuseWhileRunning } from './busy.js';

export const dataRunbooks = {
  backupCluster: backupClusterInputSchema,
  verifyBackup: verifyBackupInputSchema,
  restoreCluster: restoreClusterInputSchema,
  exportData: exportDataInputSchema,
  importData: importDataInputSchema,
} as const;
export type DataRunbookName = keyof typeof dataRunbooks;

/**
 * Starts a data runbook under the cluster's one data workflow id (`cg/<cluster>/data`), so
 * that Temporal itself refuses a second one while the first runs; the refusal (`ClusterBusy`)
 * names the running runbook. The input is checked before anything is sent.
 */
export async function startDataRunbook<N extends DataRunbookName>(
  client: Client,
  runbook: N,
  input: z.input<(typeof dataRunbooks)[N]>,
  options: { taskQueue?: string } = {},
): Promise<WorkflowHandle> {
  const parsed = dataRunbooks[runbook].safeParse(input);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidInput',
      `invalid ${runbook} input: ${describeZodError(parsed.error)}`,
    );
  }
  const { clusterId, master } = parsed.data as { clusterId: string; master: string };
  const workflowId = dataWorkflowId(clusterId);
  try {
    return await client.workflow.start(runbook, {
      args: [input],
      taskQueue: options.taskQueue ?? orchestratorTaskQueue,
      workflowId,
      typedSearchAttributes: [
        { key: clusterIdKey, value: clusterId },
        { key: runbookKey, value: runbook },
        { key: nodesKey, value: [master] },
      ],
    });
  } catch (err) {
    return refuseWhileRunning(client, err, {
      runbook,
      clusterId: clusterId,
      workflowId,
      kind: 'data',
      type: 'ClusterBusy',
    });
  }
}
