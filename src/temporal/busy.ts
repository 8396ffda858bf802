import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { ClusterGuardError, type ErrorType } from '../contracts/errors.js';

/**
 * Turns Temporal's refusal to start a second run under a cluster's runbook id into an error
 * that names the runbook holding the id, so the operator knows what to wait for or abort.
 * Any other error is rethrown as it is.
 */
export async function refuseWhileRunning(
  client: Client,
  err: unknown,
  what: { runbook: string; clusterId: string; workflowId: string; kind: string; type: ErrorType },
): Promise<never> {
  if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  let running = `a ${what.kind} runbook`;
  try {
    const d = await client.workflow.getHandle(what.workflowId).describe();
    running = `${d.type} (run ${d.runId}, started ${d.startTime.toISOString()})`;
  } catch {
    // the refusal stands without the details
  }
  throw new ClusterGuardError(
    what.type,
    `cannot start ${what.runbook} on cluster ${what.clusterId}: ${running} is still running as ` +
      `${what.workflowId}, and a cluster runs one ${what.kind} runbook at a time. Wait for it, ` +
      'or look at its progress (query `progress`) and finish or abort it first.',
    { cause: err },
  );
}
