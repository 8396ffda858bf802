import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ApplicationFailure,
  ParentClosePolicy,
  setHandler,
  startChild,
} from '@temporalio/workflow';
import { dataWorkflowId } from '../src/contracts/data-runbooks.js';
import {
  type ScheduledBackupInput,
  type ScheduledBackupResult,
} from '../src/contracts/schedules.js';
import { clusterIdKey, runbookKey } from '../src/contracts/search-attributes.js';
import type { backupCluster } from './backup-cluster.js';
import { progressQuery } from '../src/contracts/messages.js';
import { described } from '../src/contracts/message-descriptions.js';
import { tagRunbook } from './lib/membership.js';
import { ProgressTracker } from './lib/progress-tracker.js';
import { causeMessage } from './lib/runbook.js';
import { runbookInput } from './lib/open.js';

/**
 * What a backup schedule starts. Temporal gives a scheduled run the schedule's workflow id with
 * the fire time appended, but `backupCluster` must run as `cg/<cluster>/data` so that it never
 * meets another data runbook of the cluster; so this starts it as a child under that id and
 * waits for it (the schedule's overlap policy SKIP then also covers a backup that parks).
 * When another data runbook holds the id, this backup is not taken and the run fails saying so.
 */
export async function scheduledBackup(
  rawInput: ScheduledBackupInput,
): Promise<ScheduledBackupResult> {
  const input = runbookInput('scheduledBackup', rawInput);
  const { clusterId } = input;
  const workflowId = dataWorkflowId(clusterId);
  const tracker = new ProgressTracker('scheduledBackup', clusterId, [
    { id: 'backup', title: `backupCluster as ${workflowId}` },
  ]);
  setHandler(progressQuery, () => tracker.snapshot(), described(progressQuery));
  tagRunbook('scheduledBackup', clusterId, input.master ? [input.master] : []);
  tracker.update('backup', { status: 'running', attempts: 1 });

  let child;
  try {
    child = await startChild<typeof backupCluster>('backupCluster', {
      workflowId,
      args: [rawInput],
      // The backup goes on when its schedule is deleted or this run is terminated.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: clusterIdKey, value: clusterId },
        { key: runbookKey, value: 'backupCluster' },
      ],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const reason =
      `the scheduled backup of cluster ${clusterId} was not taken: another data runbook is ` +
      `running as ${workflowId}. Look at it (query progress) and finish or abort it; the ` +
      'schedule fires again at its next time, or trigger it';
    tracker.update('backup', { status: 'failed', lastError: reason });
    tracker.finish('failed');
    throw ApplicationFailure.nonRetryable(reason, 'ClusterBusy');
  }
  try {
    const backup = await child.result();
    tracker.update('backup', { status: 'completed' });
    tracker.finish('completed');
    return {
      runbook: 'scheduledBackup',
      clusterId,
      backupWorkflowId: workflowId,
      backupRunId: child.firstExecutionRunId,
      backup,
    };
  } catch (err) {
    tracker.update('backup', { status: 'failed', lastError: causeMessage(err) });
    tracker.finish('failed');
    throw err;
  }
}
