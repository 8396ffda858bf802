import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { AdmissionActivities } from '../../activities/admission-activities.js';
import {
  admissionAnswerSignal,
  admissionKindOf,
  admissionReleaseSignal,
  admissionWorkflowId,
  type AdmissionAnswer,
} from '../../src/contracts/admission.js';
import type { RunbookName } from '../../src/contracts/catalog.js';
import type { Runbook } from './runbook.js';

/** The admission workflow this run asked; `releaseAdmission` clears it. */
let asked: { workflowId: string } | undefined;

/**
 * Asks the cluster's admission workflow whether this runbook may run beside what runs now
 * (docs/design.md "Admission"), and waits for the answer: granted, or queued then granted
 * (`waitForCluster`); a refusal fails the run with `ClusterBusy`, naming the holder. Dry runs
 * change nothing and do not ask. Runs recorded before admission existed replay without it.
 */
export async function admit(
  name: RunbookName,
  input: {
    clusterId: string;
    dryRun?: boolean;
    waitForCluster?: boolean;
    nodes?: string[];
  },
  nodes: string[],
  rb: Runbook,
): Promise<void> {
  const kind = admissionKindOf[name];
  if (!kind || input.dryRun || !patched('cluster-admission')) return;
  const { clusterId } = input;
  const info = workflowInfo();
  let answer: AdmissionAnswer | undefined;
  setHandler(admissionAnswerSignal, (a) => {
    // A late "queued" never overrides the final answer.
    if (!(a.kind === 'queued' && answer && answer.kind !== 'queued')) answer = a;
  });
  const { requestAdmission } = proxyActivities<AdmissionActivities>({
    taskQueue: info.taskQueue,
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '10s' },
  });
  const delivered = await requestAdmission({
    clusterId,
    request: {
      workflowId: info.workflowId,
      runId: info.runId,
      runbook: rb.name,
      kind,
      nodes,
      leaving: name === 'decommissionNodes' ? (input.nodes ?? []) : [],
      wait: input.waitForCluster ?? false,
      ...(info.parent ? { parent: info.parent.workflowId } : {}),
      requestedAt: new Date().toISOString(),
    },
  });
  // Runs recorded before the activity answered the id ran on the default task queue.
  asked = { workflowId: delivered?.workflowId ?? admissionWorkflowId(clusterId) };
  // Set by the signal handler: read through a function, so that narrowing does not stick.
  const current = (): AdmissionAnswer | undefined => answer;
  await condition(() => current() !== undefined);
  const first = current();
  if (first?.kind === 'queued') {
    rb.tracker.addSteps([{ id: 'admission', title: `cluster ${clusterId} free for ${rb.name}` }]);
    rb.tracker.update('admission', {
      status: 'waiting',
      lastError: `waiting for ${first.behind.join(', ')} to end (waitForCluster)`,
    });
    await condition(() => current()?.kind !== 'queued');
    if (current()?.kind === 'granted') rb.tracker.update('admission', { status: 'completed' });
  }
  const final = current();
  if (final?.kind === 'refused') {
    asked = undefined;
    rb.tracker.finish('failed');
    throw ApplicationFailure.nonRetryable(final.message, 'ClusterBusy');
  }
}

/** Tells the admission workflow this run ended; nothing when it never asked. */
export async function releaseAdmission(): Promise<void> {
  if (!asked) return;
  const admission = asked.workflowId;
  asked = undefined;
  const { workflowId, runId } = workflowInfo();
  // Also when the run was cancelled: the release must still go out.
  await CancellationScope.nonCancellable(async () => {
    try {
      await getExternalWorkflowHandle(admission).signal(admissionReleaseSignal, {
        workflowId,
        runId,
      });
    } catch (err) {
      // No admission workflow runs: nothing is held.
      log.info('admission release not delivered', { error: String(err) });
    }
  });
}

/**
 * The runbook `run`, releasing its admission however it ends (returns, fails, is cancelled).
 * A terminated or timed-out run cannot: the admission workflow drops it at its next check.
 */
export function releasing<A extends unknown[], R>(
  run: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  const wrapped = async (...args: A): Promise<R> => {
    try {
      return await run(...args);
    } finally {
      await releaseAdmission();
    }
  };
  // The workflow type is the export's name; a child started by reference reads `name`.
  Object.defineProperty(wrapped, 'name', { value: run.name });
  return wrapped;
}
