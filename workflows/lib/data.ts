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
  dataWorkflowId,
  type ArchiveCheck,
  type ArchiveKind,
} from '../../src/contracts/data-runbooks.js';
import { nonRetryableErrorTypes } from '../../src/contracts/errors.js';
import { readState } from './membership.js';
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
 * The master and members from `node`'s cluster.json; when `node` is a member but not the
 * master, from the master's own file, which must name itself master.
 */
export async function readMembers(
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
