import { ApplicationFailure } from '@temporalio/workflow';
import {
  backupIdOf,
  planBackup,
  replicatedComponents,
  type ArchivePlan,
  type BackupClusterInput,
  type BackupClusterResult,
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

/**
 * Backs up the cluster (docs/design.md): the replicated middleware once, on the master (its
 * data is cluster-wide, and CockroachDB's BACKUP is cluster-wide), the controller's folders on
 * every node that has them; then one zip per node with a manifest of checksums, each verified
 * by reading it back; then retention. The dumps are taken one after the other while the
 * cluster serves: each middleware is consistent in itself, not at one instant with the others.
 */
export async function backupCluster(rawInput: BackupClusterInput): Promise<BackupClusterResult> {
  const { input, ctx, rb, clusterId, startedAt, master, members, manifestFor } =
    await openDataRunbook('backupCluster', rawInput);
  // The workflow's clock: the same id on every node, on every retry and on replay.
  const backupId = backupIdOf(startedAt, input.label);

  let replicated = replicatedComponents.filter((c) => input.middleware?.includes(c));
  let controllerNodes = input.middleware?.includes('controller') ? members : [];
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
  }
  const plan = planBackup(master, members, replicated, controllerNodes);
  const steps = plannedSteps(plan, backupId, input.keep, input.maxAgeDays);
  const order = (node: string) => plan.findIndex((p) => p.node === node);
  const archives: DataArchive[] = [];
  const pruned: PrunedArchive[] = [];
  const result = (): BackupClusterResult => ({
    runbook: 'backupCluster',
    clusterId,
    backupId,
    dryRun: input.dryRun,
    master,
    members,
    plan,
    steps,
    archives: [...archives].sort((a, b) => order(a.node) - order(b.node)),
    pruned: [...pruned].sort((a, b) => order(a.node) - order(b.node)),
    skipped: rb.skipped,
  });
  if (plan.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `backupCluster of cluster ${clusterId}: nothing to back up — the master ${master} enables ` +
        'no middleware and no member configures controller data folders. Nothing was changed',
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

      const { keep, maxAgeDays } = input;
      if (keep !== undefined || maxAgeDays !== undefined) {
        // Only after every archive verified: the backup just taken is then the newest verified
        // one, and protecting it keeps the rule "never delete the newest verified backup".
        await Promise.all(
          plan.map(async ({ node }) => {
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
}
