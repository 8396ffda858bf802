/**
 * The steps the membership runbooks share. Every step is an activity on the node it concerns,
 * and each is safe to run again after a crash at any point:
 * - read-only: readClusterState, enabledMiddleware, checkServer, inspect;
 * - idempotent, converging on the same end state when repeated: stopServer (a stopped server
 *   stops quietly), prepareClusterConfig and packDistribution (regenerated from the same
 *   membership), downloadDistribution (replaces cluster-config/<self>), createCluster,
 *   joinCluster, rejoinCluster and startServer (a server running the same configuration is kept;
 *   a repeated join wipes again only what the join had already given up), decommissionCluster
 *   (members already gone are skipped);
 * - recording that they ran: writeClusterState and resetNode carry the step's revision into
 *   cluster.json, and a repeat that finds it changes nothing.
 */
import {
  ApplicationFailure,
  patched,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  MiddlewareOperationInput,
  MiddlewareOperationResult,
} from '../../activities/middleware-activities.js';
import type { ClusterFile, ClusterState } from '../../src/contracts/cluster-file.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { planMembership, type MembershipPlan } from '../../src/contracts/membership.js';
import {
  membershipWorkflowId,
  membershipMiddleware,
  type ClusterViewInput,
  type MembershipMiddleware,
} from '../../src/contracts/membership-runbooks.js';
import { clusterIdKey, nodesKey, runbookKey } from '../../src/contracts/search-attributes.js';
import { isUnclaimed, onNode, type NodeActivities, type Runbook } from './runbook.js';

/** What every membership runbook's steps need besides the Runbook. */
export interface MembershipContext {
  rb: Runbook;
  attempts: number;
  agentTimeoutSeconds: number;
  middleware: MembershipMiddleware[];
}

/**
 * Middleware operations and downloads: long, but they heartbeat every 2 s, so an agent that
 * dies mid-step is noticed within 20 s and the step is retried.
 */
const longStep = { startToCloseTimeout: '60m', heartbeatTimeout: '20s' };
/**
 * Everything else takes seconds and does not heartbeat. The timeout is what bounds a step whose
 * completion was lost (the Temporal server restarting as the agent answered): the server only
 * retries it when it expires, so it stays short (5 min here once cost a CI run 5 min).
 */
const shortStep = { startToCloseTimeout: '2m' };

export function nodeCalls(
  ctx: Pick<MembershipContext, 'attempts' | 'agentTimeoutSeconds'> & { rb?: Runbook },
  node: string,
  summary: string,
  long = false,
): NodeActivities {
  return onNode(node, {
    attempts: ctx.attempts,
    agentTimeoutSeconds: ctx.rb?.patience() ?? ctx.agentTimeoutSeconds,
    summary: `${summary} on ${node}`,
    ...(long ? longStep : shortStep),
  });
}

/**
 * A membership runbook started from outside must run as `cg/<cluster>/membership`: that id is
 * what makes Temporal refuse a second one. A dry run changes nothing and may run under any id;
 * children run under their parent's.
 */
export function assertMembershipWorkflowId(name: string, clusterId: string, dryRun: boolean): void {
  const info = workflowInfo();
  const expected = membershipWorkflowId(clusterId);
  if (dryRun || info.parent || info.workflowId === expected) return;
  throw ApplicationFailure.nonRetryable(
    `${name} of cluster ${clusterId} runs as workflow id ${info.workflowId}, but membership runbooks ` +
      `must run as ${expected} so that a cluster never runs two at once. Nothing was changed: ` +
      `start it again with --workflow-id ${expected} (the clusterguard CLI and the client's startRunbook do)`,
    'InvalidInput',
  );
}

export function tagRunbook(name: string, clusterId: string, nodes: string[]): void {
  upsertSearchAttributes([
    { key: clusterIdKey, value: clusterId },
    { key: runbookKey, value: name },
    { key: nodesKey, value: nodes },
  ]);
}

/** The input's middleware, else what the master's agent has enabled, in runbook order. */
export async function resolveMiddleware(
  ctx: Pick<MembershipContext, 'rb' | 'attempts' | 'agentTimeoutSeconds'>,
  master: string,
  given: MembershipMiddleware[] | undefined,
): Promise<MembershipMiddleware[]> {
  if (given) return given;
  const enabled = await ctx.rb.step(
    `middleware:${master}`,
    { title: 'which middleware the master runs', node: master },
    () => nodeCalls(ctx, master, 'enabledMiddleware').enabledMiddleware(),
  );
  return membershipMiddleware.filter((m) => (enabled ?? []).includes(m));
}

/** Reads a node's cluster.json (read-only, safe to repeat). */
export async function readState(
  ctx: Pick<MembershipContext, 'rb' | 'attempts' | 'agentTimeoutSeconds'>,
  node: string,
  why: string,
  step = `read:${node}`,
): Promise<ClusterFile> {
  const file = await ctx.rb.step(step, { title: why, node }, () =>
    nodeCalls(ctx, node, 'readClusterState').readClusterState(),
  );
  if (!file) throw ApplicationFailure.nonRetryable(`cluster.json of ${node} was not read`);
  return file;
}

/** Runs since this patch refuse a wrong role before they wait (docs/design.md, "Role refusals"). */
export const rolePatch = 'role-refusals';
/** How long a role probe lets a node's agent take to claim the read: a live agent takes ms. */
const roleProbeSeconds = 5;

/**
 * Reads the cluster.json of `node`, named by the input without a master, to learn its role.
 * Since `rolePatch`, the node is asked once: an agent that claims nothing within a few seconds
 * refuses the runbook (`NodeUnreachable`) instead of holding the cluster's lane while it waits,
 * and the message says to give the master in `master`. Runs from before read as readState.
 */
export async function readRoleState(
  ctx: Pick<MembershipContext, 'rb' | 'attempts' | 'agentTimeoutSeconds'>,
  node: string,
  why: string,
  runbook: string,
): Promise<ClusterFile> {
  if (!patched(rolePatch)) return readState(ctx, node, why);
  const seconds = Math.min(ctx.agentTimeoutSeconds, roleProbeSeconds);
  let unclaimed = false;
  const file = await ctx.rb.step(`read:${node}`, { title: why, node }, async () => {
    try {
      return await nodeCalls(
        { attempts: ctx.attempts, agentTimeoutSeconds: seconds },
        node,
        'readClusterState',
      ).readClusterState();
    } catch (err) {
      if (!isUnclaimed(err)) throw err;
      unclaimed = true;
      return undefined;
    }
  });
  if (unclaimed) {
    throw ApplicationFailure.nonRetryable(
      `no agent on ${node} answered within ${seconds} s, so ${runbook} cannot learn from ${node}'s ` +
        `cluster.json which cluster it belongs to. Nothing was changed: check the address, or give ` +
        'the master of the cluster in `master` and start the runbook again',
      'NodeUnreachable',
    );
  }
  if (!file) throw ApplicationFailure.nonRetryable(`cluster.json of ${node} was not read`);
  return file;
}

/** One middleware operation as one step. */
export async function middlewareStep(
  ctx: MembershipContext,
  step: string,
  title: string,
  node: string,
  input: MiddlewareOperationInput,
  canSkip?: () => string | undefined,
): Promise<MiddlewareOperationResult | undefined> {
  return ctx.rb.step(step, { title, node, canSkip }, () =>
    nodeCalls(ctx, node, `${input.operation} ${input.component}`, true).middlewareOperation(input),
  );
}

/**
 * Stops every middleware of `node`, forced (docs/design.md), in reverse start order. Idempotent:
 * stopping a stopped server is not an error.
 */
export async function stopAllStep(
  ctx: MembershipContext,
  node: string,
  canSkip?: () => string | undefined,
): Promise<void> {
  await ctx.rb.step(
    `stop:${node}`,
    { title: 'stop all middleware (forced)', node, canSkip },
    async () => {
      const calls = nodeCalls(ctx, node, 'stop all middleware', true);
      for (const component of [...ctx.middleware].reverse()) {
        await calls.middlewareOperation({ component, operation: 'stopServer', force: true });
      }
    },
  );
}

/**
 * Writes `cluster` into `node`'s cluster.json as step `step`. Records that it ran: the write
 * carries the step's revision and a second run finds it and changes nothing.
 */
export async function writeStateStep(
  ctx: MembershipContext,
  step: string,
  title: string,
  node: string,
  cluster: Partial<ClusterState> & { nodes: string[] },
  reason: string,
  canSkip?: () => string | undefined,
  /** One instant for every member's write of the same membership, so their files agree. */
  datetime = new Date().toISOString(),
): Promise<void> {
  const revision = ctx.rb.revision(step);
  await ctx.rb.step(step, { title, node, canSkip }, () =>
    nodeCalls(ctx, node, 'writeClusterState').writeClusterState({
      cluster,
      reason,
      revision,
      datetime,
    }),
  );
}

/**
 * A node that left: its middleware data and configuration wiped and its cluster.json made a
 * standalone node's (the old membership kept in history). Records that it ran. Skippable when
 * `canSkip` says so: a node that is gone for good cannot be wiped.
 */
export async function resetNodeStep(
  ctx: MembershipContext,
  node: string,
  reason: string,
  canSkip?: () => string | undefined,
): Promise<void> {
  const step = `reset:${node}`;
  await ctx.rb.step(step, { title: 'wipe and make standalone', node, canSkip }, () =>
    nodeCalls(ctx, node, 'resetNode').resetNode({
      middleware: ctx.middleware,
      reason,
      revision: ctx.rb.revision(step),
      datetime: new Date().toISOString(),
    }),
  );
}

/** The membership state every member records once a runbook is done (identical everywhere). */
export function memberState(
  view: ClusterViewInput,
  decommissionNodes: string[] = [],
  lastMemberId = 0,
): Partial<ClusterState> & { nodes: string[] } {
  return {
    nodes: view.nodes,
    decommissionNodes,
    clusterConfigReady: true,
    nodeConfigReady: true,
    memberIds: view.memberIds,
    lastMemberId: Math.max(lastMemberId, ...Object.values(view.memberIds)),
    clusterUuid: view.clusterUuid,
  };
}

/**
 * On the master: the configuration of every member of `view` into cluster-config (without
 * touching its running servers), then the archives of `pack` into cluster-distribution.
 * Both idempotent: they regenerate. Returns each packed node's archive sha256.
 */
export async function prepareConfigSteps(
  ctx: MembershipContext,
  master: string,
  view: ClusterViewInput,
  pack: string[],
  suffix = '',
): Promise<Record<string, string>> {
  for (const component of ctx.middleware) {
    await middlewareStep(
      ctx,
      `prepare${suffix}:${master}:${component}`,
      `generate ${component} configuration of [${view.nodes.join(', ')}]`,
      master,
      { component, operation: 'prepareClusterConfig', cluster: view },
    );
  }
  return packStep(ctx, master, pack, suffix);
}

export async function packStep(
  ctx: MembershipContext,
  master: string,
  pack: string[],
  suffix = '',
): Promise<Record<string, string>> {
  if (pack.length === 0) return {};
  const packed = await ctx.rb.step(
    `pack${suffix}:${master}`,
    { title: `zip the configuration of ${pack.join(', ')}`, node: master },
    () => nodeCalls(ctx, master, 'packDistribution').packDistribution({ nodes: pack }),
  );
  return Object.fromEntries((packed?.archives ?? []).map((a) => [a.node, a.sha256]));
}

/** Health of every middleware on `node`, waited for: a restarted member must serve again. */
export async function checkHealthyStep(
  ctx: MembershipContext,
  step: string,
  node: string,
): Promise<void> {
  await ctx.rb.step(step, { title: 'check every middleware is healthy', node }, async () => {
    const calls = nodeCalls(ctx, node, 'checkServer');
    for (const component of ctx.middleware) {
      // A server just started may need a while to rejoin its quorum: up to a minute here, then
      // the step parks with the last answer.
      for (let tries = 1; ; tries++) {
        const r = await calls.middlewareOperation({ component, operation: 'checkServer' });
        if (r.status?.healthy) break;
        if (tries >= 30) {
          throw ApplicationFailure.retryable(
            `${component} on ${node} is not healthy after a minute: ${r.status?.detail ?? 'no status'}. ` +
              `Check its log under node-data/${component}/log on ${node}, then retryStep`,
            'MiddlewareFailure',
          );
        }
        await sleep('2s');
      }
    }
  });
}

/** Runs recorded before membership runbooks waited for in-sync replicas replay without it. */
export const inSyncPatch = 'membership-waits-for-in-sync';

/** How long the in-sync step waits before it parks (rounds of the adapters' own wait). */
const inSyncRounds = 10;

/**
 * Waits on `node` until every replica of every middleware is in sync (Kafka partitions led and
 * fully in sync, CockroachDB ranges fully replicated, every ZooKeeper voter serving), showing
 * what lags in `progress`; a membership runbook does not report done before. Parks after about
 * five minutes; it cannot be skipped (a cluster out of sync is not done), only retried or
 * aborted. Returns one line per middleware for the result.
 */
export async function inSyncStep(
  ctx: MembershipContext,
  step: string,
  node: string,
): Promise<string[]> {
  const title = 'wait until every replica is in sync';
  const lines = await ctx.rb.step(
    step,
    {
      title,
      node,
      canSkip: () =>
        'a membership change is not done while replicas are out of sync: bring the lagging servers back, then retryStep, or abort',
    },
    async () => {
      const calls = nodeCalls(ctx, node, 'checkInSync', true);
      for (let round = 1; ; round++) {
        const reports = [];
        for (const component of ctx.middleware) {
          const r = await calls.middlewareOperation({ component, operation: 'checkInSync' });
          reports.push(r.inSync ?? { inSync: false, detail: `${component}: no answer` });
        }
        const lagging = reports.filter((r) => !r.inSync).map((r) => r.detail);
        if (lagging.length === 0) return reports.map((r) => r.detail);
        ctx.rb.tracker.update(step, { status: 'waiting', lastError: lagging.join('; ') });
        if (round >= inSyncRounds) {
          throw ApplicationFailure.retryable(
            `replicas are still out of sync, asked through ${node}: ${lagging.join('; ')}. ` +
              'The membership change itself is done and recorded. Next: check that every member ' +
              'runs its servers (their logs under node-data/<mw>/log), then retryStep',
            'MiddlewareFailure',
          );
        }
      }
    },
  );
  return lines ?? [];
}

/** planMembership, with its refusal as a permanent workflow failure (nothing has changed yet). */
export function planOrRefuse(current: string[], desired: string[]): MembershipPlan {
  try {
    return planMembership(current, desired);
  } catch (err) {
    if (err instanceof ClusterGuardError)
      throw ApplicationFailure.nonRetryable(err.message, err.type);
    throw err;
  }
}
