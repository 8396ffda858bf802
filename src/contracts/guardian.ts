import { z } from 'zod';
import { nodeAddressSchema, nodeListSchema } from './addresses.js';
import { standaloneAddress } from './cluster-file.js';
import { ClusterGuardError } from './errors.js';
import { middlewareListSchema } from './membership-runbooks.js';
import { clusterIdSchema } from './ping.js';
import { lazySchema } from './validation.js';

/**
 * The cluster guardian (docs/design.md): one workflow per cluster that compares, on a
 * timer, the desired membership with the one recorded in the master's cluster.json and starts
 * the membership runbook that reconciles them. Workflow-safe: no Node built-ins.
 */

/** One guardian per cluster: the id makes Temporal refuse a second one. */
export function guardianWorkflowId(clusterId: string): string {
  return `cg/${clusterId}/guardian`;
}

// --- the controller's HTTP API (docs/design.md, ControllerCluster) --------------------------------

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
export const controllerClusterSchema = lazySchema(() =>
  z.looseObject({
    output: z.looseObject({
      clusterIpList: z.array(controllerClusterEntrySchema),
    }),
  }),
);
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

export const controllerSourceSchema = lazySchema(() =>
  z
    .object({
      /** The controller's cluster endpoint, answering a ControllerCluster (http or https). */
      controllerUrl: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
      /** How long one poll may take, connecting included. */
      timeoutSeconds: z.number().int().min(1).max(300).default(10),
    })
    .strict(),
);
export type ControllerSource = z.output<typeof controllerSourceSchema>;

/** The argument of the update `setMembership`. */
export const setMembershipSchema = lazySchema(() =>
  z
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
    }),
);
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
export const guardianCarriedSchema = lazySchema(() =>
  z.object({
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
    /** Nodes whose agent restarted not ready (docs/design.md) and asked for a rejoin. */
    pendingRejoins: z.array(nodeAddressSchema).default([]),
    /** Ticks of all runs so far. */
    totalTicks: z.number().int().nonnegative().default(0),
    /** Runs so far (1 for the first); each continue-as-new adds one. */
    run: z.number().int().positive().default(1),
    /** Newest last, at most `historyLimit`. */
    history: z.array(z.object({ at: isoSchema, what: z.string() })).default([]),
    /** Events raised so far (their counter keeps event ids unique across runs). */
    events: z.number().int().nonnegative().default(0),
  }),
);
export type GuardianCarried = z.output<typeof guardianCarriedSchema>;

export const guardianHistoryLimit = 20;

export const clusterGuardianInputSchema = lazySchema(() =>
  z
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
      middleware: middlewareListSchema.optional(),
      stepAttempts: z.number().int().min(1).max(100).default(5),
      agentTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
      /** Continue-as-new after this many checks at the latest (or when Temporal suggests it). */
      maxTicksPerRun: z.number().int().min(10).max(2000).default(500),
      /** Set by the guardian itself when it continues as new; operators leave it out. */
      carried: guardianCarriedSchema.optional(),
    })
    .strict()
    .refine((input) => !(input.desired && input.source), {
      path: ['desired'],
      message: 'give either desired or source (the controller decides), not both',
    }),
);
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
