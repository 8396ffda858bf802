import type { Client, WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { z } from 'zod';
import { nodeAddressSchema } from '../contracts/addresses.js';
import { approveArgSchema, bundleWorkflowId, type BundlesView } from '../contracts/bundles.js';
import {
  abortUpdate,
  approveUpdate,
  bundlesQuery,
  pauseSignal,
  progressQuery,
  resumeSignal,
  retryStepUpdate,
  skipNodeUpdate,
} from '../contracts/messages.js';
import type { Progress } from '../contracts/progress.js';
import { checked } from '../contracts/validation.js';

/**
 * The messages every stepwise runbook answers (pause, resume, retryStep, skipNode, abort,
 * progress) and a rollout's own (approve, bundles), sent with the typed definitions the
 * workflows register (src/contracts/messages.ts). Arguments are checked before they are sent.
 */

const workflowIdSchema = z.string().min(1, 'expected a workflow id, e.g. cg/dev/membership');
export const retryStepArgSchema = z.object({ step: z.string().min(1).optional() }).strict();
export const skipNodeArgSchema = z
  .object({ node: nodeAddressSchema, reason: z.string().trim().min(1, 'give a reason') })
  .strict();
export const abortArgSchema = z
  .object({ reason: z.string().trim().min(1, 'give a reason') })
  .strict();
export { approveArgSchema };

/** The handle of a run by its workflow id (the latest run, or `runId`). */
export function handleOf(client: Client, workflowId: string, runId?: string): WorkflowHandle {
  return client.workflow.getHandle(checked(workflowIdSchema, workflowId, 'workflow id'), runId);
}

/** Signal `pause`: the runbook holds before its next step (steps under way finish). */
export async function pauseRunbook(
  client: Client,
  workflowId: string,
  reason?: string,
): Promise<void> {
  await handleOf(client, workflowId).signal(pauseSignal, ...(reason ? [reason] : []));
}

/** Signal `resume`. */
export async function resumeRunbook(client: Client, workflowId: string): Promise<void> {
  await handleOf(client, workflowId).signal(resumeSignal);
}

/** Sends update `def` with `arg` checked by `schema` first; resolves with the runbook's answer. */
async function update<A>(
  client: Client,
  workflowId: string,
  def: UpdateDefinition<string, [A]>,
  schema: z.ZodType<A>,
  arg: unknown,
): Promise<string> {
  const a = checked(schema, arg, `${def.name} argument`);
  return handleOf(client, workflowId).executeUpdate(def, { args: [a] });
}

/**
 * Update `retryStep`: the parked step (or `step`) runs again. Rejected, with the runbook's
 * reason, when nothing is parked (`WorkflowUpdateFailedError`).
 */
export const retryStep = (
  client: Client,
  workflowId: string,
  arg: z.input<typeof retryStepArgSchema> = {},
): Promise<string> => update(client, workflowId, retryStepUpdate, retryStepArgSchema, arg);

/** Update `skipNode`: the node's parked steps are skipped, when the runbook finds that safe. */
export const skipNode = (
  client: Client,
  workflowId: string,
  arg: z.input<typeof skipNodeArgSchema>,
): Promise<string> => update(client, workflowId, skipNodeUpdate, skipNodeArgSchema, arg);

/** Update `abort`: only while a step is parked or the runbook is paused; it then fails. */
export const abortRunbook = (
  client: Client,
  workflowId: string,
  arg: z.input<typeof abortArgSchema>,
): Promise<string> => update(client, workflowId, abortUpdate, abortArgSchema, arg);

/** Query `progress`. */
export async function getProgress(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<Progress> {
  return handleOf(client, workflowId, runId).query(progressQuery);
}

/**
 * Update `approve` of a rollout waiting after its canary batch: it goes on, or with `reject`
 * rolls back what it changed. Rejected when the rollout does not wait for an approval.
 */
export const approveRollout = (
  client: Client,
  workflowId: string,
  arg: z.input<typeof approveArgSchema> = {},
): Promise<string> => update(client, workflowId, approveUpdate, approveArgSchema, arg);

/** The `bundles` query of a bundle's running or finished rollout: phase and every node. */
export async function rolloutStatus(
  client: Client,
  clusterId: string,
  symbolicName: string,
): Promise<BundlesView> {
  return handleOf(client, bundleWorkflowId(clusterId, symbolicName)).query(bundlesQuery);
}
