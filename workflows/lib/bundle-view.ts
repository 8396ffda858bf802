import { proxyActivities } from '@temporalio/workflow';
import type { BundleViewActivities } from '../../activities/bundle-view-activities.js';
import { nodeTaskQueue } from '../../src/contracts/addresses.js';
import {
  bundleViewRows,
  renderBundleViewMarkdown,
  type BundleViewRow,
  type DesiredBundle,
  type NodeBundles,
} from '../../src/contracts/bundle-view.js';
import { nonRetryableErrorTypes } from '../../src/contracts/errors.js';
import type { DataContext } from './data.js';
import { causeMessage } from './runbook.js';

export function viewCalls(ctx: DataContext, node: string, summary: string) {
  return proxyActivities<BundleViewActivities>({
    taskQueue: nodeTaskQueue(node),
    summary: `${summary} on ${node}`,
    startToCloseTimeout: '1m',
    scheduleToStartTimeout: `${ctx.rb.patience() ?? ctx.agentTimeoutSeconds}s`,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '10s',
      maximumAttempts: ctx.attempts,
      nonRetryableErrorTypes,
    },
  });
}

/**
 * After a rollout that completed: the version becomes the cluster's desired one (kept in its
 * ZooKeeper by a member), and every node's framework is asked what it runs, for the `bundles`
 * query and the Web UI details. Neither changes the rollout's outcome: a ZooKeeper that cannot
 * be written is reported, and a node that does not answer is a row saying so.
 */
export async function recordAndShowBundles(
  ctx: DataContext,
  args: { nodes: string[]; recordOn: string[]; desired: DesiredBundle },
): Promise<{ rows: BundleViewRow[]; desiredError?: string }> {
  let desiredError: string | undefined;
  for (const node of args.recordOn) {
    try {
      await viewCalls(ctx, node, 'recordDesiredBundle').recordDesiredBundle(args.desired);
      desiredError = undefined;
      break;
    } catch (err) {
      desiredError = `${args.desired.symbolicName} ${args.desired.version} not recorded as desired: ${causeMessage(err)}`;
    }
  }
  const perNode = await Promise.all(
    args.nodes.map((node): Promise<NodeBundles> =>
      viewCalls(ctx, node, 'listBundles')
        .listBundles()
        .catch((err: unknown) => ({ node, recorded: {}, error: causeMessage(err) })),
    ),
  );
  const rows = bundleViewRows(perNode, [args.desired]);
  ctx.rb.tracker.setAppendix(
    `### Bundles (node × bundle)\n\n${renderBundleViewMarkdown(rows)}` +
      (desiredError ? `\n\n⚠ ${desiredError}` : ''),
  );
  return { rows, ...(desiredError ? { desiredError } : {}) };
}
