import { ApplicationFailure } from '@temporalio/workflow';
import {
  backupIdOf,
  planBackup,
  replicatedComponents,
  type ExportDataInput,
  type ExportDataResult,
} from '../src/contracts/data-runbooks.js';
import { archiveEvents, archivePlannedSteps, archiveSteps, dataCalls } from './lib/data.js';
import { openDataRunbook, runSteps } from './lib/open.js';

/**
 * Exports the cluster's data for another cluster (docs/design.md, exportData): the replicated
 * middleware once, on the master, into `export-data-archive/<exportId>.zip` with the same
 * manifest of checksums as a backup, verified by reading it back. The archive is then fetched
 * from the agent (`GET /v1/cluster/data/archives/export/<exportId>.zip`) and uploaded to an
 * agent of the other cluster for importData.
 */
export async function exportData(rawInput: ExportDataInput): Promise<ExportDataResult> {
  const { input, ctx, rb, clusterId, startedAt, master, members, manifestFor, summary } =
    await openDataRunbook('exportData', rawInput);
  const exportId = backupIdOf(startedAt, input.label);
  if (input.middleware?.includes('bundles')) {
    throw ApplicationFailure.nonRetryable(
      `exportData of cluster ${clusterId}: the bundle set is not exported — it belongs to this ` +
        'cluster (its desired versions and their jars) and goes with its backups; on the other cluster, ' +
        'upload the bundles and roll them out. Nothing was changed: export without bundles',
      'InvalidInput',
    );
  }

  let replicated = replicatedComponents.filter((c) => input.middleware?.includes(c));
  if (!input.middleware) {
    const sources = await rb.step(
      `sources:${master}`,
      { title: 'what the master can export', node: master },
      () => dataCalls(ctx, master, 'dataSources').dataSources(),
    );
    replicated = replicatedComponents.filter((c) => sources?.enabled.includes(c));
  }
  const controller = input.middleware?.includes('controller') ? [master] : [];
  const plan = planBackup(master, members, replicated, controller);
  const steps = archivePlannedSteps({ op: 'export', backupId: exportId, plan });
  const result = (archives: ExportDataResult['archives']): ExportDataResult => ({
    runbook: 'exportData',
    clusterId,
    exportId,
    ...summary,
    plan,
    steps,
    archives,
  });
  if (plan.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `exportData of cluster ${clusterId}: nothing to export — the master ${master} enables no middleware. Nothing was changed`,
      'InvalidInput',
    );
  }
  if (input.dryRun) return result([]);
  rb.tracker.addSteps(steps);
  rb.eventNodes = members;
  const archives = await runSteps(
    rb,
    {
      started: { exportId, plan },
      completed: (written) => ({ exportId, archives: archiveEvents(written) }),
      failed: { exportId },
    },
    async () => {
      const written = await archiveSteps(ctx, {
        op: 'export',
        backupId: exportId,
        plan,
        manifest: manifestFor(plan),
      });
      rb.state = `export ${exportId} is written and verified on ${master}`;
      return written;
    },
  );
  return result(archives);
}
