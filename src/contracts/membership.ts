import { z } from 'zod';
import { nodeListSchema } from './addresses.js';
import { standaloneAddress } from './cluster-file.js';
import { ClusterGuardError } from './errors.js';

/**
 * Membership planning (docs/design.md): from the current member list to the desired one as a
 * sequence of steps that keeps a majority of the members up at every step.
 *
 * CockroachDB ranges and the ZooKeeper ensemble both need a majority of their voters to accept
 * a membership change. So:
 * - all additions come first, in one step, so that removals happen in the larger membership;
 * - removals happen one node per step, each leaving a strict majority of the membership before
 *   that step (`remaining >= quorumSize(before)`); a plan with a step that would not is refused;
 * - the current master, if removed, goes last: it serves the configuration archives the others
 *   download and answers their decommission-status polls (docs/design.md) until then.
 * The order of a step's `membersAfter` is the current order with additions appended, except the
 * last step's, which is `desired` itself, so that the master after the plan is `desired[0]`.
 */

export const membershipKinds = [
  'unchanged',
  'reordered',
  'bootstrap',
  'grow',
  'shrink',
  'replace',
] as const;
export type MembershipKind = (typeof membershipKinds)[number];

export const planStepSchema = z.object({
  action: z.enum(['add', 'remove']),
  nodes: z.array(z.string()),
  membersBefore: z.array(z.string()),
  membersAfter: z.array(z.string()),
});
export type PlanStep = z.infer<typeof planStepSchema>;

export const membershipPlanSchema = z.object({
  kind: z.enum(membershipKinds),
  current: z.array(z.string()),
  desired: z.array(z.string()),
  /** Nodes that become members, in desired order. */
  add: z.array(z.string()),
  /** Nodes that stop being members, in the order they are removed. */
  remove: z.array(z.string()),
  masterBefore: z.string(),
  masterAfter: z.string(),
  steps: z.array(planStepSchema),
  warnings: z.array(z.string()),
});
export type MembershipPlan = z.infer<typeof membershipPlanSchema>;

/** Members that must be up for a membership of `n` to make decisions: a strict majority. */
export function quorumSize(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** Adding never lowers the number of live voters; removing must leave a quorum of `before`. */
export function isSafeStep(step: PlanStep): boolean {
  return step.action === 'add' || step.membersAfter.length >= quorumSize(step.membersBefore.length);
}

/** The first step that would lose the majority, or undefined when the plan is safe. */
export function findUnsafeStep(
  plan: MembershipPlan,
): { index: number; step: PlanStep } | undefined {
  const index = plan.steps.findIndex((step) => !isSafeStep(step));
  const step = plan.steps[index];
  return step ? { index, step } : undefined;
}

/**
 * A node that has never joined a cluster carries the old guard service's placeholder address (docs/design.md,
 * "The old service's formats we keep": a node started alone has currentNode 127.0.0.1). It is nobody else's peer, so it is never
 * decommissioned: the node simply takes its cluster address.
 */
function isStandalonePlaceholder(address: string): boolean {
  return address === standaloneAddress || address.toLowerCase() === 'localhost';
}

function listText(nodes: readonly string[]): string {
  return `[${nodes.join(', ')}]`;
}

function validList(name: 'current' | 'desired', list: unknown): string[] {
  const result = nodeListSchema.safeParse(list);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const [index] = issue.path;
    if (typeof index === 'number' && Array.isArray(list)) {
      return `${name}[${index}] ${JSON.stringify(list[index])}: ${issue.message}`;
    }
    return issue.message;
  });
  throw new ClusterGuardError(
    'InvalidInput',
    `The ${name} membership ${JSON.stringify(list)} is invalid: ${problems.join('; ')}`,
  );
}

/** Current order, except that the current master goes last (see the module comment). */
function removalOrder(current: readonly string[], remove: ReadonlySet<string>): string[] {
  const [master] = current;
  const ordered = current.filter((n) => remove.has(n) && n !== master);
  if (master !== undefined && remove.has(master)) ordered.push(master);
  return ordered;
}

function buildSteps(
  current: string[],
  desired: string[],
  add: string[],
  remove: string[],
): PlanStep[] {
  const steps: PlanStep[] = [];
  let members = [...current];
  if (add.length > 0) {
    const after = [...members, ...add];
    steps.push({ action: 'add', nodes: add, membersBefore: members, membersAfter: after });
    members = after;
  }
  for (const node of remove) {
    const after = members.filter((n) => n !== node);
    steps.push({ action: 'remove', nodes: [node], membersBefore: members, membersAfter: after });
    members = after;
  }
  const last = steps.at(-1);
  if (last) last.membersAfter = desired;
  return steps;
}

function classify(
  current: string[],
  desired: string[],
  add: string[],
  remove: string[],
): MembershipKind {
  if (add.length === 0 && remove.length === 0) {
    return current.every((n, i) => n === desired[i]) ? 'unchanged' : 'reordered';
  }
  const [only] = current;
  // A standalone node forms a cluster (docs/design.md, "原来是单结点，现在是多结点"). Only when its
  // data stays: it is a member of the new cluster, or it is the placeholder and is taking its
  // address. A real standalone node that leaves is replaced instead, so its data is copied off.
  if (current.length === 1 && only !== undefined) {
    if (remove.length === 0 && desired.length > 1) return 'bootstrap';
    if (isStandalonePlaceholder(only) && !desired.includes(only)) return 'bootstrap';
  }
  if (remove.length === 0) return 'grow';
  if (add.length === 0) return 'shrink';
  return 'replace';
}

function planWarnings(plan: Omit<MembershipPlan, 'warnings'>): string[] {
  const { kind, current, desired, masterBefore, masterAfter } = plan;
  const warnings: string[] = [];
  const [desiredMaster = ''] = desired;
  if (kind === 'reordered' && masterBefore !== desiredMaster) {
    warnings.push(
      `The master would change from ${masterBefore} to ${desiredMaster} but the members are the ` +
        'same: nothing is done (docs/design.md), the master stays ' +
        `${masterBefore}. To move the master, change the membership.`,
    );
  }
  if (
    kind === 'bootstrap' &&
    isStandalonePlaceholder(masterBefore) &&
    !desired.includes(masterBefore)
  ) {
    warnings.push(
      `${masterBefore} is the standalone placeholder: it is not decommissioned, this node takes ` +
        `its address from ${listText(desired)}.`,
    );
  } else if (kind === 'bootstrap' && masterBefore !== masterAfter) {
    warnings.push(
      `${masterBefore} holds the standalone node's data but ${masterAfter} becomes the master: ` +
        `${masterAfter} creates the cluster and ${masterBefore} joins it, which wipes ` +
        `${masterBefore}'s data (docs/design.md). Put ${masterBefore} first, or back up first.`,
    );
  } else if (kind !== 'reordered' && kind !== 'unchanged' && masterBefore !== masterAfter) {
    warnings.push(`The master moves from ${masterBefore} to ${masterAfter}.`);
  }
  const addStep = plan.steps.find((s) => s.action === 'add');
  if (kind !== 'bootstrap' && addStep && addStep.nodes.length * 2 >= addStep.membersAfter.length) {
    warnings.push(
      `Adding ${addStep.nodes.length} nodes to ${current.length} makes the new nodes at least ` +
        `half of ${addStep.membersAfter.length} members: until every one of them has joined and ` +
        'is healthy the cluster has no majority to spare. Join them with a health check each.',
    );
  }
  if (desired.length === 2) {
    warnings.push(
      `The desired cluster ${listText(desired)} has 2 members and no fault tolerance: a majority ` +
        'of 2 is 2, so losing either node stops CockroachDB and ZooKeeper. Use 3 or more.',
    );
  }
  return warnings;
}

function recoveryGuide(plan: MembershipPlan): string {
  const lines = [
    'How to proceed:',
    '  - Change the membership in stages that each keep a majority: remove one node at a time ' +
      'and never go below 2 members by decommissioning.',
    '  - To replace nodes, list the replacements and the old nodes together first (the cluster ' +
      'grows), and remove the old nodes in a later change.',
  ];
  if (plan.desired.length === 1) {
    lines.push(
      '  - A single node cannot be reached by decommissioning: run backupCluster, set up the ' +
        'node standalone, and restoreCluster the backup onto it.',
    );
  }
  lines.push(
    '  - If a majority is already lost (nodes gone for good), the survivors cannot form a ' +
      'quorum: restore the latest backup archive into a new cluster with restoreCluster.',
    '  - Never delete data folders by hand on the surviving nodes: they may hold the only copy ' +
      'of the data.',
  );
  return lines.join('\n');
}

/** Throws UnsafeMembershipChange when a step of the plan would lose the majority. */
export function assertSafePlan(plan: MembershipPlan): void {
  const unsafe = findUnsafeStep(plan);
  if (!unsafe) return;
  const { index, step } = unsafe;
  const before = step.membersBefore.length;
  throw new ClusterGuardError(
    'UnsafeMembershipChange',
    `Refusing to change the membership from ${listText(plan.current)} to ` +
      `${listText(plan.desired)}: step ${index + 1} of ${plan.steps.length} (remove ` +
      `${step.nodes.join(', ')}) would leave ${step.membersAfter.length} of ${before} members, ` +
      `but ${quorumSize(before)} are needed for a majority; CockroachDB and ZooKeeper stop ` +
      `accepting changes without one.\n${recoveryGuide(plan)}`,
  );
}

/**
 * Plans the change from `current` to `desired` (each: distinct node addresses, master first).
 * Throws InvalidInput for an invalid list and UnsafeMembershipChange for a plan that would lose
 * the majority at some step.
 */
export function planMembership(
  current: readonly string[],
  desired: readonly string[],
): MembershipPlan {
  const cur = validList('current', current);
  const des = validList('desired', desired);
  const add = des.filter((n) => !cur.includes(n));
  const leaving = cur.filter((n) => !des.includes(n));
  const kind = classify(cur, des, add, leaving);
  // The placeholder of a bootstrapping node is renamed, not removed (see isStandalonePlaceholder).
  const remove = kind === 'bootstrap' ? [] : removalOrder(cur, new Set(leaving));
  const steps =
    kind === 'unchanged' || kind === 'reordered' ? [] : buildSteps(cur, des, add, remove);
  const base = {
    kind,
    current: cur,
    desired: des,
    add,
    remove,
    masterBefore: cur[0] ?? '',
    // A reorder is not carried out (docs/design.md), so the master stays.
    masterAfter: kind === 'reordered' ? (cur[0] ?? '') : (des[0] ?? ''),
    steps,
  };
  const plan: MembershipPlan = { ...base, warnings: planWarnings(base) };
  assertSafePlan(plan);
  return plan;
}
