import { standaloneAddress } from './cluster-file.js';
import { ClusterGuardError } from './errors.js';
import { planMembership, type MembershipKind, type MembershipPlan } from './membership.js';
import { analyzeQuorum, quorumRefusal, type MembershipMiddleware } from './membership-runbooks.js';
import type { ChildRunbookName, GuardianState } from './guardian.js';

/**
 * What the cluster guardian decides at a check (docs/design.md): nothing, refuse an unsafe change
 * with a recovery guide, or the membership runbooks that reconcile actual with desired; and
 * the Markdown of its state for the Web UI. Workflow-safe: no Node built-ins.
 */

// --- the decision (docs/design.md) --------------------------------------------------------------

export interface ChildRunbook {
  runbook: ChildRunbookName;
  input: Record<string, unknown>;
}

export type GuardianDecision =
  | { action: 'none'; kind: 'unchanged' | 'reordered'; message: string; warnings: string[] }
  | { action: 'unsafe'; reason: string; guide: string; plan?: MembershipPlan }
  | {
      action: 'start';
      kind: Exclude<MembershipKind, 'unchanged' | 'reordered'>;
      plan: MembershipPlan;
      children: ChildRunbook[];
      /** Where webapps are stopped before the change and started after it. */
      webappNodes: string[];
      warnings: string[];
      message: string;
    };

export interface ChildOptions {
  clusterId: string;
  dryRun?: boolean;
  middleware?: MembershipMiddleware[];
  stepAttempts?: number;
  agentTimeoutSeconds?: number;
}

/** What to do when the old guard service's last case (docs/design.md) (or any quorum loss) comes up. */
export function unsafeGuide(actual: readonly string[], desired: readonly string[]): string {
  const lines = [
    `The guardian changed nothing: the membership stays [${actual.join(', ')}] and the webapps keep running.`,
    '',
    'To recover:',
    `1. Check that [${desired.join(', ')}] is really wanted: a controller that lost nodes from its list (or a mistyped setMembership) looks like this.`,
    '2. If it is a mistake, set the desired membership back (setMembership, or fix the controller); the guardian goes on by itself.',
    '3. If nodes must go, remove them in stages that each keep a majority (one at a time), and add replacements first: list old and new nodes together, then remove the old ones in a later change.',
    '4. CockroachDB needs 3 live nodes: to go below 3, run backupCluster, build the smaller cluster with bootstrapCluster, then restoreCluster.',
    '5. If a majority is already lost for good, restore the latest backup into a new cluster with restoreCluster.',
    'Never delete data folders by hand on surviving nodes: they may hold the only copy of the data.',
  ];
  return lines.join('\n');
}

function splitGuide(message: string): { reason: string; guide: string } {
  const at = message.indexOf('\nHow to proceed:');
  return at < 0
    ? { reason: message, guide: '' }
    : { reason: message.slice(0, at), guide: message.slice(at + 1) };
}

function common(o: ChildOptions): Record<string, unknown> {
  return {
    clusterId: o.clusterId,
    dryRun: o.dryRun ?? false,
    ...(o.middleware ? { middleware: o.middleware } : {}),
    ...(o.stepAttempts === undefined ? {} : { stepAttempts: o.stepAttempts }),
    ...(o.agentTimeoutSeconds === undefined ? {} : { agentTimeoutSeconds: o.agentTimeoutSeconds }),
  };
}

/**
 * The old guard service (docs/design.md) through the membership planner: identical or reordered → nothing; a standalone
 * node that becomes a cluster → bootstrapCluster; growth → one joinNode per new node; shrink →
 * decommissionNodes; replacement → decommissionNodes with `add` (replacements join first). A
 * change that loses a majority, or a middleware quorum for the given middleware, → nothing,
 * with the reason and the recovery guide.
 */
export function decideReconciliation(
  actual: readonly string[],
  desired: readonly string[],
  middleware: readonly MembershipMiddleware[],
  options: ChildOptions,
): GuardianDecision {
  let plan: MembershipPlan;
  try {
    plan = planMembership(actual, desired);
  } catch (err) {
    if (err instanceof ClusterGuardError && err.type === 'UnsafeMembershipChange') {
      const { reason, guide } = splitGuide(err.message);
      return {
        action: 'unsafe',
        reason,
        guide: `${unsafeGuide(actual, desired)}${guide ? `\n\nThe planner adds:\n${guide}` : ''}`,
      };
    }
    throw err;
  }
  if (plan.kind === 'unchanged' || plan.kind === 'reordered') {
    return {
      action: 'none',
      kind: plan.kind,
      message:
        plan.kind === 'unchanged'
          ? `the members [${plan.current.join(', ')}] are as desired`
          : `the members are as desired in another order ([${plan.current.join(', ')}]): nothing to do (docs/design.md)`,
      warnings: plan.warnings,
    };
  }
  const refusal = quorumRefusal(analyzeQuorum(plan, middleware));
  if (refusal) {
    return {
      action: 'unsafe',
      reason: `Changing [${plan.current.join(', ')}] to [${plan.desired.join(', ')}]: ${refusal}`,
      guide: unsafeGuide(actual, desired),
      plan,
    };
  }
  const master = plan.masterBefore;
  const base = common(options);
  let children: ChildRunbook[];
  if (plan.kind === 'bootstrap') {
    children = [{ runbook: 'bootstrapCluster', input: { ...base, nodes: plan.desired } }];
  } else if (plan.kind === 'grow') {
    children = plan.add.map((node) => ({
      runbook: 'joinNode' as const,
      input: { ...base, node, master },
    }));
  } else {
    const masterLeaves = plan.remove.includes(master);
    children = [
      {
        runbook: 'decommissionNodes',
        input: {
          ...base,
          nodes: plan.remove,
          add: plan.add,
          master,
          ...(masterLeaves ? { newMaster: plan.masterAfter } : {}),
        },
      },
    ];
  }
  const webappNodes = [...plan.current, ...plan.add].filter((n) => n !== standaloneAddress);
  const warnings = [...plan.warnings];
  const [desiredMaster] = plan.desired;
  if (plan.kind === 'grow' && plan.current.length > 1) {
    // The old guard service (docs/design.md): the guard service's supported changes have no growth of a formed cluster,
    // so one may be a controller fault; it is carried out, but said loudly.
    warnings.push(
      `growing the formed cluster [${plan.current.join(', ')}] by [${plan.add.join(', ')}] is ` +
        'not among the changes the old guard service expected (docs/design.md): check that the ' +
        'controller meant it',
    );
  }
  if (plan.kind === 'grow' && desiredMaster !== master) {
    warnings.push(
      `joinNode keeps the master ${master}; ${desiredMaster ?? '?'} does not become master`,
    );
  }
  return {
    action: 'start',
    kind: plan.kind,
    plan,
    children,
    webappNodes,
    warnings,
    message: `${plan.kind} [${plan.current.join(', ')}] → [${plan.desired.join(', ')}]: ${children
      .map((c) => c.runbook)
      .join(', ')}`,
  };
}

/** The key of an (actual, desired) pair: a failed or refused change is not repeated for it. */
export function reconciliationKey(actual: readonly string[], desired: readonly string[]): string {
  return `${actual.join(',')}>${desired.join(',')}`;
}

/** True when the actual membership is the standalone placeholder or names another master. */
export function followMaster(current: string, actual: readonly string[]): string {
  const [first] = actual;
  return first && first !== standaloneAddress ? first : current;
}

// --- the Web UI's details -------------------------------------------------------------------

function cell(text: string | undefined): string {
  return (text ?? '').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

const list = (nodes: readonly string[] | undefined) => (nodes ? `[${nodes.join(', ')}]` : '—');

/** The Markdown under "Current details" in the Web UI. */
export function renderGuardianMarkdown(state: GuardianState): string {
  const lines = [
    `**clusterGuardian** of cluster \`${state.clusterId}\` — ${
      state.paused ? `paused (${cell(state.paused.reason)})` : 'watching'
    }, every ${state.intervalSeconds} s${state.dryRun ? ', dry run' : ''}`,
    '',
    '| | |',
    '|---|---|',
    `| desired | ${list(state.desired?.nodes)}${state.desired ? ` from ${state.desired.from}` : ''} |`,
    `| actual (cluster.json of ${state.master}) | ${list(state.actual?.nodes)} |`,
    `| last check | ${state.lastCheck ? `${state.lastCheck.at}: **${state.lastCheck.outcome}** ${cell(state.lastCheck.message)}` : '—'} |`,
    `| running child | ${state.runningChild ? `${state.runningChild.runbook} \`${state.runningChild.workflowId}\`${state.runningChild.dryRun ? ' (dry run)' : ''}` : '—'} |`,
    `| last child | ${state.lastChild ? `${state.lastChild.runbook}: ${state.lastChild.outcome} ${cell(state.lastChild.message)}` : '—'} |`,
    `| checks | ${state.totalTicks} in ${state.run} run(s) |`,
  ];
  const health = Object.entries(state.health ?? {});
  if (health.length > 0) {
    lines.push('', '| node | health | since |', '|---|---|---|');
    for (const [node, h] of health)
      lines.push(
        `| ${node} | ${h.healthy ? 'healthy' : `**unhealthy**: ${cell(h.problems.join('; '))}`} | ${h.since} |`,
      );
  }
  if (state.unsafe) {
    lines.push(
      '',
      `### ⚠️ Unsafe membership change refused (since ${state.unsafe.since})`,
      '',
      state.unsafe.reason,
      '',
      '```',
      state.unsafe.guide,
      '```',
    );
  }
  return lines.join('\n');
}
