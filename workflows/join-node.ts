import { ApplicationFailure, patched, sleep, workflowInfo } from '@temporalio/workflow';
import {
  analyzeQuorum,
  assignMemberIds,
  joinWipes,
  type ClusterViewInput,
  type JoinNodeInput,
  type JoinNodeParams,
  type MembershipRunbookResult,
  type PlannedStep,
  type RunbookPlan,
} from '../src/contracts/membership-runbooks.js';
import { standaloneAddress } from '../src/contracts/cluster-file.js';
import {
  inSyncPatch,
  inSyncStep,
  middlewareStep,
  memberState,
  nodeCalls,
  planOrRefuse,
  prepareConfigSteps,
  readState,
  resolveMiddleware,
  stopAllStep,
  writeStateStep,
  type MembershipContext,
} from './lib/membership.js';
import { convergeBundles } from './lib/bundle-converge.js';
import { openRunbook, type RunbookBase, runSteps } from './lib/open.js';
import { Webapps } from './lib/quiesce.js';

function refuse(message: string, type = 'InvalidInput'): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}

/**
 * A node joins the cluster (docs/design.md): it downloads its configuration archive from the
 * master, wipes what join (or rejoin) wipes per middleware, starts, waits until the master has
 * recorded it, and records the membership in its own cluster.json. Started by an operator, the
 * master first generates the configuration for the grown membership and every member records it.
 */
export async function joinNode(rawInput: JoinNodeInput): Promise<MembershipRunbookResult> {
  const { input, ...base } = await openRunbook('joinNode', rawInput, (i) =>
    i.rejoin ? 'rejoinNode' : 'joinNode',
  );
  return runJoin(input, base);
}

export async function runJoin(
  input: JoinNodeParams,
  base: RunbookBase,
): Promise<MembershipRunbookResult> {
  const name = base.rb.name;
  const { node, rejoin, clusterId } = input;
  const { rb } = base;
  // A child of bootstrapCluster gets the membership its parent created; an operator's run
  // learns it from the master.
  const standalone = !input.cluster;
  let view: ClusterViewInput;
  let master: string;
  let current: string[];
  let lastMemberId = input.lastMemberId ?? 0;
  if (input.cluster) {
    view = input.cluster;
    master = view.nodes[0] ?? '';
    current = view.nodes.filter((n) => n !== node);
  } else {
    master =
      input.master ??
      (await readState(base, node, "read this node's cluster.json")).cluster.nodes[0] ??
      '';
    if (master === node || master === standaloneAddress) {
      throw refuse(
        `${node} is ${master === node ? 'the master of its own cluster.json' : 'standalone (its cluster.json names no cluster)'}, ` +
          `so there is no master to ${rejoin ? 'rejoin' : 'join'}: give the master of the cluster in \`master\``,
      );
    }
    const masterFile = await readState(base, master, "read the master's cluster.json");
    const members = masterFile.cluster.nodes;
    if (members[0] !== master) {
      throw refuse(
        `${master} is not the master of cluster ${clusterId}: its cluster.json names ${members[0] ?? 'nobody'}. ` +
          'Start the runbook again with that master',
      );
    }
    if (rejoin && !members.includes(node)) {
      throw refuse(
        `${node} is not a member of [${members.join(', ')}], so it cannot rejoin: join it with joinNode`,
      );
    }
    if (!masterFile.cluster.clusterUuid) {
      throw refuse(
        `the cluster of ${master} was not created by clusterguard (its cluster.json has no clusterUuid): ` +
          'bootstrap it with bootstrapCluster first',
      );
    }
    current = members;
    lastMemberId = masterFile.cluster.lastMemberId ?? 0;
    const nodes = members.includes(node) ? members : [...members, node];
    view = {
      nodes,
      decommissionNodes: [],
      memberIds: assignMemberIds(
        nodes,
        masterFile.cluster.memberIds ?? {},
        masterFile.cluster.lastMemberId,
      ),
      clusterUuid: masterFile.cluster.clusterUuid,
    };
  }
  const middleware = await resolveMiddleware(base, master, input.middleware);
  const ctx: MembershipContext = { ...base, middleware };

  const membership = planOrRefuse(current.length ? current : [master], view.nodes);
  const verb = rejoin ? 'rejoin' : 'join';
  const planned: PlannedStep[] = [
    ...(standalone
      ? [
          ...middleware.map((mw) => ({
            id: `prepare:${master}:${mw}`,
            title: `generate ${mw} configuration of [${view.nodes.join(', ')}]`,
            node: master,
          })),
          { id: `pack:${master}`, title: `zip the configuration of ${node}`, node: master },
        ]
      : []),
    { id: `download:${node}`, title: `download the configuration from ${master}`, node },
    { id: `stop:${node}`, title: 'stop all middleware (forced)', node },
    ...middleware.map((mw) => ({
      id: `${verb}:${node}:${mw}`,
      title: `${verb} ${mw}`,
      node,
      wipes: joinWipes(rejoin, [mw]),
    })),
    ...(standalone
      ? current
          .filter((m) => m !== node)
          .map((m) => ({ id: `sync:${m}`, title: 'record the new membership', node: m }))
      : []),
    { id: `wait-master:${node}`, title: `wait until ${master} has recorded ${node}`, node },
    { id: `record:${node}`, title: 'record the membership in cluster.json', node },
    ...(workflowInfo().parent
      ? []
      : [{ id: `in-sync:${master}`, title: 'wait until every replica is in sync', node: master }]),
  ];
  const plan: RunbookPlan = {
    runbook: name,
    clusterId,
    master,
    middleware,
    membership,
    steps: planned,
    quorum: analyzeQuorum(membership, middleware),
    wipes: [{ node, what: joinWipes(rejoin, middleware) }],
    warnings: membership.warnings,
  };
  let inSync: string[] | undefined;
  const result = (): MembershipRunbookResult => ({
    runbook: name,
    clusterId,
    dryRun: input.dryRun,
    plan,
    nodes: input.dryRun ? current : view.nodes,
    skipped: rb.skipped,
    ...(inSync ? { inSync } : {}),
  });
  if (input.dryRun) return result();
  rb.tracker.addSteps(planned);
  rb.eventNodes = view.nodes;

  await runSteps(
    rb,
    {
      started: { node, master, nodes: view.nodes, rejoin },
      completed: () => ({ nodes: view.nodes, skipped: rb.skipped }),
    },
    async () => {
      let sha: string | undefined = input.expectedSha256;
      if (standalone) {
        await rb.emit('configuration.before-change', { nodes: current, next: view.nodes });
        const packed = await prepareConfigSteps(ctx, master, view, [node]);
        sha = packed[node];
        rb.state = `the master ${master} has generated the configuration for ${node}; nothing else changed`;
      }
      await rb.step(
        `download:${node}`,
        {
          title: `download the configuration from ${master}`,
          node,
          waitingText: `waiting for master ${master} to serve ${node}'s archive`,
        },
        () =>
          nodeCalls(ctx, node, `download from ${master}`, true).downloadDistribution({
            master,
            ...(sha ? { expectedSha256: sha } : {}),
          }),
      );
      await stopAllStep(ctx, node);
      rb.state = `${node}'s middleware is stopped and it has its configuration; it has not ${verb}ed yet`;
      await rb.emit('server.before-start', { node, middleware }, node);
      for (const component of middleware) {
        await middlewareStep(ctx, `${verb}:${node}:${component}`, `${verb} ${component}`, node, {
          component,
          operation: rejoin ? 'rejoinCluster' : 'joinCluster',
          cluster: view,
        });
      }
      await rb.emit('server.after-start', { node, middleware }, node);
      rb.state = `${node} runs as a member of [${view.nodes.join(', ')}]; cluster.json not updated everywhere yet`;
      const recordedAt = new Date().toISOString();
      if (standalone) {
        for (const m of current.filter((n) => n !== node)) {
          await writeStateStep(
            ctx,
            `sync:${m}`,
            'record the new membership',
            m,
            memberState(view, [], lastMemberId),
            `${name}: ${node} ${verb}ed`,
            () =>
              m === master
                ? 'the master must record the membership: the joining node waits for it'
                : undefined,
            recordedAt,
          );
        }
      }
      await rb.step(
        `wait-master:${node}`,
        {
          title: `wait until ${master} has recorded ${node}`,
          node,
          waitingText: `waiting for master ${master} to finish its membership work`,
        },
        async () => {
          const calls = nodeCalls(ctx, master, 'readClusterState');
          for (;;) {
            const file = await calls.readClusterState();
            if (file.cluster.clusterConfigReady && file.cluster.nodes.includes(node)) return;
            await sleep('3s');
          }
        },
      );
      await writeStateStep(
        ctx,
        `record:${node}`,
        'record the membership in cluster.json',
        node,
        { ...memberState(view, [], lastMemberId), nodeIsMaster: false, nodeIsRejoin: rejoin },
        `${name}: ${verb}ed [${view.nodes.join(', ')}]`,
        undefined,
        // A child of bootstrapCluster is recorded again by its parent; an operator's join
        // recorded the others at `recordedAt`.
        recordedAt,
      );
      await rb.emit('configuration.after-change', { nodes: view.nodes }, node);
      // A join started by another runbook is waited for by that runbook, once all have joined.
      if (!workflowInfo().parent && patched(inSyncPatch)) {
        inSync = await inSyncStep(ctx, `in-sync:${master}`, master);
      }
      // A new cluster (a child of bootstrapCluster) has no desired bundles yet.
      if (standalone && patched('bundle-converge')) {
        await convergeBundles(
          ctx,
          node,
          view.nodes.filter((n) => n !== node),
        );
      }
    },
    new Webapps(ctx, view.nodes),
  );
  return result();
}

/** The child workflow id of a join started by another runbook. */
export function childJoinId(node: string): string {
  return `${workflowInfo().workflowId}/join/${node}`;
}
