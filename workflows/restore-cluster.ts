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
import { convergeBundles, convergePlannedSteps } from './lib/bundle-converge.js';
import { checkArchiveStep, loadSteps, planLoad } from './lib/data.js';
import { openDataRunbook } from './lib/open.js';
import { runQuiesced } from './lib/quiesce.js';

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
 * RESTORE), so no server is stopped; the controller's folders are swapped by rename; the bundle
 * set's jars go back into the store and its record into ZooKeeper, and then every member's
 * running framework is brought to it (installs, updates, uninstalls; the framework keeps
 * running). The application's webapps are stopped around the changes (docs/design.md
 * "Admission", quiesce).
 */
export async function restoreCluster(rawInput: RestoreClusterInput): Promise<RestoreClusterResult> {
  const { input, ctx, rb, clusterId, members, manifestFor, summary } = await openDataRunbook(
    'restoreCluster',
    rawInput,
  );
  const { backupId } = input;
  rb.eventNodes = members;

  // --- validation: read-only ---
  const checks = await Promise.all(
    members.map((n) => checkArchiveStep(ctx, n, 'backup', backupId)),
  );
  const { problems, manifest, copies } = evaluateBackup(clusterId, backupId, checks);
  // A node of the backup whose archive is gone restores from another member's copy of it.
  const from = (node: string) =>
    copies[node] !== undefined && patched('backup-copies') ? copies[node] : node;
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

  // Runs from before the bundle set was a component restore without it.
  const withBundles = patched('restore-bundles');
  const wanted =
    input.middleware ??
    (withBundles ? dataComponents : dataComponents.filter((c) => c !== 'bundles'));
  const plan: ArchivePlan = manifest.archives.flatMap(({ node, components }) => {
    const mine = components.filter((c) => wanted.includes(c));
    return mine.length ? [{ node: from(node), components: mine }] : [];
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
  // The node that puts the bundle set back; every member's framework is then brought to it.
  const bundlesFrom = withBundles
    ? plan.find((p) => p.components.includes('bundles'))?.node
    : undefined;
  if (bundlesFrom) steps.push(...convergePlannedSteps(members));
  const keptAs = load.aside?.backupId;
  const restored: RestoreClusterResult['restored'] = [];
  const result = (): RestoreClusterResult => ({
    runbook: 'restoreCluster',
    clusterId,
    backupId,
    ...summary,
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

  // The application's webapps are stopped around the change (docs/design.md "Admission").
  await runQuiesced(
    ctx,
    members,
    {
      started: { backupId, members, plan },
      completed: () => ({ backupId, plan }),
      failed: { backupId },
    },
    async () => {
      await loadSteps(ctx, load, restored);
      if (bundlesFrom) {
        // Each framework goes on running: bundles are installed, updated and uninstalled in it.
        // The jars are fetched from the node that put them back into its store, else a peer.
        const zk = { ...ctx, middleware: ['zookeeper'] };
        const sources = [bundlesFrom, ...members.filter((m) => m !== bundlesFrom)];
        await Promise.all(
          members.map((n) =>
            convergeBundles(
              zk,
              n,
              sources.filter((m) => m !== n),
              { removeOthers: true },
            ),
          ),
        );
        rb.state = `every component of ${backupId} is restored, and every member's framework runs its bundle set${keptAs ? `. The data from before is kept as backup ${keptAs}` : ''}`;
      }
    },
  );
  return result();
}
