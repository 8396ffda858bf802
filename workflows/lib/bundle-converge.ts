import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { BundleActivities } from '../../activities/bundle-activities.js';
import { nodeTaskQueue } from '../../src/contracts/addresses.js';
import type { DesiredBundle } from '../../src/contracts/bundle-view.js';
import { nonRetryableErrorTypes } from '../../src/contracts/errors.js';
import { viewCalls } from './bundle-view.js';
import type { DataContext } from './data.js';

/**
 * The bundle activities of one node. Installs heartbeat every second, so an agent that dies
 * mid-install is noticed within 5 s and the install is retried when it is back.
 */
export function bundleCalls(ctx: DataContext, node: string, summary: string, long: boolean) {
  return proxyActivities<BundleActivities>({
    taskQueue: nodeTaskQueue(node),
    summary: `${summary} on ${node}`,
    startToCloseTimeout: long ? '30m' : '2m',
    ...(long ? { heartbeatTimeout: '5s' } : {}),
    // Not a retry budget: how soon a silent node shows as unreachable in `progress`.
    scheduleToStartTimeout: `${ctx.rb.patience() ?? ctx.agentTimeoutSeconds}s`,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '20s',
      maximumAttempts: ctx.attempts,
      nonRetryableErrorTypes,
    },
  });
}

/**
 * The last part of a join or rejoin: the node is brought to the cluster's desired bundle set
 * (what completed rollouts recorded in ZooKeeper), fetching each artifact from the other
 * members. A node that already runs a desired version is left as it is (installBundle skips it);
 * one that fails parks the runbook like any step. Without ZooKeeper there is no desired set.
 */
export async function convergeBundles(
  ctx: DataContext & { middleware: readonly string[] },
  node: string,
  peers: string[],
): Promise<void> {
  if (!ctx.middleware.includes('zookeeper')) return;
  const { rb } = ctx;
  const id = `bundles:${node}`;
  rb.tracker.addSteps([{ id, title: "read the cluster's desired bundle set", node }]);
  const desired: DesiredBundle[] =
    (await rb.step(id, { title: "read the cluster's desired bundle set", node }, () =>
      viewCalls(ctx, node, 'readDesiredBundles').readDesiredBundles(),
    )) ?? [];
  const steps = desired.map((d) => ({
    id: `bundle:${node}:${d.symbolicName}`,
    title: `run ${d.symbolicName} ${d.version}`,
    node,
  }));
  rb.tracker.addSteps(steps);
  const info = workflowInfo();
  for (const d of desired) {
    await rb.step(
      `bundle:${node}:${d.symbolicName}`,
      { title: `run ${d.symbolicName} ${d.version}`, node },
      () =>
        bundleCalls(ctx, node, `install ${d.symbolicName}`, true).installBundle({
          sha256: d.sha256,
          symbolicName: d.symbolicName,
          version: d.version,
          sources: peers,
          workflowId: info.workflowId,
          runId: info.runId,
          datetime: d.at,
          // The cluster decided this version; a node that ran a later one is brought back to it.
          allowDowngrade: true,
        }),
    );
  }
  rb.state = `${node} runs the cluster's desired bundles (${desired.map((d) => `${d.symbolicName} ${d.version}`).join(', ') || 'none'})`;
}
