import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { BundleActivities } from '../../activities/bundle-activities.js';
import { nodeTaskQueue } from '../../src/contracts/addresses.js';
import type { DesiredBundle } from '../../src/contracts/bundle-view.js';
import { nonRetryableErrorTypes } from '../../src/contracts/errors.js';
import type { PlannedStep } from '../../src/contracts/membership-runbooks.js';
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
 *
 * With `removeOthers` (a restore, docs/design.md "The application's bundles in a backup"), the
 * bundles rollouts installed on the node that the set does not name are uninstalled first,
 * newest first (what depended on them goes before what they depended on), so that a desired
 * version put back never meets a bundle that needs a later one.
 */
export async function convergeBundles(
  ctx: DataContext & { middleware: readonly string[] },
  node: string,
  peers: string[],
  options: { removeOthers?: boolean } = {},
): Promise<void> {
  if (!ctx.middleware.includes('zookeeper')) return;
  const { rb } = ctx;
  const id = `bundles:${node}`;
  rb.tracker.addSteps([{ id, title: "read the cluster's desired bundle set", node }]);
  const desired: DesiredBundle[] =
    (await rb.step(id, { title: "read the cluster's desired bundle set", node }, () =>
      viewCalls(ctx, node, 'readDesiredBundles').readDesiredBundles(),
    )) ?? [];
  const info = workflowInfo();
  const others = options.removeOthers ? await undesired(ctx, node, desired) : [];
  const steps = [
    ...others.map(([name, v]) => ({
      id: `unbundle:${node}:${name}`,
      title: `uninstall ${name} ${v.version}: the set does not name it`,
      node,
    })),
    ...desired.map((d) => ({
      id: `bundle:${node}:${d.symbolicName}`,
      title: `run ${d.symbolicName} ${d.version}`,
      node,
    })),
  ];
  rb.tracker.addSteps(steps);
  for (const [name, v] of others) {
    await rb.step(
      `unbundle:${node}:${name}`,
      { title: `uninstall ${name} ${v.version}: the set does not name it`, node },
      () =>
        bundleCalls(ctx, node, `uninstall ${name}`, true).rollbackBundle({
          symbolicName: name,
          from: v,
          to: null,
          sources: peers,
          workflowId: info.workflowId,
          runId: info.runId,
          datetime: new Date().toISOString(),
        }),
    );
  }
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

/**
 * What rollouts installed on `node` that `desired` does not name, in reverse order of their first
 * install there (installed.json keeps that order).
 */
async function undesired(
  ctx: DataContext,
  node: string,
  desired: DesiredBundle[],
): Promise<[string, { version: string; sha256: string }][]> {
  const now = await ctx.rb.step(
    `bundles-now:${node}`,
    { title: 'what rollouts installed on this node', node },
    () => viewCalls(ctx, node, 'listBundles').listBundles(),
  );
  return Object.entries(now?.recorded ?? {})
    .filter(([name]) => !desired.some((d) => d.symbolicName === name))
    .reverse();
}

/** The convergence a restore of the bundle set shows before it runs (one step per member). */
export function convergePlannedSteps(members: readonly string[]): PlannedStep[] {
  return members.map((node) => ({
    id: `bundles:${node}`,
    title: 'bring the running framework to the restored bundle set (install, update, uninstall)',
    node,
  }));
}
