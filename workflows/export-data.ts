import { ApplicationFailure } from '@temporalio/workflow';
import {
  backupIdOf,
  planBackup,
  replicatedComponents,
  type ExportDataInput,
  type ExportDataResult,
} from '../src/contracts/data-runbooks.js';
import {
  archivePlannedSteps,
  archiveSteps,
  dataCalls,
  manifestOf,
  readMembers,
} from './lib/data.js';
import { tagRunbook } from './lib/membership.js';
import { openRunbook } from './lib/open.js';

/**
 * Exports the cluster's data for another cluster (docs/design.md, exportData): the replicated
 * middleware once, on the master, into `export-data-archive/<exportId>.zip` with the same
 * manifest of checksums as a backup, verified by reading it back. The archive is then fetched
 * from the agent (`GET /v1/cluster/data/archives/export/<exportId>.zip`) and uploaded to an
 * agent of the other cluster for importData.
 */
export async function exportData(rawInput: ExportDataInput): Promise<ExportDataResult> {
  const { input, ...ctx } = await openRunbook('exportData', rawInput);
  const { clusterId } = input;
  const { rb } = ctx;
  const startedAt = new Date();
  const exportId = backupIdOf(startedAt, input.label);
  const { master, members, file } = await readMembers(ctx, input.master);
  tagRunbook('exportData', clusterId, members);

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
    dryRun: input.dryRun,
    master,
    members,
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
  const manifest = manifestOf(clusterId, members, plan, startedAt, file.cluster.clusterUuid);

  await rb.emit('runbook.started', { exportId, plan });
  try {
    const archives = await archiveSteps(ctx, { op: 'export', backupId: exportId, plan, manifest });
    rb.state = `export ${exportId} is written and verified on ${master}`;
    rb.tracker.finish('completed');
    await rb.emit('runbook.completed', {
      exportId,
      archives: archives.map((a) => ({ node: a.node, bytes: a.bytes, sha256: a.sha256 })),
    });
    return result(archives);
  } catch (err) {
    rb.tracker.finish('failed');
    await rb.emit('runbook.failed', { exportId, error: (err as Error).message, state: rb.state });
    throw err;
  }
}
