import type { z } from 'zod';
import {
  backupClusterInputSchema,
  dataWorkflowId,
  exportDataInputSchema,
  importDataInputSchema,
  restoreClusterInputSchema,
  verifyBackupInputSchema,
  type BackupClusterResult,
  type ExportDataResult,
  type ImportDataResult,
  type RestoreClusterResult,
  type VerifyBackupResult,
} from './data-runbooks.js';
import { bundleWorkflowId, rolloutBundleInputSchema, type RolloutBundleResult } from './bundles.js';
import { clusterGuardianInputSchema, guardianWorkflowId } from './guardian.js';
import {
  bootstrapClusterInputSchema,
  decommissionNodesInputSchema,
  joinNodeInputSchema,
  membershipWorkflowId,
  rejoinNodeInputSchema,
  type MembershipRunbookResult,
} from './membership-runbooks.js';
import { pingClusterInputSchema, type PingClusterResult } from './ping.js';
import {
  scheduledBackupInputSchema,
  scheduledBackupWorkflowId,
  type ScheduledBackupResult,
} from './schedules.js';

/**
 * Every runbook, declared once: its workflow type, input schema, lane, workflow id rule, the
 * nodes it names in the `Nodes` search attribute, and its result type. The client's one starter,
 * the CLI and the workflows' opening call read it. Workflow-safe: no Node built-ins.
 */

/**
 * The lane decides the workflow id and so what a cluster runs at once: one membership runbook,
 * one data runbook, one guardian, one rollout per bundle; pings run side by side.
 */
export type Lane = 'membership' | 'data' | 'bundle' | 'guardian' | 'ping' | 'schedule';

/** What the id rule may use beyond the input: values the starter draws or is given. */
export interface IdContext {
  /** A few random characters, for runbooks that run side by side (ping, a dry-run rollout). */
  unique: string;
  /** rolloutBundle: the name `POST /v1/bundles` answered. */
  symbolicName?: string;
  /** scheduledBackup: the schedule's name. */
  scheduleName?: string;
}

export interface RunbookSpec<Name extends string, S extends z.ZodType, Result> {
  readonly name: Name;
  readonly lane: Lane;
  /** Built on first use and kept (see `memo`): a workflow pays for the schemas it uses only. */
  readonly input: () => S;
  readonly workflowId: (params: z.output<S>, ctx: IdContext) => string;
  /** The `Nodes` search attribute at start; undefined leaves it unset. */
  readonly nodes: (params: z.output<S>) => string[] | undefined;
  /** What the refusal of a second run says the operator can do (see the client's starter). */
  readonly busyHint?: string;
  /** Never read: carries the result type for the client's typed handles. */
  readonly result?: Result;
}

/** A getter that builds its value on the first call and answers the same one afterwards. */
export function memo<T>(build: () => T): () => T {
  let value: T | undefined;
  let built = false;
  return () => {
    if (!built) {
      value = build();
      built = true;
    }
    return value as T;
  };
}

function spec<Result>() {
  return <Name extends string, S extends z.ZodType>(
    s: Omit<RunbookSpec<Name, S, Result>, 'result'>,
  ): RunbookSpec<Name, S, Result> => s;
}

interface MembershipNodes {
  clusterId: string;
  nodes?: string[];
  node?: string;
  add?: string[];
}

const membership = <Name extends string, S extends z.ZodType>(name: Name, input: () => S) =>
  spec<MembershipRunbookResult>()({
    name,
    lane: 'membership',
    input,
    workflowId: (p) => membershipWorkflowId((p as MembershipNodes).clusterId),
    nodes: (p) => {
      const m = p as MembershipNodes;
      return [...(m.nodes ?? []), ...(m.node ? [m.node] : []), ...(m.add ?? [])];
    },
  });

const data =
  <Result>() =>
  <Name extends string, S extends z.ZodType>(name: Name, input: () => S) =>
    spec<Result>()({
      name,
      lane: 'data',
      input,
      workflowId: (p) => dataWorkflowId((p as { clusterId: string }).clusterId),
      nodes: (p) => {
        const { master } = p as { master?: string };
        return master ? [master] : undefined;
      },
    });

export const runbooks = {
  pingCluster: spec<PingClusterResult>()({
    name: 'pingCluster',
    lane: 'ping',
    input: () => pingClusterInputSchema,
    workflowId: (p, ctx) => `cg/${p.clusterId}/ping/${ctx.unique}`,
    nodes: (p) => p.nodes,
  }),
  bootstrapCluster: membership('bootstrapCluster', () => bootstrapClusterInputSchema),
  joinNode: membership('joinNode', () => joinNodeInputSchema),
  rejoinNode: membership('rejoinNode', () => rejoinNodeInputSchema),
  decommissionNodes: membership('decommissionNodes', () => decommissionNodesInputSchema),
  backupCluster: data<BackupClusterResult>()('backupCluster', () => backupClusterInputSchema),
  verifyBackup: data<VerifyBackupResult>()('verifyBackup', () => verifyBackupInputSchema),
  restoreCluster: data<RestoreClusterResult>()('restoreCluster', () => restoreClusterInputSchema),
  exportData: data<ExportDataResult>()('exportData', () => exportDataInputSchema),
  importData: data<ImportDataResult>()('importData', () => importDataInputSchema),
  scheduledBackup: spec<ScheduledBackupResult>()({
    name: 'scheduledBackup',
    lane: 'schedule',
    input: () => scheduledBackupInputSchema,
    workflowId: (p, ctx) => scheduledBackupWorkflowId(p.clusterId, ctx.scheduleName ?? 'default'),
    nodes: () => undefined,
  }),
  rolloutBundle: spec<RolloutBundleResult>()({
    name: 'rolloutBundle',
    lane: 'bundle',
    input: () => rolloutBundleInputSchema,
    workflowId: (p, ctx) => {
      const id = bundleWorkflowId(p.clusterId, ctx.symbolicName ?? '');
      // A dry run gets an id of its own, so it never collides with a running rollout.
      return p.dryRun ? `${id}/dry-run/${ctx.unique}` : id;
    },
    nodes: (p) => p.nodes,
    busyHint: 'a bundle rolls out once at a time: wait for that rollout, or approve or abort it',
  }),
  clusterGuardian: spec<never>()({
    name: 'clusterGuardian',
    lane: 'guardian',
    input: () => clusterGuardianInputSchema,
    workflowId: (p) => guardianWorkflowId(p.clusterId),
    nodes: (p) => p.desired ?? [p.master],
    busyHint:
      'a cluster has one guardian: change its desired membership with setMembership, ' +
      'or stop it first',
  }),
} as const;

export type Runbooks = typeof runbooks;
export type RunbookName = keyof Runbooks;
export type RunbookInput<N extends RunbookName> = z.input<ReturnType<Runbooks[N]['input']>>;
export type RunbookParams<N extends RunbookName> = z.output<ReturnType<Runbooks[N]['input']>>;
export type RunbookResult<N extends RunbookName> = NonNullable<Runbooks[N]['result']>;

export const membershipRunbookNames = [
  'bootstrapCluster',
  'joinNode',
  'rejoinNode',
  'decommissionNodes',
] as const satisfies readonly RunbookName[];
export type MembershipRunbookName = (typeof membershipRunbookNames)[number];

export const dataRunbookNames = [
  'backupCluster',
  'verifyBackup',
  'restoreCluster',
  'exportData',
  'importData',
] as const satisfies readonly RunbookName[];
export type DataRunbookName = (typeof dataRunbookNames)[number];
