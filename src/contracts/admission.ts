/**
 * Cluster-wide admission (docs/design.md "Admission"): which runbook kinds may run beside which
 * on one cluster, decided by one table, and the messages between a runbook and its cluster's
 * admission workflow (`cg/<cluster>/admission`). Workflow-safe: no Node built-ins.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { orchestratorTaskQueue } from './addresses.js';
import type { RunbookName } from './catalog.js';

/** What a runbook does to a cluster, as far as running beside another one goes. */
export const admissionKinds = [
  'membership',
  'restore',
  'import',
  'backup',
  'export',
  'verify',
  'rollout',
] as const;
export type AdmissionKind = (typeof admissionKinds)[number];

/**
 * The kind of each runbook that asks for admission. pingCluster only reads and never asks; the
 * guardian and scheduledBackup hold nothing themselves: the runbooks they start ask.
 */
export const admissionKindOf: Partial<Record<RunbookName, AdmissionKind>> = {
  bootstrapCluster: 'membership',
  joinNode: 'membership',
  rejoinNode: 'membership',
  decommissionNodes: 'membership',
  restoreCluster: 'restore',
  importData: 'import',
  backupCluster: 'backup',
  exportData: 'export',
  verifyBackup: 'verify',
  rolloutBundle: 'rollout',
};

/**
 * The compatibility table: `compatible[a]` lists the kinds that may run while a runbook of kind
 * `a` holds the cluster. It is symmetric. A membership change, a restore and an import change
 * what every other runbook reads or writes, so each runs alone; backups, exports, verifications
 * and rollouts (of other bundles) only read the data or touch the application's bundles, so they
 * share the cluster. The README and docs/design.md show it as a table.
 */
export const compatible: Record<AdmissionKind, readonly AdmissionKind[]> = {
  membership: [],
  restore: [],
  import: [],
  backup: ['backup', 'export', 'verify', 'rollout'],
  export: ['backup', 'export', 'verify', 'rollout'],
  verify: ['backup', 'export', 'verify', 'rollout'],
  rollout: ['backup', 'export', 'verify', 'rollout'],
};

/**
 * `cg/<cluster>/admission`. The admission workflow runs on the task queue of the runbooks that
 * ask, so orchestrators on another task queue (tests give each file its own) get one of their
 * own, `cg/<cluster>/admission@<task queue>`, instead of one no worker of theirs serves.
 */
export function admissionWorkflowId(clusterId: string, taskQueue = orchestratorTaskQueue): string {
  const id = `cg/${clusterId}/admission`;
  return taskQueue === orchestratorTaskQueue ? id : `${id}@${taskQueue}`;
}

/** A runbook asks to run (signal `admission.request`). */
export interface AdmissionRequest {
  workflowId: string;
  runId: string;
  runbook: string;
  kind: AdmissionKind;
  /** The nodes it names (its `Nodes` search attribute). */
  nodes: string[];
  /** decommissionNodes: the nodes that leave; no rollout may target them. */
  leaving: string[];
  /** Queue behind the holders instead of failing at once (input `waitForCluster`). */
  wait: boolean;
  /** Its parent's workflow id: a child of a holder runs under its parent's admission. */
  parent?: string;
  requestedAt: string;
}

/** A runbook that holds (part of) the cluster. */
export type AdmissionHolder = Omit<AdmissionRequest, 'wait' | 'parent' | 'requestedAt'> & {
  since: string;
};

/** The admission workflow's answer to a request (signal `admission.answer` to the runbook). */
export type AdmissionAnswer =
  | { kind: 'granted'; at: string }
  | { kind: 'queued'; behind: string[]; at: string }
  | { kind: 'refused'; holder: string; holderRunbook: string; message: string; at: string };

export interface AdmissionState {
  clusterId: string;
  holders: AdmissionHolder[];
  queue: AdmissionRequest[];
  /** Holders dropped because they ended without releasing (terminated, timed out, ...). */
  dropped: { workflowId: string; runbook: string; status: string; at: string }[];
}

export const admissionRequestSignal = defineSignal<[AdmissionRequest]>('admission.request');
export const admissionReleaseSignal =
  defineSignal<[{ workflowId: string; runId: string }]>('admission.release');
export const admissionAnswerSignal = defineSignal<[AdmissionAnswer]>('admission.answer');
export const admissionStateQuery = defineQuery<AdmissionState>('admission');

/** Why `request` may not run beside `holder`, or undefined when it may. */
export function conflict(
  request: Pick<AdmissionRequest, 'runbook' | 'kind' | 'nodes'>,
  holder: Pick<AdmissionHolder, 'runbook' | 'kind' | 'leaving' | 'workflowId'>,
): { reason: string; final: boolean } | undefined {
  if (request.kind === 'rollout') {
    const leaving = request.nodes.filter((n) => holder.leaving.includes(n));
    if (leaving.length) {
      // Waiting would not help: once the decommission is done the node is gone.
      return {
        reason: `${leaving.join(', ')} ${leaving.length === 1 ? 'is' : 'are'} leaving the cluster (${holder.runbook} ${holder.workflowId}); a rollout never targets a leaving node`,
        final: true,
      };
    }
  }
  if (compatible[holder.kind].includes(request.kind)) return undefined;
  return {
    reason: `${request.runbook} (${request.kind}) may not run beside ${holder.runbook} (${holder.kind})`,
    final: false,
  };
}

/** What the admission workflow does with a request, given the holders and the queue ahead. */
export type AdmissionDecision =
  | { kind: 'grant' }
  | { kind: 'queue'; behind: string[] }
  | { kind: 'refuse'; holder: AdmissionHolder | AdmissionRequest; reason: string; final: boolean };

export function decideAdmission(
  clusterId: string,
  request: AdmissionRequest,
  holders: readonly AdmissionHolder[],
  ahead: readonly AdmissionRequest[],
): AdmissionDecision {
  const blocking: { by: AdmissionHolder | AdmissionRequest; reason: string }[] = [];
  for (const h of holders) {
    if (h.workflowId === request.workflowId) continue;
    const c = conflict(request, h);
    if (c?.final) return { kind: 'refuse', holder: h, reason: c.reason, final: true };
    if (c) blocking.push({ by: h, reason: c.reason });
  }
  // A request queued earlier goes first: a later one that conflicts with it waits too.
  for (const q of ahead) {
    const c = conflict(request, { ...q, leaving: q.leaving, workflowId: q.workflowId });
    if (c && !c.final) blocking.push({ by: q, reason: `${c.reason}, which waits before it` });
  }
  const [first] = blocking;
  if (!first) return { kind: 'grant' };
  if (request.wait) return { kind: 'queue', behind: blocking.map((b) => b.by.workflowId) };
  return {
    kind: 'refuse',
    holder: first.by,
    reason: `${first.reason} on cluster ${clusterId}`,
    final: false,
  };
}

/** The refusal's message: what was refused, who holds the cluster, and what to do. */
export function refusalMessage(
  clusterId: string,
  request: Pick<AdmissionRequest, 'runbook' | 'workflowId'>,
  holder: Pick<AdmissionHolder, 'workflowId' | 'runbook'>,
  reason: string,
  final: boolean,
): string {
  const head =
    `${request.runbook} ${request.workflowId} was not started on cluster ${clusterId}: ${reason}. ` +
    `${holder.runbook} ${holder.workflowId} holds the cluster. Nothing was changed. `;
  return final
    ? `${head}Start it again without the leaving nodes`
    : `${head}Wait for it to end (query progress on ${holder.workflowId}) or abort it, then ` +
        'start again; or start with `waitForCluster: true` to queue behind it';
}
