import { z } from 'zod';
import { nodeAddressSchema, nodeListSchema } from './addresses.js';
import type { BundleViewRow } from './bundle-view.js';
import { clusterIdSchema } from './ping.js';
import { lazySchema } from './validation.js';

/**
 * Bundle rollout (issue 6, seeds 000/002/003/004): identities, inputs and results of
 * `rolloutBundle`, what the bundle activities exchange, and the pure planning rules (batches,
 * what to roll back). Workflow-safe: no Node built-ins.
 */

/** OSGi symbolic-name: dotted tokens of letters, digits, `_` and `-`; safe as a file name. */
export const symbolicNamePattern = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
/** OSGi version: major[.minor[.micro[.qualifier]]]. */
export const bundleVersionPattern = /^\d{1,9}(\.\d{1,9}(\.\d{1,9}(\.[A-Za-z0-9_-]+)?)?)?$/;
export const sha256Pattern = /^[0-9a-f]{64}$/;

export const sha256Schema = z
  .string()
  .trim()
  .transform((s) => s.toLowerCase())
  .pipe(z.string().regex(sha256Pattern, 'expected a sha256 in hex (64 characters)'));

export const symbolicNameSchema = z
  .string()
  .max(255)
  .regex(symbolicNamePattern, 'expected an OSGi symbolic name such as com.example.reports');

/** A health check is named, never given: commands and URLs come from each agent's config. */
export const healthCheckNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const healthCheckNameSchema = z
  .string()
  .regex(healthCheckNamePattern, 'expected the name of a health check in the agents’ config');

/** What the store knows of a bundle, read from the artifact itself. */
export interface BundleMeta {
  symbolicName: string;
  version: string;
  sha256: string;
  bytes: number;
  /** When this agent stored it (upload or fetch). */
  storedAt: string;
  /** The file name it was uploaded as, for people; never used as a path. */
  fileName?: string;
}

/** One installed bundle of a node (docs/design.md, which version each node runs, queryable). */
export interface InstalledBundle {
  symbolicName: string;
  version: string;
  sha256: string;
  installedAt: string;
  /** The workflow run that installed it (rollouts of a bundle share their workflow id). */
  workflowId?: string;
  runId?: string;
  /** What was installed before, for a rollback; null when nothing was. */
  previous: { version: string; sha256: string } | null;
  /**
   * On a node that runs Apache Felix (inspectBundle only): whether the framework reports this
   * version ACTIVE with its components active, and why not. Unset elsewhere: the record counts.
   */
  running?: { ok: boolean; detail?: string };
}

/** The workflow id of a bundle's rollouts: one rollout per bundle and cluster at a time. */
export function bundleWorkflowId(clusterId: string, symbolicName: string): string {
  return `cg/${clusterId}/bundle/${symbolicName}`;
}

export const rolloutBundleInputSchema = lazySchema(() =>
  z
    .object({
      clusterId: clusterIdSchema,
      /** The artifact, as `POST /v1/bundles` answered; its symbolic name and version come from it. */
      sha256: sha256Schema,
      /**
       * The nodes to install on, in rollout order. Default: every member of the cluster that the
       * cluster.json of `master` describes.
       */
      nodes: nodeListSchema.optional(),
      /** A member whose cluster.json names the members; needed when `nodes` is left out. */
      master: nodeAddressSchema.optional(),
      /**
       * The agent the bundle was uploaded to, when it is not one of the nodes. Every node that
       * already holds the artifact in its store serves it too.
       */
      source: nodeAddressSchema.optional(),
      /** Nodes installed at once after the canary. */
      batchSize: z.number().int().min(1).max(100).default(1),
      /** Nodes of a first batch, after which the rollout waits for the `approve` update. */
      canary: z.number().int().min(1).max(100).optional(),
      /** Failed nodes tolerated; one more stops the rollout and rolls back what it changed. */
      maxFailures: z.number().int().min(0).max(100).default(0),
      /** A health check configured on the agents (`bundles.healthChecks.<name>`). */
      healthCheck: healthCheckNameSchema.optional(),
      /** Plans and reports what would be done; changes nothing and may run under any id. */
      dryRun: z.boolean().default(false),
      /**
       * Install over a higher version that a node's framework runs. Without it such a node's step
       * fails (nothing is changed there) and the rollout stops as for any failure.
       */
      allowDowngrade: z.boolean().default(false),
      /** Attempts of a fetch-and-install before it counts as a failed node. */
      stepAttempts: z.number().int().min(1).max(100).default(3),
      /** How long an agent may leave a step unclaimed before `progress` shows its node unreachable. */
      agentTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
      /**
       * When another runbook holds the cluster (docs/design.md "Admission"): queue behind it and
       * start when it ends, instead of failing at once with ClusterBusy.
       */
      waitForCluster: z.boolean().default(false),
    })
    .strict()
    .refine((input) => input.nodes || input.master, {
      path: ['nodes'],
      message: 'name the nodes to install on, or a master whose cluster.json lists the members',
    }),
);

export type RolloutBundleInput = z.input<typeof rolloutBundleInputSchema>;
export type RolloutBundleParams = z.output<typeof rolloutBundleInputSchema>;

/** Argument of the `approve` update, sent while the rollout waits after its canary batch. */
export const approveArgSchema = lazySchema(() =>
  z
    .object({
      /** Who approved, for the result and the history. */
      by: z.string().trim().min(1).max(200).optional(),
      /** Set to refuse the canary instead: the rollout rolls back what it changed. */
      reject: z.string().trim().min(1).max(1000).optional(),
    })
    .strict(),
);
export type ApproveArg = z.input<typeof approveArgSchema>;

// --- planning -----------------------------------------------------------------------------------

export interface RolloutPlan {
  /** Nodes already at this version and hash (docs/design.md): nothing is done there. */
  upToDate: string[];
  /** The rest, batch by batch; the first is the canary when there is one. */
  batches: string[][];
  canary: boolean;
}

/**
 * Which nodes to skip and how to batch the rest. Order is kept: the canary is taken from the
 * front, then batches of `batchSize`.
 */
export function planRollout(
  nodes: readonly string[],
  installed: ReadonlyMap<string, { sha256: string; version: string } | undefined>,
  target: { sha256: string; version: string },
  options: { batchSize: number; canary?: number },
): RolloutPlan {
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
    throw new Error('batchSize must be an integer ≥ 1');
  }
  const upToDate: string[] = [];
  const todo: string[] = [];
  for (const n of nodes) {
    const i = installed.get(n);
    if (i && i.sha256 === target.sha256 && i.version === target.version) upToDate.push(n);
    else todo.push(n);
  }
  const batches: string[][] = [];
  let rest = todo;
  const canary = options.canary !== undefined && todo.length > 0;
  if (canary) {
    batches.push(rest.slice(0, options.canary));
    rest = rest.slice(options.canary);
  }
  for (let i = 0; i < rest.length; i += options.batchSize) {
    batches.push(rest.slice(i, i + options.batchSize));
  }
  return { upToDate, batches, canary };
}

/** What one node's install step reported. */
export interface NodeInstall {
  node: string;
  /** `installed`: the deploy folder changed; `current`: it already held this version. */
  outcome: 'installed' | 'current';
  previous: { version: string; sha256: string } | null;
  health?: HealthResult;
}

export interface HealthResult {
  name: string;
  ok: boolean;
  detail: string;
  attempts: number;
}

/**
 * The nodes to roll back after a stop: every node this rollout changed, each to what it had
 * before, in reverse order of change.
 */
export function planRollback(
  changed: readonly NodeInstall[],
): { node: string; to: { version: string; sha256: string } | null }[] {
  return changed
    .filter((c) => c.outcome === 'installed')
    .map((c) => ({ node: c.node, to: c.previous }))
    .reverse();
}

/** True when the failures seen so far exceed what the rollout tolerates. */
export function exceedsFailures(failures: number, maxFailures: number): boolean {
  return failures > maxFailures;
}

// --- activities' inputs and results -------------------------------------------------------------

export interface InspectBundleInput {
  sha256: string;
  healthCheck?: string;
}

export interface InspectBundleResult {
  node: string;
  /** The artifact in this node's store, if it holds it. */
  stored?: BundleMeta;
  /** Every bundle installed on this node. */
  installed: InstalledBundle[];
  /** False when the named health check is not configured on this node. */
  healthCheckKnown: boolean;
}

export interface InstallBundleInput {
  sha256: string;
  symbolicName: string;
  version: string;
  /** Agents holding the artifact, tried in order; the node's own store is tried first. */
  sources: string[];
  healthCheck?: string;
  workflowId: string;
  /** Tells a retry of this run's own install from a node that was already current. */
  runId: string;
  /** The workflow's clock, the same on every retry. */
  datetime: string;
  /** Install even when the node's framework runs a higher version. */
  allowDowngrade?: boolean;
}

export interface RollbackBundleInput {
  symbolicName: string;
  /** The version to restore; null removes the bundle. */
  to: { version: string; sha256: string } | null;
  /** The version being rolled back: a node that holds another one is left alone. */
  from: { version: string; sha256: string };
  sources: string[];
  workflowId: string;
  runId: string;
  datetime: string;
}

export interface RollbackBundleResult {
  node: string;
  restored: { version: string; sha256: string } | null;
  /** False when the node no longer held the version being rolled back. */
  changed: boolean;
}

// --- result -------------------------------------------------------------------------------------

export interface NodeRolloutReport {
  node: string;
  status: 'installed' | 'skipped-current' | 'failed' | 'rolled-back' | 'not-started';
  previous?: { version: string; sha256: string } | null;
  detail?: string;
}

export interface RolloutBundleResult {
  runbook: 'rolloutBundle';
  clusterId: string;
  symbolicName: string;
  version: string;
  sha256: string;
  dryRun: boolean;
  /** `rolled-back`: failures exceeded maxFailures (or the canary was rejected). */
  outcome: 'completed' | 'rolled-back' | 'planned';
  plan: RolloutPlan;
  nodes: NodeRolloutReport[];
  failures: number;
  approvedBy?: string;
  reason?: string;
}

/** The `bundles` query: the rollout's view of every node, updated as it goes. */
export interface BundlesView {
  symbolicName?: string;
  version?: string;
  sha256: string;
  phase: 'inspecting' | 'installing' | 'waiting-for-approval' | 'rolling-back' | 'done';
  nodes: {
    node: string;
    before?: { version: string; sha256: string } | null;
    status: NodeRolloutReport['status'] | 'installing';
    detail?: string;
  }[];
  /** After a completed rollout: node × bundle as the frameworks report it (docs/bundles.md). */
  table?: BundleViewRow[];
  /** Why the version could not be recorded as the cluster's desired one. */
  desiredError?: string;
}
