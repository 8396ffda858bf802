import { ApplicationFailure } from '@temporalio/workflow';
import {
  dataComponents,
  evaluateBackup,
  isReplicated,
  membersDifference,
  restoreClusterInputSchema,
  type ArchivePlan,
  type DataArchive,
  type RestoreClusterInput,
  type RestoreClusterResult,
  type ReplicatedComponent,
} from '../src/contracts/data-runbooks.js';
import type { PlannedStep } from '../src/contracts/membership-runbooks.js';
import { parseInput } from '../src/contracts/validation.js';
import {
  assertDataWorkflowId,
  checkArchiveStep,
  dataCalls,
  readMembers,
  type DataContext,
} from './lib/data.js';
import {
  checkHealthyStep,
  nodeCalls,
  tagRunbook,
  type MembershipContext,
} from './lib/membership.js';
import { startRunbook } from './lib/runbook.js';

function plannedSteps(
  plan: ArchivePlan,
  members: string[],
  backupId: string,
  health: boolean,
): PlannedStep[] {
  return [
    ...plan.map(({ node, components }) => ({
      id: `unpack:${node}`,
      title: `unpack ${components.join(', ')} of ${backupId}.zip into restore-data`,
      node,
    })),
    ...plan.flatMap(({ node, components }) =>
      components.map((c) => ({
        id: `restore:${node}:${c}`,
        title: `restore ${c} from restore-data/${c}`,
        node,
        wipes: [
          `${c}: ${isReplicated(c) ? 'the data the backup holds is replaced' : 'the configured folders are replaced (the old ones kept aside)'}`,
        ],
      })),
    ),
    ...(health
      ? members.map((n) => ({
          id: `health:${n}`,
          title: 'check every middleware is healthy',
          node: n,
        }))
      : []),
  ];
}

/**
 * Restores a backup taken by backupCluster. Everything is checked before anything changes:
 * every node of the backup answers with its archive, each archive's whole-file sha256 and every
 * file match its manifest, all come from one run of this cluster, and the backup's members are
 * the cluster's members now; otherwise the runbook fails naming what differs, and nothing was
 * touched. Then each node unpacks its archive into restore-data/ and restores, the replicated
 * middleware on the node that backed it up (the master then), the controller on each node; a
 * failing step parks. ZooKeeper, Kafka and CockroachDB restore through their running cluster
 * (a znode tree replaced over a client session, topics deleted and produced again, a SQL
 * RESTORE), so no server is stopped; the controller's folders are swapped by rename while the
 * appliance, which clusterguard does not supervise, runs.
 */
export async function restoreCluster(rawInput: RestoreClusterInput): Promise<RestoreClusterResult> {
  const input = parseInput(restoreClusterInputSchema, rawInput, 'restoreCluster');
  const { clusterId, backupId } = input;
  assertDataWorkflowId('restoreCluster', clusterId, input.dryRun);
  const ctx: DataContext = startRunbook('restoreCluster', clusterId, input);
  const { rb } = ctx;
  const { master, members } = await readMembers(ctx, input.master);
  tagRunbook('restoreCluster', clusterId, members);
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
  const restoredReplicated: ReplicatedComponent[] = plan.flatMap((p) =>
    p.components.filter(isReplicated),
  );
  const steps = plannedSteps(plan, members, backupId, restoredReplicated.length > 0);
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
    skipped: rb.skipped,
  });
  if (input.dryRun) return result();
  rb.tracker.addSteps(steps);

  await rb.emit('runbook.started', { backupId, members, plan });
  try {
    await Promise.all(
      plan.map(({ node, components }) => {
        const archive = archives.find((a) => a.node === node);
        return rb.step(
          `unpack:${node}`,
          { title: `unpack ${components.join(', ')} of ${backupId}.zip into restore-data`, node },
          () =>
            dataCalls(ctx, node, 'unpackArchive').unpackArchive({
              op: 'restore',
              from: 'backup',
              backupId,
              components,
              // The archive that was verified, not one put in its place since.
              ...(archive ? { sha256: archive.sha256 } : {}),
            }),
        );
      }),
    );
    rb.state = `backup ${backupId} is unpacked into restore-data on ${plan.map((p) => p.node).join(', ')}; no data was restored yet`;

    const done: string[] = [];
    await Promise.all(
      plan.map(async ({ node, components }) => {
        for (const component of components) {
          const r = await rb.step(
            `restore:${node}:${component}`,
            { title: `restore ${component} from restore-data/${component}`, node },
            () =>
              nodeCalls(ctx, node, `restoreData ${component}`, true).middlewareOperation({
                component,
                operation: 'restoreData',
              }),
          );
          const files = r?.data?.files ?? [];
          restored.push({
            node,
            component,
            files: files.length,
            bytes: files.reduce((n, f) => n + f.bytes, 0),
          });
          done.push(`${component} on ${node}`);
          rb.state = `restored from ${backupId}: ${done.join(', ')}; the rest not yet`;
        }
      }),
    );
    rb.state = `every component of ${backupId} is restored`;

    if (restoredReplicated.length) {
      const health: MembershipContext = { ...ctx, middleware: restoredReplicated };
      await Promise.all(members.map((n) => checkHealthyStep(health, `health:${n}`, n)));
    }
    rb.tracker.finish('completed');
    await rb.emit('runbook.completed', { backupId, plan });
    return result();
  } catch (err) {
    rb.tracker.finish('failed');
    await rb.emit('runbook.failed', { backupId, error: (err as Error).message, state: rb.state });
    throw err;
  }
}
