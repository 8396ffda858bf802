import { z } from 'zod';
import { nodeAddressSchema, nodeListSchema } from './addresses.js';
import { standaloneAddress } from './cluster-file.js';
import { ClusterGuardError } from './errors.js';
import { planMembership, type MembershipKind, type MembershipPlan } from './membership.js';
import {
  analyzeQuorum,
  membershipMiddleware,
  quorumRefusal,
  type MembershipMiddleware,
} from './membership-runbooks.js';
import { clusterIdSchema } from './ping.js';

/**
 * The cluster guardian (seed 001 §3 end, §4): one workflow per cluster that compares, on a
 * timer, the desired membership with the one recorded in the master's cluster.json and starts
 * the membership runbook that reconciles them. Workflow-safe: no Node built-ins.
 */

/** One guardian per cluster: the id makes Temporal refuse a second one. */
export function guardianWorkflowId(clusterId: string): string {
  return `cg/${clusterId}/guardian`;
}

// --- the controller's HTTP API (seed 001 §6 ControllerCluster) --------------------------------

/** The Java service wrote Booleans; proxies and older controllers send strings or 0/1. */
const onlineFlag = z
  .union([z.boolean(), z.enum(['true', 'false', 'TRUE', 'FALSE', 'True', 'False']), z.number()])
  .nullish()
  .transform((v) =>
    v === undefined || v === null ? true : String(v).toLowerCase() !== 'false' && v !== 0,
  );

export const controllerClusterEntrySchema = z.looseObject({
  keyUuid: z.string().nullish(),
  clusterName: z.string().nullish(),
  isOnline: onlineFlag,
  controllerIp: nodeAddressSchema,
  clusterIndex: z.coerce.number().int().nonnegative(),
});

/** `GET <controllerUrl>` answers `{ output: { clusterIpList: [...] } }` (other keys are kept). */
export const controllerClusterSchema = z.looseObject({
  output: z.looseObject({
    clusterIpList: z.array(controllerClusterEntrySchema),
  }),
});
export type ControllerCluster = z.input<typeof controllerClusterSchema>;

export interface ControllerMembership {
  /** Members ordered by `clusterIndex`: index 0 first, so it is the desired master. */
  nodes: string[];
  /** Members the controller reports as offline: still members (offline is not removed). */
  offline: string[];
}

/**
 * The desired membership the controller describes. An answer that cannot be a membership (no
 * member, the same address or index twice) is refused as a whole: acting on half of it could
 * decommission healthy members.
 */
export function desiredFromController(raw: unknown): ControllerMembership {
  const parsed = controllerClusterSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
      .join('; ');
    throw new ClusterGuardError(
      'InvalidInput',
      `the controller's answer is not a ControllerCluster (output.clusterIpList[] with controllerIp ` +
        `and clusterIndex): ${problems}`,
    );
  }
  const list = [...parsed.data.output.clusterIpList].sort(
    (a, b) => a.clusterIndex - b.clusterIndex,
  );
  if (list.length === 0) {
    throw new ClusterGuardError(
      'InvalidInput',
      'the controller lists no cluster member (output.clusterIpList is empty): a cluster cannot ' +
        'have none, so the answer is ignored',
    );
  }
  const problems: string[] = [];
  list.forEach((e, i) => {
    const prev = list[i - 1];
    if (prev && prev.clusterIndex === e.clusterIndex) {
      problems.push(
        `clusterIndex ${e.clusterIndex} is given to both ${prev.controllerIp} and ${e.controllerIp}`,
      );
    }
    if (list.findIndex((x) => x.controllerIp === e.controllerIp) !== i) {
      problems.push(`${e.controllerIp} is listed twice`);
    }
  });
  if (problems.length > 0) {
    throw new ClusterGuardError(
      'InvalidInput',
      `the controller's member list is inconsistent, so it is ignored: ${problems.join('; ')}`,
    );
  }
  return {
    nodes: list.map((e) => e.controllerIp),
    offline: list.filter((e) => !e.isOnline).map((e) => e.controllerIp),
  };
}

// --- inputs -------------------------------------------------------------------------------

export const controllerSourceSchema = z
  .object({
    /** The controller's cluster endpoint, answering a ControllerCluster (http or https). */
    controllerUrl: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
    /** How long one poll may take, connecting included. */
    timeoutSeconds: z.number().int().min(1).max(300).default(10),
  })
  .strict();
export type ControllerSource = z.output<typeof controllerSourceSchema>;

/** The argument of the update `setMembership`. */
export const setMembershipSchema = z
  .object({
    /** The members, distinct addresses. */
    nodes: nodeListSchema,
    /**
     * Which member is the master; default `nodes[0]`. It is moved first. It must be one of
     * `nodes`; the master of a running cluster moves only when it leaves (see docs/guardian.md).
     */
    master: nodeAddressSchema.optional(),
    /** Why, for the state and the history. */
    reason: z.string().trim().max(500).optional(),
  })
  .strict()
  .superRefine((arg, ctx) => {
    if (arg.master !== undefined && !arg.nodes.includes(arg.master)) {
      ctx.addIssue({
        code: 'custom',
        path: ['master'],
        message: `${arg.master} is not one of nodes [${arg.nodes.join(', ')}]: the master must be a member`,
      });
    }
    if (arg.nodes.includes(standaloneAddress) && arg.nodes.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['nodes'],
        message: `${standaloneAddress} is the standalone placeholder, not a cluster member's address`,
      });
    }
  });
export type SetMembershipArg = z.input<typeof setMembershipSchema>;

/** The desired member list of a valid `setMembership` argument: the master first. */
export function desiredNodes(arg: z.output<typeof setMembershipSchema>): string[] {
  const master = arg.master ?? arg.nodes[0] ?? '';
  return [master, ...arg.nodes.filter((n) => n !== master)];
}

export const guardianOutcomes = [
  /** No desired membership yet: nothing to compare (nothing is read). */
  'no-desired',
  'in-sync',
  'reordered',
  'reconciling',
  'reconciled',
  /** The change would lose quorum: nothing done, event raised, guide in the details. */
  'unsafe',
  /** Another membership runbook holds `cg/<cluster>/membership`: tried again next check. */
  'membership-busy',
  /** The child failed; not retried for the same (actual, desired) until `reconcile`. */
  'failed',
  /** Reading cluster.json or polling the controller failed; tried again next check. */
  'error',
  /** Dry-run guardian: the child planned the change and changed nothing. */
  'planned',
] as const;
export type GuardianOutcome = (typeof guardianOutcomes)[number];

const isoSchema = z.string();
const childRunbooks = ['bootstrapCluster', 'joinNode', 'rejoinNode', 'decommissionNodes'] as const;
export type ChildRunbookName = (typeof childRunbooks)[number];

export const childRecordSchema = z.object({
  runbook: z.enum(childRunbooks),
  workflowId: z.string(),
  runId: z.string().optional(),
  dryRun: z.boolean(),
  input: z.record(z.string(), z.unknown()),
  startedAt: isoSchema,
  finishedAt: isoSchema.optional(),
  outcome: z.enum(['running', 'completed', 'refused', 'failed']),
  message: z.string().optional(),
});
export type ChildRecord = z.infer<typeof childRecordSchema>;

/** What a guardian carries from one run to the next (continue-as-new), and shows in `state`. */
export const guardianCarriedSchema = z.object({
  master: nodeAddressSchema,
  desired: z
    .object({
      nodes: nodeListSchema,
      from: z.enum(['input', 'update', 'controller']),
      at: isoSchema,
      reason: z.string().optional(),
      offline: z.array(z.string()).optional(),
    })
    .optional(),
  actual: z
    .object({
      nodes: z.array(z.string()),
      readAt: isoSchema,
      clusterConfigReady: z.boolean(),
      nodeConfigReady: z.boolean(),
    })
    .optional(),
  lastCheck: z
    .object({ at: isoSchema, outcome: z.enum(guardianOutcomes), message: z.string() })
    .optional(),
  lastChild: childRecordSchema.optional(),
  unsafe: z
    .object({
      reason: z.string(),
      guide: z.string(),
      since: isoSchema,
      actual: z.array(z.string()),
      desired: z.array(z.string()),
    })
    .optional(),
  /** `actual>desired` of a change that failed, was refused or was planned: not repeated. */
  settled: z.object({ key: z.string(), outcome: z.enum(guardianOutcomes) }).optional(),
  paused: z.object({ reason: z.string(), since: isoSchema }).optional(),
  /** Nodes whose agent restarted not ready (seed 001 §3) and asked for a rejoin. */
  pendingRejoins: z.array(nodeAddressSchema).default([]),
  /** Ticks of all runs so far. */
  totalTicks: z.number().int().nonnegative().default(0),
  /** Runs so far (1 for the first); each continue-as-new adds one. */
  run: z.number().int().positive().default(1),
  /** Newest last, at most `historyLimit`. */
  history: z.array(z.object({ at: isoSchema, what: z.string() })).default([]),
  /** Events raised so far (their counter keeps event ids unique across runs). */
  events: z.number().int().nonnegative().default(0),
});
export type GuardianCarried = z.output<typeof guardianCarriedSchema>;

export const guardianHistoryLimit = 20;

export const clusterGuardianInputSchema = z
  .object({
    clusterId: clusterIdSchema,
    /** The node whose cluster.json is the recorded membership; followed when the master moves. */
    master: nodeAddressSchema,
    /** The desired membership to start with (master first); or push it with `setMembership`. */
    desired: nodeListSchema.optional(),
    /** Poll the desired membership from the controller's HTTP API instead. */
    source: controllerSourceSchema.optional(),
    /** Seconds between checks (fractions allowed, for tests). */
    intervalSeconds: z.number().min(0.01).max(86_400).default(60),
    /** Children run as dry runs (they plan, change nothing) and webapps are left alone. */
    dryRun: z.boolean().default(false),
    /** Middleware for the children and the quorum check; default what the master enables. */
    middleware: z
      .array(z.enum(membershipMiddleware))
      .min(1)
      .transform((list) => membershipMiddleware.filter((m) => list.includes(m)))
      .optional(),
    stepAttempts: z.number().int().min(1).max(100).default(5),
    agentTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
    /** Continue-as-new after this many checks at the latest (or when Temporal suggests it). */
    maxTicksPerRun: z.number().int().min(10).max(2000).default(500),
    /** Set by the guardian itself when it continues as new; operators leave it out. */
    carried: guardianCarriedSchema.optional(),
  })
  .strict()
  .superRefine((input, ctx) => {
    if (input.desired && input.source) {
      ctx.addIssue({
        code: 'custom',
        path: ['desired'],
        message: 'give either desired or source (the controller decides), not both',
      });
    }
  });
export type ClusterGuardianInput = z.input<typeof clusterGuardianInputSchema>;
export type ClusterGuardianParams = z.output<typeof clusterGuardianInputSchema>;

/** The query `state`. */
export interface GuardianState extends GuardianCarried {
  clusterId: string;
  intervalSeconds: number;
  dryRun: boolean;
  source?: { controllerUrl: string };
  /** Checks in this run. */
  ticks: number;
  runningChild?: ChildRecord;
}

// --- the decision (seed 001 §4) --------------------------------------------------------------

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

/** What to do when seed 001 §4's last case (or any quorum loss) comes up. */
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
 * Seed 001 §4 through the membership planner: identical or reordered → nothing; a standalone
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
          : `the members are as desired in another order ([${plan.current.join(', ')}]): nothing to do (seed 001 §4)`,
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
    // Seed 001 §4: the guard service's supported changes have no growth of a formed cluster,
    // so one may be a controller fault; it is carried out, but said loudly.
    warnings.push(
      `growing the formed cluster [${plan.current.join(', ')}] by [${plan.add.join(', ')}] is ` +
        'not among the changes the old guard service expected (seed 001 §4): check that the ' +
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
