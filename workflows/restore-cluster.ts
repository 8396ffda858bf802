import { ApplicationFailure, patched } from '@temporalio/workflow';
import {
  dataComponents,
  evaluateBackup,
  membersDifference,
  type ArchivePlan,
  type DataArchive,
  type RestoreClusterInput,
  type RestoreClusterResult,
} from '../src/contracts/data-runbooks.js';
import { checkArchiveStep, loadSteps, planLoad } from './lib/data.js';
import { openDataRunbook, runSteps } from './lib/open.js';
import { Webapps } from './lib/quiesce.js';

/**
 * Restores a backup taken by backupCluster. Everything is checked before anything changes:
 * every node of the backup answers with its archive, each archive's whole-file sha256 and every
 * file match its manifest, all come from one run of this cluster, and the backup's members are
 * the cluster's members now; otherwise the runbook fails naming what differs, and nothing was
 * touched. Then each node unpacks its archive into restore-data/; the data the restore will
 * replace is backed up as `<timestamp>-before-restore` and verified (`keepCurrentData`, the
 * default), so a restore that parks halfway can go back; then each node restores, the replicated
 * middleware on the node that backed it up (the master then), the controller on each node; a
 * failing step parks. ZooKeeper, Kafka and CockroachDB restore through their running cluster
 * (a znode tree replaced over a client session, topics deleted and produced again, a SQL
 * RESTORE), so no server is stopped; the controller's folders are swapped by rename. The
 * application's webapps are stopped around the changes (docs/design.md "Admission", quiesce).
 */
export async function restoreCluster(rawInput: RestoreClusterInput): Promise<RestoreClusterResult> {
  const { input, ctx, rb, clusterId, master, members, manifestFor } = await openDataRunbook(
    'restoreCluster',
    rawInput,
  );
  const { backupId } = input;
  rb.eventNodes = members;

  // --- validation: read-only ---
  const checks = await Promise.all(
    members.map((n) => checkArchiveStep(ctx, n, 'backup', backupId)),
  );
  const { problems, manifest } = evaluateBackup(clusterId, backupId, checks);
  const unsafe = problems.length > 0 && checks.some((c) => c.problem);
  if (manifest) {
    const differs = membersDifference(manifest.members, members);
    if (differs) problems.push(differs);
    const held = new Set(manifest.archives.flatMap((a) => a.components));
    const absent = (input.middleware ?? []).filter((c) => !held.has(c));
    if (absent.length) {
      problems.push(
        `backup ${backupId} holds no ${absent.join(', ')} data (it holds ${[...held].join(', ')})`,
      );
    }
  }
  if (problems.length || !manifest) {
    rb.tracker.finish('failed');
    throw ApplicationFailure.nonRetryable(
      `restoreCluster of cluster ${clusterId} refused backup ${backupId}; nothing was changed: ${problems.join('; ')}`,
      unsafe ? 'UnsafeArchive' : 'InvalidInput',
    );
  }

  const wanted = input.middleware ?? dataComponents;
  const plan: ArchivePlan = manifest.archives.flatMap(({ node, components }) => {
    const mine = components.filter((c) => wanted.includes(c));
    return mine.length ? [{ node, components: mine }] : [];
  });
  const archives: DataArchive[] = checks.flatMap((c) =>
    c.archive && plan.some((p) => p.node === c.node)
      ? [
          {
            node: c.archive.node,
            file: c.archive.file,
            bytes: c.archive.bytes,
            sha256: c.archive.sha256,
            entries: c.archive.entries,
          },
        ]
      : [],
  );
  const { load, steps } = planLoad(
    {
      op: 'restore',
      archiveId: backupId,
      from: 'backup',
      plan,
      sha256: Object.fromEntries(archives.map((a) => [a.node, a.sha256])),
      members,
    },
    // Runs recorded before restores kept the current data aside restore without it.
    input.keepCurrentData && patched('restore-keeps-data-aside'),
    manifestFor,
  );
  const keptAs = load.aside?.backupId;
  const restored: RestoreClusterResult['restored'] = [];
  const result = (): RestoreClusterResult => ({
    runbook: 'restoreCluster',
    clusterId,
    backupId,
    dryRun: input.dryRun,
    master,
    members,
    plan,
    steps,
    archives,
    restored: plan.flatMap(({ node, components }) =>
      components.flatMap((c) => restored.filter((r) => r.node === node && r.component === c)),
    ),
    ...(keptAs ? { keptAs } : {}),
    skipped: rb.skipped,
  });
  if (input.dryRun) return result();
  rb.tracker.addSteps(steps);

  await runSteps(
    rb,
    {
      started: { backupId, members, plan },
      completed: () => ({ backupId, plan }),
      failed: { backupId },
    },
    () => loadSteps(ctx, load, restored),
    new Webapps(ctx, members),
  );
  return result();
}
