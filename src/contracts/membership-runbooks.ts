import { z } from 'zod';
import { membershipMiddleware as middleware } from './components.js';
import { nodeAddressSchema, nodeListSchema } from './addresses.js';
import { planMembership, quorumSize, type MembershipPlan } from './membership.js';
import { clusterIdSchema } from './ping.js';
import { lazySchema } from './validation.js';

/**
 * Inputs, plans and results of the membership runbooks (bootstrapCluster, joinNode, rejoinNode,
 * decommissionNodes), and the quorum analysis they share. Workflow-safe: no Node built-ins.
 */

/**
 * The middleware a membership runbook orchestrates, in the order they are created, joined and
 * started (docs/design.md, lists them in this order). decommissionNodes removes a node from them
 * in the same order, CockroachDB first: its data needs the longest to move.
 */
export const membershipMiddleware = middleware;
export type MembershipMiddleware = (typeof membershipMiddleware)[number];

/** CockroachDB keeps 3 replicas of every range: fewer live nodes cannot hold them. */
export const cockroachReplicationFactor = 3;

/** The workflow id every membership runbook of a cluster shares (DESIGN: one at a time). */
export function membershipWorkflowId(clusterId: string): string {
  return `cg/${clusterId}/membership`;
}

/** The same as ClusterView in src/middleware/kit/types.ts, as a schema for workflow inputs. */
export const clusterViewSchema = z.object({
  nodes: nodeListSchema,
  decommissionNodes: z.array(nodeAddressSchema),
  memberIds: z.record(z.string(), z.number().int().positive()),
  clusterUuid: z.string().min(1),
});
export type ClusterViewInput = z.infer<typeof clusterViewSchema>;

/** Some of the middleware, in the order the runbooks orchestrate them. */
export const middlewareListSchema = z
  .array(z.enum(membershipMiddleware))
  .min(1, 'expected at least one middleware')
  .transform((list) => membershipMiddleware.filter((m) => list.includes(m)));

const runbookOptions = {
  clusterId: clusterIdSchema,
  /**
   * Which middleware the runbook orchestrates; default: those the master's agent has enabled
   * (`middleware.enabled` in its config).
   */
  middleware: middlewareListSchema.optional(),
  /** Compute and return the plan; change nothing (CLI `--plan`). */
  dryRun: z.boolean().default(false),
  /**
   * Attempts of a step before the runbook parks and waits for an operator (`retryStep`,
   * `skipNode`, `abort`). Transient failures within these attempts are retried with backoff.
   */
  stepAttempts: z.number().int().min(1).max(100).default(5),
  /**
   * How long a node's agent may leave a step unclaimed before `progress` shows the node as
   * unreachable; the runbook keeps waiting either way.
   */
  agentTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
  /**
   * When another runbook holds the cluster (docs/design.md "Admission"): queue behind it and
   * start when it ends, instead of failing at once with ClusterBusy.
   */
  waitForCluster: z.boolean().default(false),
};

export const bootstrapClusterInputSchema = lazySchema(() =>
  z
    .object({
      ...runbookOptions,
      /** The members; `nodes[0]` is the master and creates the cluster. */
      nodes: nodeListSchema,
      /** Former members to decommission once the others have joined (docs/design.md). */
      decommissionNodes: z.array(nodeAddressSchema).default([]),
    })
    .strict()
    .superRefine((input, ctx) => {
      const dup = input.decommissionNodes.find((n, i) => input.decommissionNodes.indexOf(n) !== i);
      if (dup) {
        ctx.addIssue({ code: 'custom', path: ['decommissionNodes'], message: `duplicate ${dup}` });
      }
      const both = input.decommissionNodes.filter((n) => input.nodes.includes(n));
      if (both.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['decommissionNodes'],
          message: `${both.join(', ')} cannot be both a member and decommissioned`,
        });
      }
    }),
);
export type BootstrapClusterInput = z.input<typeof bootstrapClusterInputSchema>;
export type BootstrapClusterParams = z.output<typeof bootstrapClusterInputSchema>;

export const joinNodeInputSchema = lazySchema(() =>
  z
    .object({
      ...runbookOptions,
      /** The node that joins. */
      node: nodeAddressSchema,
      /**
       * The master to join. Default: the master in the node's own cluster.json (a node that was
       * a member and comes back); a new node needs it.
       */
      master: nodeAddressSchema.optional(),
      /** Keep data where the middleware allows it (docs/design.md: CockroachDB keeps, others wipe). */
      rejoin: z.boolean().default(false),
      /**
       * Set by bootstrapCluster for its children: the membership the master created and the
       * archive it packed for this node. Operators leave it out.
       */
      cluster: clusterViewSchema.optional(),
      expectedSha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/)
        .optional(),
      /** Set by bootstrapCluster with `cluster`: the highest member id ever given. */
      lastMemberId: z.number().int().nonnegative().optional(),
    })
    .strict(),
);
export type JoinNodeInput = z.input<typeof joinNodeInputSchema>;
export type JoinNodeParams = z.output<typeof joinNodeInputSchema>;

export const rejoinNodeInputSchema = lazySchema(() =>
  z
    .object({
      ...runbookOptions,
      node: nodeAddressSchema,
      master: nodeAddressSchema.optional(),
    })
    .strict(),
);
export type RejoinNodeInput = z.input<typeof rejoinNodeInputSchema>;

export const decommissionNodesInputSchema = lazySchema(() =>
  z
    .object({
      ...runbookOptions,
      /** Members that leave. The master may leave only when `add` or the others name a new one. */
      nodes: z.array(nodeAddressSchema).min(1, 'expected at least one node to decommission'),
      /** Replacements: join first, then the removals (docs/design.md), so a majority stays up. */
      add: z.array(nodeAddressSchema).default([]),
      /** The current master; default: the master named by the first leaving node's cluster.json. */
      master: nodeAddressSchema.optional(),
      /** Required when the master leaves: the survivor (or added node) that becomes master. */
      newMaster: nodeAddressSchema.optional(),
    })
    .strict()
    .superRefine((input, ctx) => {
      const dup = (list: string[]) => list.filter((n, i) => list.indexOf(n) !== i);
      for (const [key, list] of [
        ['nodes', input.nodes],
        ['add', input.add],
      ] as const) {
        const d = dup(list);
        if (d.length) ctx.addIssue({ code: 'custom', path: [key], message: `duplicate ${d[0]}` });
      }
      if (input.newMaster && input.nodes.includes(input.newMaster)) {
        ctx.addIssue({
          code: 'custom',
          path: ['newMaster'],
          message: `${input.newMaster} is leaving; the new master must stay`,
        });
      }
      const both = input.add.filter((n) => input.nodes.includes(n));
      if (both.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['add'],
          message: `${both.join(', ')} cannot be both added and decommissioned`,
        });
      }
    }),
);
export type DecommissionNodesInput = z.input<typeof decommissionNodesInputSchema>;
export type DecommissionNodesParams = z.output<typeof decommissionNodesInputSchema>;

// --- plans -------------------------------------------------------------------------------------

/** One row of the quorum analysis: a middleware before and after one plan step. */
export interface QuorumCheck {
  step: number;
  action: 'add' | 'remove';
  nodes: string[];
  middleware: MembershipMiddleware;
  membersBefore: number;
  membersAfter: number;
  /** Members that must be up after the step (majority, replication factor). */
  needed: number;
  /** Members known to be running after the step (live facts), when they were checked. */
  liveAfter?: number;
  ok: boolean;
  note: string;
}

/** Live facts of the running cluster that the pre-check weighs. */
export interface QuorumFacts {
  /** Per middleware: the members where it runs and is healthy. */
  live?: Partial<Record<MembershipMiddleware, string[]>>;
  /** Kafka: the largest replication factor of any topic. */
  kafkaMaxReplicationFactor?: number;
}

/**
 * Every middleware before and after every step of `plan`. Adding never loses a quorum; a removal
 * needs, per middleware:
 * - CockroachDB: at least 3 live nodes after it (replication factor 3), counted from live facts;
 * - ZooKeeper and the KRaft controllers: a strict majority of the voters before it;
 * - Kafka brokers: as many as the largest topic replication factor.
 */
export function analyzeQuorum(
  plan: MembershipPlan,
  middleware: readonly MembershipMiddleware[],
  facts: QuorumFacts = {},
): QuorumCheck[] {
  const checks: QuorumCheck[] = [];
  plan.steps.forEach((step, index) => {
    for (const mw of middleware) {
      const before = step.membersBefore.length;
      const after = step.membersAfter.length;
      const live = facts.live?.[mw];
      const liveAfter = live ? step.membersAfter.filter((n) => live.includes(n)).length : undefined;
      const base = {
        step: index + 1,
        action: step.action,
        nodes: step.nodes,
        middleware: mw,
        membersBefore: before,
        membersAfter: after,
        ...(liveAfter === undefined ? {} : { liveAfter }),
      };
      if (step.action === 'add') {
        checks.push({
          ...base,
          needed: quorumSize(after),
          ok: true,
          note: `${step.nodes.join(', ')} join${step.nodes.length === 1 ? 's' : ''}; nothing is removed`,
        });
        continue;
      }
      const counted = liveAfter ?? after;
      let needed: number;
      let what: string;
      if (mw === 'cockroach') {
        needed = cockroachReplicationFactor;
        what = `CockroachDB keeps ${cockroachReplicationFactor} replicas of every range`;
      } else if (mw === 'zookeeper') {
        needed = quorumSize(before);
        what = `ZooKeeper needs a majority of its ${before} voters to reconfigure`;
      } else {
        const rf = facts.kafkaMaxReplicationFactor;
        needed = Math.max(quorumSize(before), rf ?? 0);
        what =
          `the KRaft controllers need a majority of ${before}` +
          (rf === undefined ? '' : ` and topics with ${rf} replicas need ${rf} brokers`);
      }
      const ok = counted >= needed;
      const countText =
        liveAfter === undefined ? `${after} members remain` : `${liveAfter} live members remain`;
      checks.push({
        ...base,
        needed,
        ok,
        note: `${what}: ${countText}, ${needed} needed${ok ? '' : ' — refused'}`,
      });
    }
  });
  return checks;
}

/** The first failing row, as one sentence with what to do instead. */
export function quorumRefusal(checks: readonly QuorumCheck[]): string | undefined {
  const bad = checks.find((c) => !c.ok);
  if (!bad) return undefined;
  const next =
    bad.middleware === 'cockroach'
      ? 'Add a node first (decommissionNodes with `add`, or joinNode), then remove.'
      : bad.liveAfter !== undefined && bad.liveAfter < bad.membersAfter
        ? 'Start the middleware on the stopped members (or rejoin them), then try again.'
        : 'Remove fewer nodes at a time, or add replacements first.';
  return (
    `step ${bad.step} (${bad.action} ${bad.nodes.join(', ')}) is unsafe for ${bad.middleware}: ` +
    `${bad.note}. Nothing was changed. ${next}`
  );
}

/** One step of a runbook, as the plan and `progress` show it. */
export interface PlannedStep {
  id: string;
  title: string;
  node?: string;
  /** What this step deletes on its node. */
  wipes?: string[];
}

export interface RunbookPlan {
  runbook: string;
  clusterId: string;
  master: string;
  middleware: MembershipMiddleware[];
  membership: MembershipPlan;
  steps: PlannedStep[];
  quorum: QuorumCheck[];
  /** Per node: what is wiped there. */
  wipes: { node: string; what: string[] }[];
  warnings: string[];
}

/** A runbook's plan; its quorum analysis and warnings follow from its membership change. */
export function runbookPlan(
  p: Omit<RunbookPlan, 'quorum' | 'warnings'> & { quorum?: QuorumCheck[] },
): RunbookPlan {
  return {
    runbook: p.runbook,
    clusterId: p.clusterId,
    master: p.master,
    middleware: p.middleware,
    membership: p.membership,
    steps: p.steps,
    quorum: p.quorum ?? analyzeQuorum(p.membership, p.middleware),
    wipes: p.wipes,
    warnings: p.membership.warnings,
  };
}

/** Steps skipped by an operator (`skipNode`), with the reason given. */
export type SkippedSteps = { step: string; node?: string; reason: string }[];

export interface MembershipRunbookResult {
  runbook: string;
  clusterId: string;
  dryRun: boolean;
  plan: RunbookPlan;
  /** The membership after the runbook (unchanged on a dry run). */
  nodes: string[];
  skipped: SkippedSteps;
  /** A dry run of an unsafe change: why the real run would be refused (see `plan.quorum`). */
  refusal?: string;
  /**
   * What the runbook waited for before it reported done, one line per middleware: every Kafka
   * partition led and fully in sync, every CockroachDB range fully replicated, every ZooKeeper
   * voter serving. Missing on a dry run and on runs recorded before the wait existed.
   */
  inSync?: string[];
}

/** What a join or rejoin wipes on the joining node, per middleware (docs/design.md). */
export function joinWipes(rejoin: boolean, middleware: readonly MembershipMiddleware[]): string[] {
  return middleware.map((mw) => {
    if (mw === 'cockroach')
      return rejoin ? 'cockroach: nothing (rejoin keeps the store)' : 'cockroach: store';
    // A member's own data is never emptied: see docs/design.md, "Data safety".
    if (mw === 'zookeeper')
      return rejoin
        ? "zookeeper: nothing while its data is this ensemble's (synced from the leader); another ensemble's data"
        : 'zookeeper: data (taken from the leader)';
    return rejoin
      ? 'kafka: nothing while it is formatted for this cluster as the same node (it catches up); else its data'
      : 'kafka: data (messages copied back from the others)';
  });
}

/**
 * Keeps every current member's id and gives each new member the next unused one, so that a
 * survivor's ZooKeeper `myid` / Kafka `node.id` never changes across a membership change.
 * `floor` is the highest id ever given in this cluster (cluster.json `lastMemberId`): a new
 * member never gets the id of one that left, whose broker or voter the others may still know.
 */
export function assignMemberIds(
  nodes: readonly string[],
  previous: Readonly<Record<string, number>> = {},
  floor = 0,
): Record<string, number> {
  const ids: Record<string, number> = {};
  const used = new Set<number>();
  for (const node of nodes) {
    const id = previous[node];
    if (id !== undefined && !used.has(id)) {
      ids[node] = id;
      used.add(id);
    }
  }
  let next = Math.max(0, floor, ...Object.values(previous), ...used) + 1;
  for (const node of nodes) {
    if (ids[node] !== undefined) continue;
    while (used.has(next)) next++;
    ids[node] = next;
    used.add(next);
  }
  return ids;
}

/**
 * A Kafka cluster id (Kafka's Uuid text form: 16 bytes, unpadded base64url) from a random UUID,
 * so that a workflow can make one deterministically with `uuid4()`. Ids Kafka reserves (all
 * zero, …0001) or that start with '-' cannot come out of a version-4 UUID's layout except for
 * the leading '-', which is mapped to 'A'.
 */
export function kafkaClusterIdFromUuid(uuid: string): string {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error(`not a UUID: ${uuid}`);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const bytes = Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16));
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(value >> bits) & 63] ?? '';
    }
  }
  out += alphabet[(value << (6 - bits)) & 63] ?? '';
  return out.startsWith('-') ? `A${out.slice(1)}` : out;
}

/** Plans a membership change (re-exported for runbooks so they import one module). */
export { planMembership };
