import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import { progressQuery } from '../../src/contracts/messages.js';
import { stepStatus, waitForProgress, type Stack } from './stack.js';

/**
 * SIGKILLs of the processes a runbook depends on, in the middle of a run, for the e2e files:
 * the orchestrator, and the agent of the node that works on a step while its activity runs
 * there. Each restarts what it killed.
 */

/** Polls `check` every 100 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** SIGKILLs the orchestrator while the run is going on, and starts it again. */
export async function killOrchestrator(stack: Stack, handle: WorkflowHandle): Promise<void> {
  await stack.killOrchestrator();
  const { status } = await handle.describe();
  assert.equal(status.name, 'RUNNING', `${handle.workflowId} was still running at the kill`);
  await sleep(500);
  await stack.startOrchestrator();
}

/**
 * The highest attempt in which an activity behind the data step `<op>:<node>:<component>` was
 * started, from the run's history (that activity's summary is `<op>Data <component> on <node>`).
 */
export async function finalAttempt(handle: WorkflowHandle, step: string): Promise<number> {
  const [op, node, component] = step.split(':');
  const summary = `${op}Data ${component} on ${node}`;
  const scheduled = new Set<string>();
  let attempt = 0;
  for (const e of (await handle.fetchHistory()).events ?? []) {
    const meta = e.userMetadata?.summary;
    if (e.activityTaskScheduledEventAttributes && meta) {
      if (defaultPayloadConverter.fromPayload(meta) === summary) scheduled.add(String(e.eventId));
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started && scheduled.has(String(started.scheduledEventId)))
      attempt = Math.max(attempt, started.attempt ?? 0);
  }
  return attempt;
}

export interface AgentKill<T> {
  result: T;
  /** From the SIGKILL until the run's result. */
  recoveredMs: number;
  /** The attempt of the step's activity that completed it (2 or more: the kill cut one off). */
  attempt: number;
  /** Lines the restarted agent logged, for what it said about the interrupted work. */
  agentLines: string[];
}

/**
 * SIGKILLs the agent of the node of `step` (`<op>:<node>:<component>`) while the step runs and
 * its activity is claimed there, once `inside` (when given) says the work is part done; restarts
 * the agent, runs `meanwhile` (the step waits for its heartbeat timeout then), waits for the
 * run's result, and checks that the step's activity completed in a later attempt than the one
 * the kill cut off.
 */
export async function agentKilledMidStep<T>(
  stack: Stack,
  handle: WorkflowHandle & { result(): Promise<T> },
  step: string,
  options: {
    inside?: (stillRunning: () => Promise<boolean>) => Promise<void>;
    meanwhile?: () => Promise<void>;
  } = {},
): Promise<AgentKill<T>> {
  const node = step.split(':')[1] ?? '';
  const running = async () => stepStatus(await handle.query(progressQuery), step) === 'running';
  await waitForProgress(handle, (p) => stepStatus(p, step) === 'running');
  const started = proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
  await waitFor(`${step} claimed by its agent`, async () =>
    ((await handle.describe()).raw.pendingActivities ?? []).some(
      (a) => a.activityType?.name === 'middlewareOperation' && a.state === started,
    ),
  );
  await options.inside?.(running);
  const killedAt = Date.now();
  await stack.killAgent(node);
  assert.ok(await running(), `${step} was still running at the kill`);
  await sleep(500);
  const linesBefore = stack.lines.get(`agent ${node}`)?.length ?? 0;
  await stack.startAgent(node);
  await options.meanwhile?.();
  const result = (await handle.result()) as T;
  const recoveredMs = Date.now() - killedAt;
  const attempt = await finalAttempt(handle, step);
  assert.ok(attempt >= 2, `${step} was done again after the kill (attempt ${attempt})`);
  const agentLines = (stack.lines.get(`agent ${node}`) ?? []).slice(linesBefore);
  return { result, recoveredMs, attempt, agentLines };
}
