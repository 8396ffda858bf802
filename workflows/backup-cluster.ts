import { ApplicationFailure, patched } from '@temporalio/workflow';
import {
  backupIdOf,
  planBackup,
  planBackupCopies,
  replicatedComponents,
  type ArchivePlan,
  type BackupClusterInput,
  type BackupClusterResult,
  type BackupCopy,
  type DataArchive,
  type PrunedArchive,
} from '../src/contracts/data-runbooks.js';
import type { PlannedStep } from '../src/contracts/membership-runbooks.js';
import { archiveEvents, archivePlannedSteps, archiveSteps, dataCalls } from './lib/data.js';
import { openDataRunbook, runSteps } from './lib/open.js';

function plannedSteps(
  plan: ArchivePlan,
  backupId: string,
  keep: number | undefined,
  maxAgeDays: number | undefined,
): PlannedStep[] {
  const retention = [
    ...(keep === undefined ? [] : [`keep the newest ${keep} backups`]),
    ...(maxAgeDays === undefined ? [] : [`delete backups older than ${maxAgeDays} days`]),
  ].join(', ');
  return plan.flatMap((p) => [
    ...archivePlannedSteps({ op: 'backup', backupId, plan: [p] }),
    ...(retention ? [{ id: `prune:${p.node}`, title: retention, node: p.node }] : []),
  ]);
}

/** The copies' steps: fetched by the member that keeps it, checked by sha256; retention there. */
function copySteps(copies: BackupCopy[], backupId: string, retention?: string): PlannedStep[] {
  return [
    ...copies.map(({ from, to }) => ({
      id: `copy:${to}`,
      title: `copy ${from}'s ${backupId}.zip here, checked by its sha256`,
      node: to,
    })),
    ...(retention
      ? [...new Set(copies.map((c) => c.to))].map((to) => ({
          id: `prune:${to}`,
          title: retention,
          node: to,
        }))
      : []),
  ];
}

/** Runs since this patch keep a second copy of the replicated data on another member. */
const copiesPatch = 'backup-copies';
/** Runs since this patch back up the application's bundle set when the master keeps one. */
const bundlesPatch = 'backup-bundles';

/**
 * Backs up the cluster (docs/design.md): the replicated middleware and the application's bundle
 * set once, on the master (their data is cluster-wide, and CockroachDB's BACKUP is
 * cluster-wide), the controller's folders on every node that has them; then one zip per node with a manifest of checksums, each verified
 * by reading it back; then retention. The dumps are taken one after the other while the
 * cluster serves: each middleware is consistent in itself, not at one instant with the others.
 */
export async function backupCluster(rawInput: BackupClusterInput): Promise<BackupClusterResult> {
  const { input, ctx, rb, clusterId, startedAt, master, members, manifestFor, summary } =
    await openDataRunbook('backupCluster', rawInput);
  // The workflow's clock: the same id on every node, on every retry and on replay.
  const backupId = backupIdOf(startedAt, input.label);

  let replicated = replicatedComponents.filter((c) => input.middleware?.includes(c));
  let controllerNodes = input.middleware?.includes('controller') ? members : [];
  let bundles = input.middleware?.includes('bundles') ?? false;
  if (!input.middleware) {
    const sources = await Promise.all(
      members.map((n) =>
        rb.step(
          `sources:${n}`,
          {
            title: 'what this node can back up',
            node: n,
            // A member that is down only costs the backup its controller data.
            canSkip: () =>
              n === master ? 'the master decides which middleware is backed up' : undefined,
          },
          () => dataCalls(ctx, n, 'dataSources').dataSources(),
        ),
      ),
    );
    const masterSources = sources.find((s) => s?.node === master);
    replicated = replicatedComponents.filter((c) => masterSources?.enabled.includes(c));
    controllerNodes = sources.flatMap((s) => (s?.controller ? [s.node] : []));
    // Runs from before the bundle set was a component read sources without it.
    bundles = patched(bundlesPatch) && (masterSources?.bundles ?? false);
  }
  const plan = planBackup(master, members, replicated, controllerNodes, bundles);
  const copies = patched(copiesPatch) ? planBackupCopies(members, plan) : [];
  const planned = plannedSteps(plan, backupId, input.keep, input.maxAgeDays);
  const steps = [
    ...planned,
    ...copySteps(copies, backupId, planned.find((s) => s.id.startsWith('prune:'))?.title),
  ];
  const order = (node: string) => plan.findIndex((p) => p.node === node);
  const archives: DataArchive[] = [];
  const copied: (DataArchive & { from: string })[] = [];
  const pruned: PrunedArchive[] = [];
  const result = (): BackupClusterResult => ({
    runbook: 'backupCluster',
    clusterId,
    backupId,
    ...summary,
    plan,
    steps,
    archives: [...archives].sort((a, b) => order(a.node) - order(b.node)),
    ...(copies.length ? { copies: copied } : {}),
    pruned: [...pruned].sort((a, b) => order(a.node) - order(b.node)),
    skipped: rb.skipped,
  });
  if (plan.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `backupCluster of cluster ${clusterId}: nothing to back up — the master ${master} enables ` +
        'no middleware, keeps no bundle set, and no member configures controller data folders. ' +
        'Nothing was changed',
      'InvalidInput',
    );
  }
  if (input.dryRun) return result();
  rb.tracker.addSteps(steps);
  rb.eventNodes = members;

  await runSteps(
    rb,
    {
      started: { backupId, members, plan },
      completed: () => ({
        backupId,
        archives: archiveEvents(archives),
        pruned: pruned.map((p) => `${p.node}:${p.backupId}`),
      }),
      failed: { backupId },
    },
    async () => {
      archives.push(
        ...(await archiveSteps(ctx, { op: 'backup', backupId, plan, manifest: manifestFor(plan) })),
      );
      rb.state = `backup ${backupId} is written and verified on ${plan.map((p) => p.node).join(', ')}`;
      await copySteps_(copies);

      const { keep, maxAgeDays } = input;
      if (keep !== undefined || maxAgeDays !== undefined) {
        // Only after every archive verified: the backup just taken is then the newest verified
        // one, and protecting it keeps the rule "never delete the newest verified backup".
        const holders = [...new Set([...plan.map((p) => p.node), ...copies.map((c) => c.to)])];
        await Promise.all(
          holders.map(async (node) => {
            const r = await rb.step(
              `prune:${node}`,
              { title: steps.find((s) => s.id === `prune:${node}`)?.title ?? 'retention', node },
              () =>
                dataCalls(ctx, node, 'pruneArchives').pruneArchives({
                  op: 'backup',
                  ...(keep === undefined ? {} : { keep }),
                  ...(maxAgeDays === undefined ? {} : { maxAgeDays, now: startedAt.toISOString() }),
                  protect: [backupId],
                }),
            );
            pruned.push(...(r?.deleted ?? []));
          }),
        );
      }
    },
  );
  return result();

  /** Each copy fetched by the member that keeps it, checked against the verified sha256. */
  async function copySteps_(todo: BackupCopy[]): Promise<void> {
    for (const { from, to } of todo) {
      const original = archives.find((a) => a.node === from);
      const copy = await rb.step(
        `copy:${to}`,
        { title: `copy ${from}'s ${backupId}.zip here, checked by its sha256`, node: to },
        () =>
          dataCalls(ctx, to, 'copyArchive').copyArchive({
            op: 'backup',
            backupId,
            from,
            sha256: original?.sha256 ?? '',
          }),
      );
      if (!copy) continue;
      const { file, bytes, sha256 } = copy;
      copied.push({ node: to, from, file, bytes, sha256, entries: original?.entries ?? 0 });
      rb.state = `backup ${backupId} is verified on ${plan.map((p) => p.node).join(', ')} and copied to ${to}`;
    }
  }
}
