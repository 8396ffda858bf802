import {
  ActivityFailure,
  ApplicationFailure,
  log,
  patched,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { ClusterRecordActivities } from '../../activities/cluster-record-activities.js';
import { nonRetryableErrorTypes } from '../../src/contracts/errors.js';

/**
 * Runbooks read and keep the orchestrator's cluster record (docs/design.md, "The cluster
 * record"). Runs started before it neither read nor write it, so their histories replay.
 */
export const clusterRecordPatch = 'cluster-record';

function records(): ClusterRecordActivities {
  return proxyActivities<ClusterRecordActivities>({
    // The orchestrator's own queue: the record lives beside the workflows, not on a node.
    taskQueue: workflowInfo().taskQueue,
    summary: 'cluster record',
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumAttempts: 5, nonRetryableErrorTypes },
  });
}

/**
 * The master of `clusterId` as last recorded, for a runbook started with the cluster's name
 * only. Fails the runbook with `UnknownCluster` (how to bootstrap or adopt it) when there is none.
 */
export async function recordedMaster(clusterId: string, runbook: string): Promise<string> {
  if (!patched(clusterRecordPatch)) {
    throw ApplicationFailure.nonRetryable(
      `${runbook} of cluster ${clusterId}: master is required by this version. Nothing was changed`,
      'InvalidInput',
    );
  }
  try {
    return (await records().lookupCluster({ clusterId })).master;
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === 'UnknownCluster') {
      throw ApplicationFailure.nonRetryable(`${runbook}: ${cause.message}`, 'UnknownCluster');
    }
    throw err;
  }
}

/**
 * Records the members of `clusterId` (master first) as this runbook read or left them. Never
 * fails the runbook: a record not written is written by the next runbook that reads them.
 */
export async function recordCluster(clusterId: string, nodes: string[]): Promise<void> {
  if (nodes.length === 0 || !patched(clusterRecordPatch)) return;
  const info = workflowInfo();
  try {
    await records().recordCluster({
      clusterId,
      nodes,
      recordedBy: `${info.workflowId}/${info.runId}`,
      recordedAt: new Date().toISOString(),
    });
  } catch (err) {
    log.warn('cluster record not written', {
      clusterId,
      error: err instanceof Error ? err.message : String(err),
    });
  }
}
