import { ApplicationFailure, executeChild, patched } from '@temporalio/workflow';
import {
  analyzeQuorum,
  quorumRefusal,
  type ClusterViewInput,
  type DecommissionNodesInput,
  type MembershipMiddleware,
  type MembershipRunbookResult,
  type PlannedStep,
  type QuorumFacts,
  type RunbookPlan,
} from '../src/contracts/membership-runbooks.js';
import { standaloneAddress } from '../src/contracts/cluster-file.js';
import { childJoinId, joinNode } from './join-node.js';
import {
  checkHealthyStep,
  inSyncPatch,
  inSyncStep,
  middlewareStep,
  memberState,
  nodeCalls,
  planOrRefuse,
  prepareConfigSteps,
  readState,
  resetNodeStep,
  resolveMiddleware,
  stopAllStep,
  writeStateStep,
  type MembershipContext,
} from './lib/membership.js';
import { openRunbook, runSteps } from './lib/open.js';
import { Webapps } from './lib/quiesce.js';

const refuse = (message: string, type = 'InvalidInput') =>
  ApplicationFailure.nonRetryable(message, type);

function pick(ids: Record<string, number>, nodes: string[]): Record<string, number> {
  return Object.fromEntries(nodes.flatMap((n) => (ids[n] === undefined ? [] : [[n, ids[n]]])));
}

/**
 * Decommission-then-shrink (docs/design.md): a quorum pre-check of every middleware
 * before anything changes; replacements join first; then one node at a time CockroachDB
 * decommission, Kafka reassignment and unregister, ZooKeeper reconfig, the node stopped and
 * wiped, the survivors recording the membership; at the end the master generates the survivors'
 * configuration, which each downloads in a rolling restart checked healthy one at a time.
 */
export async function decommissionNodes(
  rawInput: DecommissionNodesInput,
): Promise<MembershipRunbookResult> {
  const { input, ...base } = await openRunbook('decommissionNodes', rawInput);
  const { clusterId } = input;
  const { rb } = base;

  const [firstLeaving = ''] = input.nodes;
  const master =
    input.master ??
    (await readState(base, firstLeaving, `read ${firstLeaving}'s cluster.json to find the master`))
      .cluster.nodes[0] ??
    '';
  if (master === standaloneAddress) {
    throw refuse(
      `${firstLeaving} is standalone (its cluster.json names no cluster), so it has nothing to leave. ` +
        'Nothing was changed; give the master in `master` if it is a member of a cluster',
    );
  }
  const masterFile = await readState(
    base,
    master,
    "read the master's cluster.json",
    `read-master:${master}`,
  );
  const members = masterFile.cluster.nodes;
  if (members[0] !== master) {
    throw refuse(
      `${master} is not the master of cluster ${clusterId}: its cluster.json names ${members[0] ?? 'nobody'}. ` +
        'Start the runbook again with that master',
    );
  }
  const unknown = input.nodes.filter((n) => !members.includes(n));
  if (unknown.length) {
    throw refuse(
      `${unknown.join(', ')} ${unknown.length === 1 ? 'is not a member' : 'are not members'} of cluster ` +
        `${clusterId} ([${members.join(', ')}]): nothing to decommission. Nothing was changed`,
    );
  }
  const already = input.add.filter((n) => members.includes(n));
  if (already.length) {
    throw refuse(`${already.join(', ')} already belong to [${members.join(', ')}]: nothing to add`);
  }
  if (input.nodes.includes(master) && !input.newMaster) {
    throw refuse(
      `${master} is the master and would leave without a new master: name one of the remaining ` +
        'members (or added nodes) in `newMaster`. Nothing was changed',
    );
  }
  if (!masterFile.cluster.clusterUuid) {
    throw refuse(
      `the cluster of ${master} was not created by clusterguard (no clusterUuid in its cluster.json): ` +
        'bootstrap it with bootstrapCluster first',
    );
  }
  const masterUuid = masterFile.cluster.clusterUuid;
  const remaining = [...members.filter((n) => !input.nodes.includes(n)), ...input.add];
  const desired = input.newMaster
    ? [input.newMaster, ...remaining.filter((n) => n !== input.newMaster)]
    : remaining;
  const membership = planOrRefuse(members, desired);
  const middleware: MembershipMiddleware[] = await resolveMiddleware(
    base,
    master,
    input.middleware,
  );
  const ctx: MembershipContext = { ...base, middleware };

  // Live facts, read before anything changes: who runs what, and Kafka's widest topic. A node
  // that does not answer within the agent timeout counts as down.
  const facts: QuorumFacts = { live: {} };
  const probes = { ...ctx, attempts: 2 };
  await Promise.all(
    members.map(async (m) => {
      for (const component of middleware) {
        try {
          const r = await nodeCalls(probes, m, `check ${component}`).middlewareOperation({
            component,
            operation: 'checkServer',
          });
          if (r.status?.healthy) (facts.live![component] ??= []).push(m);
        } catch {
          // down or unreachable: not live
        }
      }
    }),
  );
  if (middleware.includes('kafka')) {
    try {
      const r = await nodeCalls(probes, master, 'inspect kafka').middlewareOperation({
        component: 'kafka',
        operation: 'inspect',
      });
      facts.kafkaMaxReplicationFactor = r.inspection?.maxReplicationFactor;
    } catch {
      // Kafka's own decommission refuses what the topics cannot afford; the plan says unknown.
    }
  }
  // Replacements that join first are not live yet; count them as they will be after joining.
  for (const component of middleware) {
    facts.live![component] = [...(facts.live![component] ?? []), ...input.add];
  }
  const quorum = analyzeQuorum(membership, middleware, facts);

  const removals = membership.steps.filter((s) => s.action === 'remove');
  const finalMaster = membership.masterAfter;
  const survivors = membership.desired;
  const planned: PlannedStep[] = [
    ...input.add.map((a) => ({
      id: `join:${a}`,
      title: `join (child workflow ${childJoinId(a)})`,
      node: a,
    })),
    ...removals.flatMap((s) => {
      const l = s.nodes[0] ?? '';
      return [
        ...middleware.map((mw) => ({
          id: `decommission:${l}:${mw}`,
          title: `decommission ${mw}`,
          node: mw === 'kafka' ? l : (s.membersAfter[0] ?? ''),
        })),
        { id: `stop:${l}`, title: 'stop all middleware (forced)', node: l },
        ...(middleware.includes('kafka')
          ? [
              {
                id: `unregister:${l}:kafka`,
                title: `unregister ${l}'s kafka broker`,
                node: s.membersAfter[0] ?? '',
              },
            ]
          : []),
        {
          id: `reset:${l}`,
          title: 'wipe and make standalone',
          node: l,
          wipes: middleware.map((m) => `${m}: data and configuration`),
        },
        ...s.membersAfter.map((n) => ({
          id: `sync:${l}:${n}`,
          title: `record that ${l} left`,
          node: n,
        })),
      ];
    }),
    ...middleware.map((mw) => ({
      id: `prepare:final:${finalMaster}:${mw}`,
      title: `generate ${mw} configuration of the survivors`,
      node: finalMaster,
    })),
    ...survivors.flatMap((s) => [
      ...(s === finalMaster
        ? []
        : [
            {
              id: `download:${s}`,
              title: `download the configuration from ${finalMaster}`,
              node: s,
            },
          ]),
      { id: `restart:${s}`, title: 'restart every middleware (rolling)', node: s },
      { id: `health:${s}`, title: 'check every middleware is healthy', node: s },
      {
        id: `in-sync:restart:${s}`,
        title: 'wait until every replica is in sync',
        node: finalMaster,
      },
    ]),
    {
      id: `in-sync:${finalMaster}`,
      title: 'wait until every replica is in sync',
      node: finalMaster,
    },
  ];
  const plan: RunbookPlan = {
    runbook: 'decommissionNodes',
    clusterId,
    master,
    middleware,
    membership,
    steps: planned,
    quorum,
    wipes: removals.map((s) => ({
      node: s.nodes[0] ?? '',
      what: middleware.map((m) => `${m}: data and configuration`),
    })),
    warnings: membership.warnings,
  };
  const refusal = quorumRefusal(quorum);
  if (refusal && input.dryRun) {
    return {
      runbook: 'decommissionNodes',
      clusterId,
      dryRun: true,
      plan,
      nodes: members,
      skipped: [],
      refusal: `Refusing to decommission ${input.nodes.join(', ')}: ${refusal}`,
    };
  }
  if (refusal) {
    throw refuse(
      `Refusing to decommission ${input.nodes.join(', ')}: ${refusal}`,
      'UnsafeMembershipChange',
    );
  }
  let inSync: string[] | undefined;
  const result = (): MembershipRunbookResult => ({
    runbook: 'decommissionNodes',
    clusterId,
    dryRun: input.dryRun,
    plan,
    nodes: input.dryRun ? members : survivors,
    skipped: rb.skipped,
    ...(inSync ? { inSync } : {}),
  });
  if (input.dryRun) return result();
  rb.tracker.addSteps(planned);
  rb.eventNodes = [...members, ...input.add];

  await runSteps(
    rb,
    {
      started: { nodes: members, leaving: input.nodes, add: input.add },
      completed: () => ({ nodes: survivors, skipped: rb.skipped }),
    },
    async () => {
      await rb.emit('configuration.before-change', { nodes: members, next: survivors });
      for (const a of input.add) {
        await rb.step(
          `join:${a}`,
          { title: `join (child workflow ${childJoinId(a)})`, node: a },
          () =>
            executeChild(joinNode, {
              workflowId: childJoinId(a),
              args: [
                {
                  clusterId,
                  node: a,
                  master,
                  middleware,
                  stepAttempts: input.stepAttempts,
                  agentTimeoutSeconds: input.agentTimeoutSeconds,
                },
              ],
            }),
        );
      }
      // The joins recorded their ids on the master.
      const grown = input.add.length
        ? await readState(
            ctx,
            master,
            "read the master's cluster.json after the joins",
            `read-grown:${master}`,
          )
        : masterFile;
      const memberIds = grown.cluster.memberIds ?? {};
      const clusterUuid = grown.cluster.clusterUuid ?? masterUuid;
      const lastMemberId = Math.max(grown.cluster.lastMemberId ?? 0, ...Object.values(memberIds));
      rb.state = `[${grown.cluster.nodes.join(', ')}] are members; nothing was removed yet`;

      for (const s of removals) {
        const leaving = s.nodes[0] ?? '';
        const after = s.membersAfter;
        const anchor = after[0] ?? '';
        const viewAfter: ClusterViewInput = {
          nodes: after,
          decommissionNodes: [leaving],
          memberIds: pick(memberIds, after),
          clusterUuid,
        };
        const leavingDown = () => undefined;
        for (const component of middleware) {
          // Kafka's leaving broker moves its own replicas off and stops; when it cannot be
          // reached the survivors do it (see the unregister step).
          const where = component === 'kafka' ? leaving : anchor;
          await middlewareStep(
            ctx,
            `decommission:${leaving}:${component}`,
            `decommission ${component}`,
            where,
            { component, operation: 'decommissionCluster', cluster: viewAfter, leaving: [leaving] },
            component === 'kafka' ? leavingDown : undefined,
          );
        }
        rb.state = `${leaving} is decommissioned from every middleware but may still run`;
        await stopAllStep(ctx, leaving, leavingDown);
        if (middleware.includes('kafka')) {
          await middlewareStep(
            ctx,
            `unregister:${leaving}:kafka`,
            `unregister ${leaving}'s kafka broker`,
            anchor,
            {
              component: 'kafka',
              operation: 'decommissionCluster',
              cluster: viewAfter,
              leaving: [leaving],
            },
          );
        }
        await resetNodeStep(
          ctx,
          leaving,
          `decommissionNodes: removed from [${s.membersBefore.join(', ')}]`,
          leavingDown,
        );
        await Promise.all(
          after.map((n) =>
            writeStateStep(
              ctx,
              `sync:${leaving}:${n}`,
              `record that ${leaving} left`,
              n,
              { ...memberState(viewAfter, [], lastMemberId), nodeIsMaster: n === anchor },
              `decommissionNodes: ${leaving} removed`,
            ),
          ),
        );
        rb.state = `${leaving} left; [${after.join(', ')}] are the members and record it`;
      }

      const finalView: ClusterViewInput = {
        nodes: survivors,
        decommissionNodes: [],
        memberIds: pick(memberIds, survivors),
        clusterUuid,
      };
      const sha = await prepareConfigSteps(
        ctx,
        finalMaster,
        finalView,
        survivors.filter((n) => n !== finalMaster),
        ':final',
      );
      for (const s of survivors) {
        if (s !== finalMaster) {
          await rb.step(
            `download:${s}`,
            {
              title: `download the configuration from ${finalMaster}`,
              node: s,
              waitingText: `waiting for master ${finalMaster} to serve ${s}'s archive`,
            },
            () =>
              nodeCalls(ctx, s, `download from ${finalMaster}`, true).downloadDistribution({
                master: finalMaster,
                ...(sha[s] ? { expectedSha256: sha[s] } : {}),
              }),
          );
        }
        await rb.step(
          `restart:${s}`,
          { title: 'restart every middleware (rolling)', node: s },
          async () => {
            const calls = nodeCalls(ctx, s, 'restart', true);
            for (const component of [...middleware].reverse()) {
              await calls.middlewareOperation({ component, operation: 'stopServer' });
            }
            for (const component of middleware) {
              await calls.middlewareOperation({
                component,
                operation: 'startServer',
                cluster: finalView,
              });
            }
          },
        );
        await checkHealthyStep(ctx, `health:${s}`, s);
        // The next member restarts only once this one has caught up: restarting the last in-sync
        // replica of a partition would take it offline.
        if (patched(inSyncPatch)) await inSyncStep(ctx, `in-sync:restart:${s}`, finalMaster);
      }
      if (patched(inSyncPatch))
        inSync = await inSyncStep(ctx, `in-sync:${finalMaster}`, finalMaster);
      await rb.emit('configuration.after-change', { nodes: survivors });
      rb.state = `[${survivors.join(', ')}] run the cluster and record it`;
    },
    new Webapps(ctx, [...members, ...input.add], input.nodes),
  );
  return result();
}
