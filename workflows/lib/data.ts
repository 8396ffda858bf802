import {
  ActivityFailure,
  ApplicationFailure,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { DataActivities } from '../../activities/data-activities.js';
import { nodeTaskQueue } from '../../src/contracts/addresses.js';
import type { ClusterFile } from '../../src/contracts/cluster-file.js';
import {
  backupIdOf,
  dataWorkflowId,
  isReplicated,
  type ArchiveCheck,
  type LoadedComponent,
  type ArchiveKind,
  type ArchivePlan,
  type DataArchive,
  type ManifestCommon,
} from '../../src/contracts/data-runbooks.js';
import { nonRetryableErrorTypes } from '../../src/contracts/errors.js';
import type { PlannedStep } from '../../src/contracts/membership-runbooks.js';
import { checkHealthyStep, nodeCalls, readState, type MembershipContext } from './membership.js';
import { recordCluster, recordedMaster } from './cluster-record.js';
import type { Runbook } from './runbook.js';

/** What every data runbook's steps need. */
export interface DataContext {
  rb: Runbook;
  attempts: number;
  agentTimeoutSeconds: number;
}

/**
 * The data activities of one node. Archiving, hashing and extracting are long but heartbeat
 * every 2 s, so an agent that dies mid-step is noticed within 20 s and the step is retried.
 */
export function dataCalls(ctx: DataContext, node: string, summary: string): DataActivities {
  return proxyActivities<DataActivities>({
    taskQueue: nodeTaskQueue(node),
    summary: `${summary} on ${node}`,
    startToCloseTimeout: '6h',
    heartbeatTimeout: '20s',
    // Not a retry budget: how soon a silent node shows as unreachable in `progress`.
    scheduleToStartTimeout: `${ctx.rb.patience() ?? ctx.agentTimeoutSeconds}s`,
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: ctx.attempts,
      nonRetryableErrorTypes,
    },
  });
}

/**
 * A data runbook started from outside must run as `cg/<cluster>/data`, so that Temporal
 * refuses a second one while it runs (a restore must never meet a backup's retention, say).
 * A dry run changes nothing and may run under any id.
 */
export function assertDataWorkflowId(name: string, clusterId: string, dryRun: boolean): void {
  const info = workflowInfo();
  const expected = dataWorkflowId(clusterId);
  if (dryRun || info.workflowId === expected) return;
  throw ApplicationFailure.nonRetryable(
    `${name} of cluster ${clusterId} runs as workflow id ${info.workflowId}, but data runbooks ` +
      `must run as ${expected} so that a cluster never runs two at once. Nothing was changed: ` +
      `start it again with --workflow-id ${expected}`,
    'InvalidInput',
  );
}

/**
 * The master and members from `given`'s cluster.json; when `given` is a member but not the
 * master, from the master's own file, which must name itself master. Without `given`, from the
 * master the cluster record names (docs/design.md, "The cluster record"); what is read is
 * recorded, so naming a master once adopts a cluster.
 */
export async function readMembers(
  ctx: DataContext,
  given: string | undefined,
): Promise<{ master: string; members: string[]; file: ClusterFile }> {
  const node = given ?? (await recordedMaster(ctx.rb.clusterId, ctx.rb.name));
  const found = await readMembersOf(ctx, node);
  await recordCluster(ctx.rb.clusterId, found.members);
  return found;
}

async function readMembersOf(
  ctx: DataContext,
  node: string,
): Promise<{ master: string; members: string[]; file: ClusterFile }> {
  const first = await readState(ctx, node, 'read cluster.json: who the members are');
  const [named = ''] = first.cluster.nodes;
  if (!first.cluster.nodes.includes(node)) {
    throw ApplicationFailure.nonRetryable(
      `${node} is not a member of the cluster its cluster.json describes ([${first.cluster.nodes.join(', ')}]): ` +
        'it is standalone or was decommissioned. Nothing was changed: name the master of the cluster',
      'InvalidInput',
    );
  }
  if (named === node) return { master: node, members: first.cluster.nodes, file: first };
  const file = await readState(ctx, named, "read the master's cluster.json");
  if (file.cluster.nodes[0] !== named) {
    throw ApplicationFailure.nonRetryable(
      `${node} names ${named} as master, but ${named}'s cluster.json names ${file.cluster.nodes[0] ?? 'none'}: ` +
        'the members disagree. Nothing was changed: repair the membership first',
      'InvalidInput',
    );
  }
  return { master: named, members: file.cluster.nodes, file };
}

/** An activity's refusal (a bad or missing archive) as its message; anything else rethrown. */
export function refusalOf(err: unknown): string | undefined {
  if (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    (err.cause.type === 'UnsafeArchive' || err.cause.type === 'InvalidInput')
  ) {
    return err.cause.message;
  }
  return undefined;
}

/**
 * Asks `node` for its archive of `backupId` and verifies it. A bad archive is an answer here,
 * not a failure: the runbook weighs every node's answer before it decides.
 */
export async function checkArchiveStep(
  ctx: DataContext,
  node: string,
  op: ArchiveKind,
  backupId: string,
): Promise<ArchiveCheck> {
  const checked = await ctx.rb.step(
    `check:${node}`,
    { title: `find and verify its archive of ${backupId}`, node },
    async (): Promise<ArchiveCheck> => {
      const calls = dataCalls(ctx, node, `verify ${op} ${backupId}`);
      const listed = await calls.listArchives({ op });
      if (!listed.archives.some((a) => a.backupId === backupId)) return { node, present: false };
      try {
        const v = await calls.verifyArchive({ op, backupId });
        return {
          node,
          present: true,
          archive: {
            node: v.node,
            file: v.file,
            bytes: v.bytes,
            sha256: v.sha256,
            entries: v.entries,
            files: v.files,
            dataBytes: v.dataBytes,
            manifest: v.manifest,
          },
        };
      } catch (err) {
        const problem = refusalOf(err);
        if (problem === undefined) throw err;
        return { node, present: true, problem };
      }
    },
  );
  if (!checked) throw ApplicationFailure.nonRetryable(`the archive of ${node} was not checked`);
  return checked;
}

/** What `archiveSteps` writes: backups and exports, with a prefix for the steps of a keep-aside. */
export interface ArchiveRun {
  op: 'backup' | 'export';
  backupId: string;
  plan: ArchivePlan;
  manifest: ManifestCommon;
  /** Prefixed to every step id (`aside-` for the backup a restore or import takes first). */
  prefix?: string;
}

/** The steps `archiveSteps` runs, for the plan shown before they start. */
export function archivePlannedSteps(run: Omit<ArchiveRun, 'manifest'>): PlannedStep[] {
  const p = run.prefix ?? '';
  return run.plan.flatMap(({ node, components }) => [
    ...components.map((c) => ({
      id: `${p}${run.op}:${node}:${c}`,
      title: `${run.op === 'backup' ? 'back up' : 'export'} ${c} into ${run.op}-data/${c}`,
      node,
    })),
    { id: `${p}archive:${node}`, title: `zip ${run.op}-data into ${run.backupId}.zip`, node },
    {
      id: `${p}verify:${node}`,
      title: `verify ${run.backupId}.zip against its manifest`,
      node,
    },
  ]);
}

/**
 * On every node of the plan: each component's data operation into `<op>-data/<component>/`,
 * one zip of them with the manifest, and that zip verified by reading it back. Returns the
 * verified archives in plan order.
 */
export async function archiveSteps(ctx: DataContext, run: ArchiveRun): Promise<DataArchive[]> {
  const { rb } = ctx;
  const { op, backupId, manifest } = run;
  const p = run.prefix ?? '';
  const archives = await Promise.all(
    run.plan.map(async ({ node, components }) => {
      for (const component of components) {
        await rb.step(
          `${p}${op}:${node}:${component}`,
          {
            title: `${op === 'backup' ? 'back up' : 'export'} ${component} into ${op}-data/${component}`,
            node,
          },
          () =>
            nodeCalls(ctx, node, `${op}Data ${component}`, true).middlewareOperation({
              component,
              operation: op === 'backup' ? 'backupData' : 'exportData',
            }),
        );
      }
      const archive = await rb.step(
        `${p}archive:${node}`,
        { title: `zip ${op}-data into ${backupId}.zip`, node },
        () =>
          dataCalls(ctx, node, 'archiveData').archiveData({ op, backupId, components, manifest }),
      );
      if (!archive) throw ApplicationFailure.nonRetryable(`no archive was written on ${node}`);
      await rb.step(
        `${p}verify:${node}`,
        { title: `verify ${backupId}.zip against its manifest`, node },
        () =>
          dataCalls(ctx, node, 'verifyArchive').verifyArchive({
            op,
            backupId,
            sha256: archive.sha256,
          }),
      );
      return archive;
    }),
  );
  return archives;
}

/** What the ending event of a backup or export says of each archive. */
export function archiveEvents(archives: DataArchive[]): object[] {
  return archives.map((a) => ({ node: a.node, bytes: a.bytes, sha256: a.sha256 }));
}

/** The fields every archive of one run shares. */
export function manifestOf(
  clusterId: string,
  members: string[],
  plan: ArchivePlan,
  at: Date,
  clusterUuid: string | undefined,
): ManifestCommon {
  const info = workflowInfo();
  return {
    clusterId,
    members,
    workflowId: info.workflowId,
    runId: info.runId,
    createdAt: at.toISOString(),
    ...(clusterUuid ? { clusterUuid } : {}),
    archives: plan,
  };
}

/**
 * The backup a restore or import takes of what it is about to replace, on the nodes and of the
 * components it changes: `<timestamp>-before-<what>`, verified. The runbook's state names it,
 * so that an operator whose restore parked knows what to go back to.
 */
export function keepAsidePlan(
  what: 'restore' | 'import',
  plan: ArchivePlan,
): { backupId: string; plan: ArchivePlan; steps: PlannedStep[] } {
  const backupId = backupIdOf(new Date(), `before-${what}`);
  const aside = { op: 'backup' as const, backupId, plan, prefix: 'aside-' };
  return { backupId, plan, steps: archivePlannedSteps(aside) };
}

/** What `loadSteps` puts back: a restore of a backup, or an import of an export. */
export interface LoadRun {
  op: 'restore' | 'import';
  /** The archive's id; `<from>-data-archive/<archiveId>.zip` on each node of the plan. */
  archiveId: string;
  from: ArchiveKind;
  plan: ArchivePlan;
  /** The sha256 each node's archive was verified with: only that archive is unpacked. */
  sha256: Record<string, string>;
  members: string[];
  /** The backup taken of what will change, when the data is kept aside first. */
  aside?: { backupId: string; steps: PlannedStep[]; manifest: ManifestCommon };
}

/**
 * The load a restore or import runs and the steps it shows. With `keepAside`, what it changes is
 * backed up first (`keepAsidePlan`), its archives sharing `manifest(plan)`.
 */
export function planLoad(
  run: Omit<LoadRun, 'aside'>,
  keepAside: boolean,
  manifest: (plan: ArchivePlan) => ManifestCommon,
): { load: LoadRun; steps: PlannedStep[] } {
  const keep = keepAside ? keepAsidePlan(run.op, run.plan) : undefined;
  const aside = keep && { ...keep, manifest: manifest(run.plan) };
  const load: LoadRun = { ...run, ...(aside ? { aside } : {}) };
  return { load, steps: loadPlannedSteps(load) };
}

export function loadPlannedSteps(run: Omit<LoadRun, 'sha256'>): PlannedStep[] {
  const { op, archiveId, plan } = run;
  const replicated = plan.some((p) => p.components.some(isReplicated));
  const change =
    op === 'restore'
      ? 'the data the backup holds is replaced'
      : 'the data the archive holds is merged in (znodes overwritten, messages appended)';
  return [
    ...plan.map(({ node, components }) => ({
      id: `unpack:${node}`,
      title: `unpack ${components.join(', ')} of ${archiveId}.zip into ${op}-data`,
      node,
    })),
    ...(run.aside?.steps ?? []),
    ...plan.flatMap(({ node, components }) =>
      components.map((c) => ({
        id: `${op}:${node}:${c}`,
        title: `${op} ${c} from ${op}-data/${c}`,
        node,
        wipes: [
          `${c}: ${
            isReplicated(c)
              ? change
              : c === 'bundles'
                ? "the desired bundle set in ZooKeeper is replaced (the backup's jars are added to the store)"
                : 'the configured folders are replaced (the old ones kept aside)'
          }`,
        ],
      })),
    ),
    ...(replicated
      ? run.members.map((n) => ({
          id: `health:${n}`,
          title: 'check every middleware is healthy',
          node: n,
        }))
      : []),
  ];
}

/**
 * Puts an archive's data back: each node of the plan unpacks its (verified) archive into
 * `<op>-data/`; what will change is backed up first when `aside` is given; then each node runs
 * `<op>Data` per component (nodes in parallel, a node's components in order); then, when
 * replicated middleware changed, every member's health is checked. The runbook's state always
 * says how far it got and, once it exists, which backup holds the data from before.
 */
export async function loadSteps(
  ctx: DataContext,
  run: LoadRun,
  loaded: LoadedComponent[],
): Promise<void> {
  const { rb } = ctx;
  const { op, archiveId, plan, aside } = run;
  const where = plan.map((p) => p.node).join(', ');
  const before = aside ? `. The data from before is kept as backup ${aside.backupId}` : '';
  await Promise.all(
    plan.map(({ node, components }) => {
      const sha256 = run.sha256[node];
      return rb.step(
        `unpack:${node}`,
        { title: `unpack ${components.join(', ')} of ${archiveId}.zip into ${op}-data`, node },
        () =>
          dataCalls(ctx, node, 'unpackArchive').unpackArchive({
            op,
            from: run.from,
            backupId: archiveId,
            components,
            // The archive that was verified, not one put in its place since.
            ...(sha256 ? { sha256 } : {}),
          }),
      );
    }),
  );
  rb.state = `${archiveId} is unpacked into ${op}-data on ${where}; nothing was changed yet`;
  if (aside) {
    await archiveSteps(ctx, {
      op: 'backup',
      backupId: aside.backupId,
      plan,
      prefix: 'aside-',
      manifest: aside.manifest,
    });
    rb.state =
      `the data before the ${op} is kept as backup ${aside.backupId} on ${where}; nothing ` +
      `was changed yet. If the ${op} cannot finish, abort it and restore ${aside.backupId}`;
  }

  const done: string[] = [];
  await Promise.all(
    plan.map(async ({ node, components }) => {
      for (const component of components) {
        const r = await rb.step(
          `${op}:${node}:${component}`,
          { title: `${op} ${component} from ${op}-data/${component}`, node },
          () =>
            nodeCalls(ctx, node, `${op}Data ${component}`, true).middlewareOperation({
              component,
              operation: op === 'restore' ? 'restoreData' : 'importData',
            }),
        );
        const files = r?.data?.files ?? [];
        loaded.push({
          node,
          component,
          files: files.length,
          bytes: files.reduce((n, f) => n + f.bytes, 0),
        });
        done.push(`${component} on ${node}`);
        rb.state = `${op} of ${archiveId}: ${done.join(', ')} done; the rest not yet${before}`;
      }
    }),
  );
  rb.state = `every component of ${archiveId} is ${op === 'restore' ? 'restored' : 'imported'}${before}`;

  const replicated = plan.flatMap((p) => p.components.filter(isReplicated));
  if (replicated.length) {
    const health: MembershipContext = { ...ctx, middleware: replicated };
    await Promise.all(run.members.map((n) => checkHealthyStep(health, `health:${n}`, n)));
  }
}
