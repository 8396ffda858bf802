import { executeChild, patched, uuid4 } from '@temporalio/workflow';
import {
  analyzeQuorum,
  assignMemberIds,
  joinWipes,
  kafkaClusterIdFromUuid,
  type BootstrapClusterInput,
  type ClusterViewInput,
  type MembershipRunbookResult,
  type PlannedStep,
  type RunbookPlan,
} from '../src/contracts/membership-runbooks.js';
import { quorumSize } from '../src/contracts/membership.js';
import { childJoinId, joinNode } from './join-node.js';
import {
  inSyncPatch,
  inSyncStep,
  middlewareStep,
  memberState,
  nodeCalls,
  planOrRefuse,
  packStep,
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

/**
 * Forms a cluster (docs/design.md): every node stops its middleware; the master (`nodes[0]`)
 * creates the cluster with its data, generates and zips every member's configuration and starts
 * as creator; the others join in parallel as child workflows; former members listed in
 * `decommissionNodes` are decommissioned; every member records the same membership.
 * A single node bootstraps without any HTTP call to itself (docs/design.md).
 */
export async function bootstrapCluster(
  rawInput: BootstrapClusterInput,
): Promise<MembershipRunbookResult> {
  const { input, ...base } = await openRunbook('bootstrapCluster', rawInput);
  const { clusterId, nodes } = input;
  const [master = ''] = nodes;
  const others = nodes.slice(1);
  const { rb } = base;
  const middleware = await resolveMiddleware(base, master, input.middleware);
  const ctx: MembershipContext = { ...base, middleware };

  // The master keeps its data (docs/design.md), so it keeps its ids and Kafka cluster id too.
  const masterFile = await readState(ctx, master, "read the master's cluster.json");
  const view: ClusterViewInput = {
    nodes,
    decommissionNodes: input.decommissionNodes,
    memberIds: assignMemberIds(
      nodes,
      masterFile.cluster.memberIds ?? {},
      masterFile.cluster.lastMemberId,
    ),
    clusterUuid: masterFile.cluster.clusterUuid ?? kafkaClusterIdFromUuid(uuid4()),
  };
  const membership = planOrRefuse([master], nodes);
  // Bootstrapping again a cluster whose data the master kept (docs/design.md: members that were
  // there before rejoin, `currentClusterIsEntirelyNew=false`). Gated by a patch: runs recorded
  // before it took the other branch.
  const former = masterFile.cluster.nodes;
  const restart =
    masterFile.cluster.clusterUuid !== undefined &&
    former.length > 1 &&
    former.includes(master) &&
    patched('bootstrap-restarts-kept-cluster-in-parallel');
  const rejoins = new Set(restart ? others.filter((n) => former.includes(n)) : []);

  const planned: PlannedStep[] = [
    ...nodes.map((n) => ({ id: `stop:${n}`, title: 'stop all middleware (forced)', node: n })),
    ...middleware.map((mw) => ({
      id: `create:${master}:${mw}`,
      title: `create the ${mw} cluster (keeps the master's data)`,
      node: master,
    })),
    ...(others.length
      ? [
          {
            id: `pack:${master}`,
            title: `zip the configuration of ${others.join(', ')}`,
            node: master,
          },
        ]
      : []),
    { id: `record:${master}`, title: 'record the new cluster in cluster.json', node: master },
    ...others.map((n) => ({
      id: `join:${n}`,
      title: `${rejoins.has(n) ? 'rejoin' : 'join'} (child workflow ${childJoinId(n)})`,
      node: n,
      wipes: joinWipes(rejoins.has(n), middleware),
    })),
    ...input.decommissionNodes.flatMap((d) => [
      {
        id: `decommission:${d}`,
        title: `decommission the former member ${d} (CockroachDB, Kafka)`,
        node: master,
      },
      { id: `stop:${d}`, title: 'stop all middleware (forced)', node: d },
      {
        id: `reset:${d}`,
        title: 'wipe and make standalone',
        node: d,
        wipes: middleware.map((m) => `${m}: data and configuration`),
      },
    ]),
    ...nodes.map((n) => ({ id: `sync:${n}`, title: 'record the final membership', node: n })),
    { id: `in-sync:${master}`, title: 'wait until every replica is in sync', node: master },
  ];
  const plan: RunbookPlan = {
    runbook: 'bootstrapCluster',
    clusterId,
    master,
    middleware,
    membership,
    steps: planned,
    quorum: analyzeQuorum(membership, middleware),
    wipes: [
      ...others.map((n) => ({ node: n, what: joinWipes(rejoins.has(n), middleware) })),
      ...input.decommissionNodes.map((n) => ({
        node: n,
        what: middleware.map((m) => `${m}: data and configuration`),
      })),
    ],
    warnings: membership.warnings,
  };
  let inSync: string[] | undefined;
  const result = (): MembershipRunbookResult => ({
    runbook: 'bootstrapCluster',
    clusterId,
    dryRun: input.dryRun,
    plan,
    nodes: input.dryRun ? masterFile.cluster.nodes : nodes,
    skipped: rb.skipped,
    ...(inSync ? { inSync } : {}),
  });
  if (input.dryRun) return result();
  rb.tracker.addSteps(planned);
  rb.eventNodes = nodes;

  await runSteps(
    rb,
    {
      started: { nodes, decommissionNodes: input.decommissionNodes },
      completed: () => ({ nodes, skipped: rb.skipped }),
    },
    async () => {
      await rb.emit('configuration.before-init', { nodes });
      await Promise.all(nodes.map((n) => stopAllStep(ctx, n)));
      rb.state = `every node's middleware is stopped; no data was changed`;

      const createOnMaster = async () => {
        await rb.emit('server.before-start', { node: master, middleware }, master);
        for (const component of middleware) {
          await middlewareStep(
            ctx,
            `create:${master}:${component}`,
            `create the ${component} cluster (keeps the master's data)`,
            master,
            { component, operation: 'createCluster', cluster: view },
          );
        }
        await rb.emit('server.after-start', { node: master, middleware }, master);
      };
      const recordOnMaster = async () => {
        await writeStateStep(
          ctx,
          `record:${master}`,
          'record the new cluster in cluster.json',
          master,
          {
            ...memberState(view, input.decommissionNodes, masterFile.cluster.lastMemberId),
            nodeIsMaster: true,
            nodeIsRejoin: false,
          },
          `bootstrapCluster: created [${nodes.join(', ')}]`,
        );
        await rb.emit('configuration.after-init', { nodes }, master);
      };
      const joined = new Set<string>([master]);
      const joinOthers = (sha: Record<string, string>) =>
        Promise.all(
          others.map((n) =>
            rb.step(
              `join:${n}`,
              {
                title: `${rejoins.has(n) ? 'rejoin' : 'join'} (child workflow ${childJoinId(n)})`,
                node: n,
                // Without this node the others must still hold a majority of the members.
                canSkip: () =>
                  joined.size >= quorumSize(nodes.length)
                    ? undefined
                    : `only ${joined.size} of ${nodes.length} members have joined; ${quorumSize(nodes.length)} are needed for a majority`,
              },
              async () => {
                const r = await executeChild(joinNode, {
                  workflowId: childJoinId(n),
                  args: [
                    {
                      clusterId,
                      node: n,
                      master,
                      cluster: view,
                      ...(rejoins.has(n) ? { rejoin: true } : {}),
                      ...(sha[n] ? { expectedSha256: sha[n] } : {}),
                      ...(masterFile.cluster.lastMemberId === undefined
                        ? {}
                        : { lastMemberId: masterFile.cluster.lastMemberId }),
                      middleware,
                      stepAttempts: input.stepAttempts,
                      agentTimeoutSeconds: input.agentTimeoutSeconds,
                    },
                  ],
                });
                joined.add(n);
                return r;
              },
            ),
          ),
        );

      if (restart) {
        // The master's kept data belongs to a formed cluster: its Kafka controllers (and
        // CockroachDB ranges) need a majority of the former members to start at all, so the
        // others must come back while the master creates, not after it.
        const sha = await prepareConfigSteps(ctx, master, view, others);
        rb.state = `every node's middleware is stopped; the master ${master} has packed their configuration`;
        await Promise.all([createOnMaster(), joinOthers(sha)]);
        await recordOnMaster();
      } else {
        await createOnMaster();
        const sha = await packStep(ctx, master, others);
        await recordOnMaster();
        rb.state =
          `the master ${master} runs the new cluster` +
          (others.length ? `; ${others.join(', ')} may not have joined yet` : '');
        await joinOthers(sha);
      }
      rb.state = `[${[...joined].join(', ')}] run the new cluster`;

      for (const d of input.decommissionNodes) {
        const unreachable = () => undefined;
        await rb.step(
          `decommission:${d}`,
          { title: `decommission the former member ${d} (CockroachDB, Kafka)`, node: master },
          async () => {
            // The master kept its data, so CockroachDB and Kafka may still count the former
            // member; the new ZooKeeper ensemble never had it.
            const calls = nodeCalls(ctx, master, `decommission ${d}`, true);
            for (const component of middleware.filter((m) => m !== 'zookeeper')) {
              await calls.middlewareOperation({
                component,
                operation: 'decommissionCluster',
                cluster: { ...view, decommissionNodes: [d] },
                leaving: [d],
              });
            }
          },
        );
        await stopAllStep(ctx, d, unreachable);
        await resetNodeStep(
          ctx,
          d,
          `bootstrapCluster: decommissioned from [${nodes.join(', ')}]`,
          unreachable,
        );
      }

      await Promise.all(
        nodes.map((n) =>
          writeStateStep(
            ctx,
            `sync:${n}`,
            'record the final membership',
            n,
            memberState(view, [], masterFile.cluster.lastMemberId),
            `bootstrapCluster: [${nodes.join(', ')}] formed`,
          ),
        ),
      );
      rb.state = `[${nodes.join(', ')}] run the cluster and record it`;
      if (patched(inSyncPatch)) inSync = await inSyncStep(ctx, `in-sync:${master}`, master);
    },
    new Webapps(ctx, nodes),
  );
  return result();
}
